// bench/pull: the pull transport against real sshd and the real login shell.
//
//  1. One pull of a 7-day backlog (`backlog [DAYS]`; what the sampler
//     writes: one sampleSystem() per minute, real /proc payloads) versus
//     `cat` of the same bytes (the Batch frames the shell sends) over an
//     already open SSH connection to the same node (OpenSSH ControlMaster)
//     and through an already open libssh channel (the transport's limit).
//     Ratio = open OpenSSH connection's time / pull time (target >= 0.8:
//     the reference issue 16 measured its figures against); the libssh
//     channel, the cold `ssh node cat`, where the time goes and the SQLite
//     floor are printed for context. `backlog [DAYS] --timeline` adds one
//     more pull, not counted, with the master's view of it (each frame,
//     commit and Ack, in ms since the pull began) and ferry-login's start
//     (fork and exec to the first byte of its Hello).
//  2. 50 nodes simulated on loopback (own sshd, user, spool, secret, host
//     name each), 5 minutes of backlog each, pulled in one round with the
//     default concurrency; wall time per round versus single-node time x 50.
#include <fcntl.h>
#include <pwd.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <filesystem>
#include <memory>
#include <mutex>
#include <optional>

#include <spdlog/sinks/base_sink.h>

#include "NodeSshd.h"
#include "Puller.h"
#include "SamplerBacklog.h"
#include "Samplers.h"
#include "SshNodeConnector.h"
#include "ferry/Bus.h"
#include "ferry/MasterStore.h"
#include "ferry/NodeConfig.h"
#include "ferry/SampleCodec.h"
#include "ferry/Spool.h"
#include "ferry/SshSession.h"
#include "support/TestSupport.h"

using namespace ferry::test;
using pulltest::NodeSshd;
using Clock = std::chrono::steady_clock;

namespace {

double msSince(Clock::time_point start)
{
    return std::chrono::duration<double, std::milli>(Clock::now() - start).count();
}

double median(std::vector<double> v)
{
    std::sort(v.begin(), v.end());
    return v[v.size() / 2];
}

std::vector<ferry::Record> backlog(int minutes)
{
    return benchsupport::samplerBacklog(minutes);
}

void fill(NodeSshd& node, const std::vector<ferry::Record>& records)
{
    {
        ferry::Spool spool(node.spoolPath(), ferry::SpoolLimits{1ull << 40, std::chrono::hours(24 * 30)});
        spool.appendAll(records);
    }
    node.chownHome();
}

void registerNode(ferry::MasterStore& store, const NodeSshd& node)
{
    store.addNode(node.nodeName(), node.secret());
    ferry::Statement(store.database(), "UPDATE nodes SET mode = 'pull', ssh_host = '127.0.0.1', ssh_port = ?1 WHERE name = ?2")
        .bind(1, static_cast<std::int64_t>(node.port()))
        .bind(2, node.nodeName())
        .run();
}

// A master.db with the node in it, closed before the pull, so that pulld's
// store is the last one open and its close checkpoints the WAL (timed).
void registerInFreshMaster(const std::string& path, const NodeSshd& node)
{
    ferry::MasterStore store(path);
    registerNode(store, node);
}

pulld::PulldConfig pullConfigFor(const NodeSshd& node)
{
    pulld::PulldConfig config;
    config.user = node.user();
    config.keyFile = node.restrictedKey();
    config.knownHostsFile = node.knownHosts();
    return config;
}

// --timeline: the master's debug lines of one pull (the session's frames,
// commits and Acks, pulld's bookkeeping), each with its time since the pull
// began.
class TimelineSink : public spdlog::sinks::base_sink<std::mutex> {
public:
    void begin()
    {
        std::lock_guard lock(mutex_);
        m_start = Clock::now();
        m_lines.clear();
    }
    std::vector<std::pair<double, std::string>> lines()
    {
        std::lock_guard lock(mutex_);
        return m_lines;
    }

protected:
    void sink_it_(const spdlog::details::log_msg& msg) override
    {
        m_lines.emplace_back(msSince(m_start), std::string(msg.payload.data(), msg.payload.size()));
    }
    void flush_() override {}

private:
    Clock::time_point m_start = Clock::now();
    std::vector<std::pair<double, std::string>> m_lines;
};

// ferry-login's start: from fork and exec (as the node's user, as sshd
// starts it, with the command of a pull) to the first byte of its Hello.
double loginStartMs(const NodeSshd& node)
{
    const passwd* pw = ::getpwnam(node.user().c_str());
    if (pw == nullptr)
        throw std::runtime_error("no user " + node.user());
    const std::string shell = pw->pw_shell;
    int toShell[2];
    int fromShell[2];
    if (::pipe(toShell) != 0 || ::pipe(fromShell) != 0)
        throw std::runtime_error("pipe failed");
    const auto start = Clock::now();
    const pid_t pid = ::fork();
    if (pid == 0) {
        ::dup2(toShell[0], 0);
        ::dup2(fromShell[1], 1);
        ::close(toShell[1]);
        ::close(fromShell[0]);
        if (::setgid(pw->pw_gid) != 0 || ::setuid(pw->pw_uid) != 0)
            ::_exit(127);
        char client[] = "SSH_CLIENT=127.0.0.1 1 2";
        char* const env[] = {client, nullptr};
        ::execle(shell.c_str(), shell.c_str(), "-c", "fetch 0", nullptr, env);
        ::_exit(127);
    }
    ::close(toShell[0]);
    ::close(fromShell[1]);
    char byte = 0;
    const ssize_t n = ::read(fromShell[0], &byte, 1);
    const double ms = msSince(start);
    ::close(toShell[1]); // the shell sees the master gone and ends
    ::close(fromShell[0]);
    int status = 0;
    ::waitpid(pid, &status, 0);
    if (n != 1)
        throw std::runtime_error("ferry-login sent nothing");
    return ms;
}

// Whether any process of user is still running (zombies, which wait for
// sshd to reap them, have finished).
bool anyRunning(const std::string& user)
{
    for (pid_t pid : pulltest::pidsOfUser(user)) {
        // Read with read(2): a process that ends meanwhile fails the read.
        char buf[512];
        const int fd = ::open(("/proc/" + std::to_string(pid) + "/stat").c_str(), O_RDONLY | O_CLOEXEC);
        if (fd < 0)
            continue;
        const ssize_t n = ::read(fd, buf, sizeof buf);
        ::close(fd);
        const std::string stat(buf, n > 0 ? static_cast<std::size_t>(n) : 0);
        const auto close = stat.rfind(')');
        if (close != std::string::npos && close + 2 < stat.size() && stat[close + 2] != 'Z')
            return true;
    }
    return false;
}

// The real connector, timed: how long the SSH connect, authentication and
// the start of the login shell took, to tell them from the session.
class TimedConnector : public pulld::NodeConnector {
public:
    explicit TimedConnector(pulld::NodeConnector& inner) : m_inner(inner) {}
    std::unique_ptr<pulld::NodeChannel> open(const ferry::NodeInfo& node, const std::string& command) override
    {
        const auto start = Clock::now();
        auto channel = m_inner.open(node, command);
        m_lastMs = msSince(start);
        return channel;
    }
    double lastMs() const { return m_lastMs; }

private:
    pulld::NodeConnector& m_inner;
    double m_lastMs = 0;
};

void singleNodeVersusCat(int days, bool timeline)
{
    NodeSshd::Options options;
    options.shellUser = true;
    NodeSshd node(options);
    const auto records = backlog(days * 24 * 60);

    // The bytes the shell sends for this backlog: its Batch frames, batched
    // as the node's defaults batch them; and where the time goes.
    TempDir scratch;
    const ferry::NodeConfig defaults;
    const auto stages =
        benchsupport::measureStages(records, defaults.batchRecords, defaults.batchBytes, scratch.path());
    const std::string& frames = stages.frames;
    const std::string file = node.shellHome() + "/backlog.bin";
    writeFile(file, frames, 0644);

    // The reference: the same cat over an SSH connection that is already
    // open (no client start, no key exchange): the transfer alone. Timed in
    // each run right after its pull, so that both see the same moments of a
    // shared machine.
    const std::string control = node.shellHome() + "/control";
    Process controlMaster(node.sshArgvAs(node.shellUser(), node.plainKey(),
                                         {"-N", "-o", "ControlMaster=yes", "-o", "ControlPath=" + control}, {}));
    const auto check =
        node.sshArgvAs(node.shellUser(), node.plainKey(), {"-o", "ControlPath=" + control, "-O", "check"}, {});
    if (!waitUntil([&] { return ferry::test::run(check).exitCode == 0; }, std::chrono::seconds(10)))
        throw std::runtime_error("ssh control master did not start");
    auto warmCat = [&] {
        const auto start = Clock::now();
        const RunResult cat = ferry::test::run(
            node.sshArgvAs(node.shellUser(), node.plainKey(), {"-o", "ControlPath=" + control}, {"cat", file}), {}, "",
            std::chrono::seconds(60));
        const double ms = msSince(start);
        if (cat.exitCode != 0 || cat.out.size() != frames.size())
            throw std::runtime_error("ssh cat over the open connection failed: " + cat.err);
        return ms;
    };

    constexpr int kRuns = 5;
    std::vector<double> warmCats;
    std::vector<double> pulls;
    std::vector<double> connects;
    std::vector<double> closes;
    std::vector<double> nodeDone;
    std::vector<double> cats;
    for (int run = 0; run < kRuns; ++run) {
        TempDir master;
        registerInFreshMaster(master / "master.db", node);
        const pulld::PulldConfig config = pullConfigFor(node);
        pulld::SshNodeConnector ssh(config);
        TimedConnector connector(ssh);
        std::optional<pulld::Puller> puller;
        puller.emplace(master / "master.db", config, connector);
        fill(node, records);

        const auto start = Clock::now();
        const auto outcome = puller->pullNode(node.nodeName());
        pulls.push_back(msSince(start) - connector.lastMs());
        connects.push_back(connector.lastMs());
        if (!outcome.success || outcome.records != records.size())
            throw std::runtime_error("pull failed: " + outcome.summary);
        // The node's shell ends after the session (its last deletions, the
        // spool's close): wait for it to exit, so that nothing timed below
        // shares the machine with it, and say when it did.
        if (!waitUntil([&] { return !anyRunning(node.user()); }, std::chrono::seconds(10),
                       std::chrono::milliseconds(1)))
            throw std::runtime_error("the node's shell did not exit after the pull");
        nodeDone.push_back(msSince(start) - connector.lastMs());
        // pulld's last close of master.db: the WAL checkpoint that the pulls
        // leave to it (after the session, as collectord's store closes after
        // a push).
        const auto closeStart = Clock::now();
        puller.reset();
        closes.push_back(msSince(closeStart));
        warmCats.push_back(warmCat());

        const auto catStart = Clock::now();
        const RunResult cat =
            ferry::test::run(node.sshArgvAs(node.shellUser(), node.plainKey(), {}, {"cat", file}), {}, "",
                             std::chrono::seconds(60));
        cats.push_back(msSince(catStart));
        if (cat.exitCode != 0 || cat.out.size() != frames.size())
            throw std::runtime_error("ssh cat failed: " + cat.err);
    }
    if (timeline) {
        // One more pull, not counted: where its time goes, as the master
        // saw it.
        auto sink = std::make_shared<TimelineSink>();
        const auto previous = spdlog::default_logger();
        spdlog::set_default_logger(std::make_shared<spdlog::logger>("timeline", sink));
        spdlog::set_level(spdlog::level::debug);
        TempDir master;
        registerInFreshMaster(master / "master.db", node);
        const pulld::PulldConfig config = pullConfigFor(node);
        pulld::SshNodeConnector connector(config);
        pulld::Puller puller(master / "master.db", config, connector);
        fill(node, records);
        sink->begin();
        const auto outcome = puller.pullNode(node.nodeName());
        spdlog::set_default_logger(previous);
        std::printf("timeline of one more pull (ms since it began; the master's view):\n");
        for (const auto& [ms, line] : sink->lines())
            std::printf("  %8.2f  %s\n", ms, line.c_str());
        if (!outcome.success)
            throw std::runtime_error("pull failed: " + outcome.summary);
        std::vector<double> starts;
        for (int run = 0; run < kRuns; ++run)
            starts.push_back(loginStartMs(node));
        std::printf("ferry-login, fork and exec to the first byte of its Hello (%d runs):", kRuns);
        for (double ms : starts)
            std::printf(" %.1f", ms);
        std::printf(" ms\n");
    }
    // The transport's limit: the same bytes read through a libssh channel
    // (the library pulld uses) that is already open: connected,
    // authenticated, `cat` started; timed from there to the last byte.
    std::vector<double> libsshReads;
    {
        ferry::SshOptions so;
        so.privateKeyFile = node.plainKey();
        so.knownHostsFile = node.knownHosts();
        ferry::SshSession ssh({"127.0.0.1", static_cast<std::uint16_t>(node.port()), node.shellUser()}, so);
        std::vector<char> buf(1 << 20);
        for (int run = 0; run < kRuns; ++run) {
            auto channel = ssh.exec("cat " + file);
            const auto start = Clock::now();
            std::size_t got = 0;
            for (;;) {
                const std::size_t n =
                    channel->readSome(buf.data(), buf.size(), ferry::deadlineIn(std::chrono::seconds(60)));
                if (n == 0)
                    break;
                got += n;
            }
            libsshReads.push_back(msSince(start));
            if (got != frames.size())
                throw std::runtime_error("libssh cat read " + std::to_string(got) + " of " +
                                         std::to_string(frames.size()) + " bytes");
        }
    }
    const double libsshMs = median(libsshReads);
    const double pullMs = median(pulls);
    const double catMs = median(cats);
    const double warmMs = median(warmCats);
    const double mb = static_cast<double>(frames.size()) / 1e6;
    std::printf(
        "backlog (pull): %d days at a 60 s period, the sampler's record mix: %zu records, %.2f MB in %llu Batch "
        "frames of <= %u records / %u bytes (%d runs, medians)\n",
        days, records.size(), mb, static_cast<unsigned long long>(stages.batches), ferry::NodeConfig{}.batchRecords,
        ferry::NodeConfig{}.batchBytes, kRuns);
    std::printf("  pull session (prove, fetch, store, ack, bye)     %8.1f ms  %7.2f MB/s  %8.0f records/s"
                "  (+ ssh connect and login %.1f ms; + pulld's closing WAL checkpoint %.1f ms, after it)\n",
                pullMs, mb / (pullMs / 1000), static_cast<double>(records.size()) / (pullMs / 1000), median(connects),
                median(closes));
    std::printf("  the node's shell done (exited) %.1f ms after the session began\n", median(nodeDone));
    std::printf("  same bytes, cat over an already open connection  %8.1f ms  %7.2f MB/s\n", warmMs,
                mb / (warmMs / 1000));
    std::printf("  same bytes, ssh node cat (cold: connect each)    %8.1f ms  %7.2f MB/s\n", catMs,
                mb / (catMs / 1000));
    std::printf("  same bytes, an open libssh channel (cat)         %8.1f ms  %7.2f MB/s  (the transport's limit)\n",
                libsshMs, mb / (libsshMs / 1000));
    std::printf("  each run, pull session / cat over the open connection:");
    for (int run = 0; run < kRuns; ++run)
        std::printf(" %.1f/%.1f", pulls[static_cast<std::size_t>(run)], warmCats[static_cast<std::size_t>(run)]);
    std::printf(" ms (ratios");
    for (int run = 0; run < kRuns; ++run)
        std::printf(" %.2f", warmCats[static_cast<std::size_t>(run)] / pulls[static_cast<std::size_t>(run)]);
    std::printf(")\n");
    benchsupport::printStages(stages, warmMs);
    std::printf("  context: throughput pull / an open libssh channel %.2fx (the transport's limit); connect "
                "included, against the open OpenSSH connection %.2fx; against the cold cat %.2fx\n",
                libsshMs / pullMs, warmMs / (pullMs + median(connects)), catMs / (pullMs + median(connects)));
    std::printf("  context: bound: storing these records durably in SQLite, with nothing else, takes %.2fx the open "
                "libssh channel's time: a session that stores them before its Acks reaches at most %.2fx of its "
                "throughput here\n",
                stages.durableFloorMs / libsshMs, libsshMs / stages.durableFloorMs);
    const double ratio = warmMs / pullMs;
    std::printf("  target: throughput pull / the same bytes over an already open OpenSSH connection (cat, "
                "ControlMaster) %.2fx (>= 0.8: %s)\n",
                ratio, ratio >= 0.8 ? "met" : "NOT met");
}

void fiftyNodes()
{
    constexpr int kNodes = 50;
    TempDir keys;
    if (ferry::test::run({"/usr/bin/ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", keys / "master"}).exitCode != 0)
        throw std::runtime_error("ssh-keygen failed");
    std::vector<std::unique_ptr<NodeSshd>> nodes;
    const auto setupStart = Clock::now();
    for (int i = 0; i < kNodes; ++i) {
        NodeSshd::Options options;
        options.userSuffix = "n" + std::to_string(i);
        options.masterKey = keys / "master";
        options.hostName = "benchnode" + std::to_string(i);
        nodes.push_back(std::make_unique<NodeSshd>(options));
    }
    std::printf("(50 nodes set up in %.1f s)\n", msSince(setupStart) / 1000);
    std::fflush(stdout);

    TempDir master;
    std::string knownHosts;
    {
        ferry::MasterStore store(master / "master.db");
        for (const auto& node : nodes) {
            registerNode(store, *node);
            knownHosts += readFile(node->knownHosts());
        }
    }
    writeFile(master / "known_hosts", knownHosts);
    pulld::PulldConfig config;  // default concurrency
    config.user = "unused";
    config.keyFile = keys / "master";
    config.knownHostsFile = master / "known_hosts";
    // Each node has its own user; a connector per user would be the real
    // thing's single "ferry". Here the user differs per node, so connect as
    // each node's user.
    class PerNodeUserConnector : public pulld::NodeConnector {
    public:
        PerNodeUserConnector(pulld::PulldConfig config, std::map<std::string, std::string> users)
            : m_config(std::move(config)), m_users(std::move(users))
        {
        }
        std::unique_ptr<pulld::NodeChannel> open(const ferry::NodeInfo& node, const std::string& command) override
        {
            auto config = m_config;
            config.user = m_users.at(node.name);
            return pulld::SshNodeConnector(config).open(node, command);
        }

    private:
        pulld::PulldConfig m_config;
        std::map<std::string, std::string> m_users;
    };
    std::map<std::string, std::string> users;
    for (const auto& node : nodes)
        users[node->nodeName()] = node->user();
    PerNodeUserConnector connector(config, users);
    pulld::Puller puller(master / "master.db", config, connector);

    const auto fiveMinutes = backlog(5);
    std::vector<double> singles;
    for (int run = 0; run < 5; ++run) {
        fill(*nodes[0], fiveMinutes);
        const auto start = Clock::now();
        const auto outcome = puller.pullNode(nodes[0]->nodeName());
        singles.push_back(msSince(start));
        if (!outcome.success)
            throw std::runtime_error("single pull failed: " + outcome.summary);
    }
    std::vector<double> rounds;
    for (int run = 0; run < 3; ++run) {
        for (auto& node : nodes)
            fill(*node, fiveMinutes);
        const auto start = Clock::now();
        const auto round = puller.pullRound(true);
        rounds.push_back(msSince(start));
        if (round.pulled != kNodes)
            throw std::runtime_error("round pulled only " + std::to_string(round.pulled) + " nodes");
    }
    const double single = median(singles);
    const double round = median(rounds);
    std::printf("%d nodes on loopback, %zu records each (5 minutes), concurrency %u (default), %ld cores:\n", kNodes,
                fiveMinutes.size(), config.concurrency, sysconf(_SC_NPROCESSORS_ONLN));
    std::printf("  single node: %.1f ms (median of 5); x %d = %.1f ms\n", single, kNodes, single * kNodes);
    std::printf("  one round of %d nodes: %.1f ms (median of 3)\n", kNodes, round);
    std::printf("  parallel speed-up: %.2fx\n", single * kNodes / round);
}

} // namespace

int main(int argc, char* argv[])
{
    if (!isRoot()) {
        std::fprintf(stderr, "bench/pull needs root (system users, sshd in mount namespaces)\n");
        return 1;
    }
    const std::string only = argc > 1 ? argv[1] : "";
    try {
        spdlog::set_level(std::getenv("FERRY_BENCH_DEBUG") ? spdlog::level::debug : spdlog::level::warn);
        spdlog::set_pattern("%H:%M:%S.%e %v");
        // backlog [DAYS] [--timeline]
        const bool timeline = argc > 2 && std::string(argv[argc - 1]) == "--timeline";
        const int days = argc > 2 && std::string(argv[2]) != "--timeline" ? std::max(1, std::atoi(argv[2])) : 7;
        if (only.empty() || only == "backlog")
            singleNodeVersusCat(days, timeline);
        if (only.empty() || only == "nodes")
            fiftyNodes();
    } catch (const std::exception& e) {
        std::fprintf(stderr, "bench/pull failed: %s\n", e.what());
        return 1;
    }
    return 0;
}
