// Push benchmarks, each printing a ratio against OpenSSH measured in the
// same run on the same sshd and collectord:
//
//   ferry-bench-push cycle [N]   one push cycle with a 50-record batch:
//       pushd's in-process path (libssh, a session channel to the master's
//       relay as ferry-tunnel) vs spawning `ssh ferry-tunnel@master` (sshd
//       runs the same relay) and sending the same bytes through its stdin
//       and stdout; CPU (user+sys, ours + children) and wall, median of N
//       (≥ 20).
//       Also the limit: a bare libssh cycle written here with libssh alone
//       (connect, curve25519-sha256, ed25519 host key checked against the
//       same known_hosts, ed25519 user auth, one direct-tcpip channel, 1 KB
//       out and 1 KB echoed back, close) to the same sshd; Ferry's CPU per
//       cycle against it (target ≤ 2×).
//   ferry-bench-push backlog [DAYS]   DAYS (7) of the sampler's records at a
//       60 s period drained in one session vs `cat > /dev/null` of the same
//       bytes over an already open OpenSSH connection to the same sshd
//       (ControlMaster; target ≥ 0.8× its throughput: the reference issue
//       16 measured its figures against), and, for context, an already open
//       libssh channel (the transport's limit), a libssh session channel into
//       a command, where the time goes and the floor of any durable SQLite
//       store of the records.

#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <signal.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cstdio>
#include <filesystem>
#include <iostream>
#include <thread>
#include <vector>

#include <libssh/libssh.h>

#include "CollectorConnector.h"
#include "PushCycle.h"
#include "SamplerBacklog.h"
#include "ferry/Bus.h"
#include "ferry/Crypto.h"
#include "ferry/Log.h"
#include "ferry/MasterStore.h"
#include "ferry/Spool.h"
#include "ferry/SshSession.h"
#include "support/TestSshd.h"
#include "support/TestSupport.h"

using namespace ferry;
using namespace ferry::test;

namespace {

double cpuSeconds(int who)
{
    rusage ru{};
    ::getrusage(who, &ru);
    return static_cast<double>(ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) +
           static_cast<double>(ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) / 1e6;
}

// This thread's CPU: the bare cycle's echo peer runs on another thread of
// this process, and neither cycle's figure may include it.
double threadCpuSeconds()
{
    return cpuSeconds(RUSAGE_THREAD);
}

double now()
{
    return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count();
}

double median(std::vector<double> v)
{
    std::sort(v.begin(), v.end());
    return v.size() % 2 ? v[v.size() / 2] : (v[v.size() / 2 - 1] + v[v.size() / 2]) / 2;
}

struct Lab {
    TempDir dir;
    SharedDir relayDir{"bench-relay-"}; // the relay (ferry-tunnel) reaches the socket there
    TestBus bus;
    std::unique_ptr<TestSshd> sshd;
    std::optional<Process> collector;
    std::string secret;
    NodeConfig config;
    Paths paths;

    Lab()
    {
        ensureUser("ferry", "/usr/sbin/nologin");
        ensureTunnelUser();
        SshdOptions so;
        so.globalLines = {"PermitRootLogin prohibit-password"};
        so.tail = shippedMasterDropIn(true, {}, relayDir / "collector.sock");
        sshd = std::make_unique<TestSshd>(so);
        std::filesystem::create_directories(dir / "node");
        std::filesystem::create_directories(dir / "master");
        paths.stateDir = dir / "node";
        paths.configDir = dir / "node";
        ensureKeyPair(paths.privateKeyFile());
        const std::string pub = publicKeyLine(paths.privateKeyFile());
        writeFile(sshd->authorizedKeysFile("ferry-tunnel"), tunnelKeyLine(pub) + "\n");
        writeFile(sshd->authorizedKeysFile("root"), pub + "\n");
        writeFile(paths.knownHostsFile(), sshd->knownHostsLine() + "\n");
        secret = generateSecret();
        MasterStore(dir / "master/master.db").addNode("bench", secret);
        collector.emplace(std::vector<std::string>{buildPath("services/collectord/ferry-collectord"), "-v",
                                                   "--listen=127.0.0.1:" + std::to_string(freePort()), "--relay-socket",
                                                   relayDir / "collector.sock"},
                          std::map<std::string, std::string>{{"FERRY_STATE_DIR", dir / "master"}},
                          dir / "collectord.log");
        if (!waitUntil([&] { return readFile(dir / "collectord.log").find("Accepting") != std::string::npos; }))
            throw std::runtime_error("collectord did not start: " + readFile(dir / "collectord.log"));
        config.nodeName = "bench";
        config.masters = {{"127.0.0.1", static_cast<std::uint16_t>(sshd->port()), 50010}};
    }

    pushd::PushCycleOptions options(std::uint32_t batch) const
    {
        pushd::PushCycleOptions o;
        o.nodeName = "bench";
        o.secret = secret;
        o.batchRecords = batch;
        o.batchBytes = kMaxBatchBytes;
        return o;
    }

    void fill(Spool& spool, int records, std::size_t bytes)
    {
        std::vector<Record> batch;
        for (int i = 0; i < records; ++i)
            batch.push_back({0, nowMs(), "load", std::string(bytes, static_cast<char>('a' + i % 26))});
        spool.appendAll(batch);
    }

    std::vector<std::string> sshArgs() const
    {
        return {"/usr/bin/ssh", "-F", "/dev/null", "-i", paths.privateKeyFile(), "-p", std::to_string(sshd->port()),
                "-o", "UserKnownHostsFile=" + paths.knownHostsFile(), "-o", "BatchMode=yes"};
    }
};

// The same protocol bytes through OpenSSH's client as the tunnel user: sshd
// runs the relay, and the session travels over ssh's stdin and stdout.
void cycleThroughOpenSsh(Lab& lab, Spool& spool, std::uint32_t batch)
{
    auto args = lab.sshArgs();
    args.push_back("-T");
    args.push_back("ferry-tunnel@127.0.0.1");
    int fds[2];
    if (::socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, fds) != 0)
        throw std::runtime_error("socketpair failed");
    const pid_t pid = ::fork();
    if (pid == 0) {
        ::dup2(fds[1], 0);
        ::dup2(fds[1], 1);
        std::vector<char*> argv;
        for (auto& a : args)
            argv.push_back(a.data());
        argv.push_back(nullptr);
        ::execv(argv[0], argv.data());
        ::_exit(127);
    }
    ::close(fds[1]);
    if (pid < 0) {
        ::close(fds[0]);
        throw std::runtime_error("fork failed");
    }
    {
        FdStream stream(fds[0], fds[0], "ssh ferry-tunnel@", true);
        pushd::runPushCycle(stream, spool, lab.options(batch));
    }
    int status = 0;
    ::waitpid(pid, &status, 0);
}

// The peer of the bare cycle's channel: reads 1 KB, echoes it, until the
// bench ends. A thread of this process (its CPU is not the cycle's: the
// cycles are measured per thread).
class EchoPeer {
public:
    // Echo: each read is written back. Count: reads to the end of the
    // stream, then answers with the number of bytes (8 bytes, host order).
    enum class Mode { Echo, Count };
    explicit EchoPeer(Mode mode = Mode::Echo) : m_mode(mode)
    {
        m_fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
        sockaddr_in a{};
        a.sin_family = AF_INET;
        a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        const int one = 1;
        ::setsockopt(m_fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
        if (::bind(m_fd, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0 || ::listen(m_fd, 16) != 0)
            throw std::runtime_error("echo peer: cannot listen");
        socklen_t len = sizeof a;
        ::getsockname(m_fd, reinterpret_cast<sockaddr*>(&a), &len);
        m_port = ntohs(a.sin_port);
        m_thread = std::thread([this] { serve(); });
    }
    ~EchoPeer()
    {
        m_stop = true;
        ::shutdown(m_fd, SHUT_RDWR);
        m_thread.join();
        ::close(m_fd);
    }
    std::uint16_t port() const { return m_port; }

private:
    void serve()
    {
        while (!m_stop) {
            pollfd p{m_fd, POLLIN, 0};
            if (::poll(&p, 1, 200) <= 0)
                continue;
            const int c = ::accept4(m_fd, nullptr, nullptr, SOCK_CLOEXEC);
            if (c < 0)
                continue;
            const int one = 1;
            ::setsockopt(c, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
            char buf[65536];
            std::uint64_t total = 0;
            for (;;) {
                pollfd q{c, POLLIN, 0};
                if (::poll(&q, 1, 5000) <= 0)
                    break;
                const ssize_t n = ::read(c, buf, sizeof buf);
                if (n == 0 && m_mode == Mode::Count) {
                    [[maybe_unused]] const auto w = ::write(c, &total, sizeof total);
                    break;
                }
                if (n <= 0)
                    break;
                total += static_cast<std::uint64_t>(n);
                if (m_mode == Mode::Echo && ::write(c, buf, static_cast<std::size_t>(n)) != n)
                    break;
            }
            ::close(c);
        }
    }
    Mode m_mode;
    int m_fd = -1;
    std::uint16_t m_port = 0;
    std::atomic<bool> m_stop{false};
    std::thread m_thread;
};

// A libssh session written with libssh alone: connect (curve25519-sha256,
// ed25519 host key checked against the same known_hosts), ed25519 user
// auth, one direct-tcpip channel. Non-blocking under poll() with
// TCP_NODELAY, as Ferry drives it, so that the wall figure is not libssh's
// 40 ms delayed-ACK stall.
class BareSession {
public:
    // execCommand non-empty: a session channel running that command (what
    // the relay's channel is) instead of a direct-tcpip channel to peerPort.
    BareSession(const Lab& lab, std::uint16_t peerPort, const std::string& execCommand = {})
    {
        m_s = ssh_new();
        const unsigned int port = static_cast<unsigned>(lab.sshd->port());
        const bool no = false;
        const int quiet = SSH_LOG_NOLOG;
        ssh_options_set(m_s, SSH_OPTIONS_LOG_VERBOSITY, &quiet);
        ssh_options_set(m_s, SSH_OPTIONS_HOST, "127.0.0.1");
        ssh_options_set(m_s, SSH_OPTIONS_PORT, &port);
        ssh_options_set(m_s, SSH_OPTIONS_USER, "root");
        ssh_options_set(m_s, SSH_OPTIONS_PROCESS_CONFIG, &no);
        ssh_options_set(m_s, SSH_OPTIONS_KNOWNHOSTS, lab.paths.knownHostsFile().c_str());
        ssh_options_set(m_s, SSH_OPTIONS_GLOBAL_KNOWNHOSTS, "/dev/null");
        ssh_options_set(m_s, SSH_OPTIONS_KEY_EXCHANGE, "curve25519-sha256");
        ssh_options_set(m_s, SSH_OPTIONS_HOSTKEYS, "ssh-ed25519");
        ssh_set_blocking(m_s, 0);
        if (pump([&] { return ssh_connect(m_s); }) != SSH_OK)
            fail("connect");
        if (ssh_session_is_known_server(m_s) != SSH_KNOWN_HOSTS_OK)
            fail("host key");
        ssh_key key = nullptr;
        if (ssh_pki_import_privkey_file(lab.paths.privateKeyFile().c_str(), nullptr, nullptr, nullptr, &key) != SSH_OK)
            fail("key");
        const int auth = pump([&] { return ssh_userauth_publickey(m_s, nullptr, key); });
        ssh_key_free(key);
        if (auth != SSH_AUTH_SUCCESS)
            fail("auth");
        m_ch = ssh_channel_new(m_s);
        if (!execCommand.empty()) {
            if (pump([&] { return ssh_channel_open_session(m_ch); }) != SSH_OK ||
                pump([&] { return ssh_channel_request_exec(m_ch, execCommand.c_str()); }) != SSH_OK)
                fail("exec");
        } else if (pump([&] { return ssh_channel_open_forward(m_ch, "127.0.0.1", peerPort, "127.0.0.1", 50011); }) !=
                   SSH_OK)
            fail("direct-tcpip");
    }
    ~BareSession()
    {
        if (m_ch != nullptr) {
            ssh_channel_close(m_ch);
            ssh_channel_free(m_ch);
        }
        ssh_disconnect(m_s);
        ssh_free(m_s);
    }
    BareSession(const BareSession&) = delete;
    BareSession& operator=(const BareSession&) = delete;

    void write(const std::string& out, bool eof)
    {
        std::size_t done = 0;
        while (done < out.size()) {
            const auto chunk = static_cast<uint32_t>(std::min<std::size_t>(out.size() - done, 1 << 20));
            const int n = ssh_channel_write(m_ch, out.data() + done, chunk);
            if (n < 0)
                fail("write");
            done += static_cast<std::size_t>(n);
            if (done < out.size()) {
                if (ssh_channel_window_size(m_ch) == 0) {
                    wait();
                    if (ssh_channel_poll(m_ch, 0) == SSH_ERROR)
                        fail("window");
                } else if (ssh_blocking_flush(m_s, 5000) != SSH_OK) {
                    fail("flush");
                }
            }
        }
        if (eof)
            ssh_channel_send_eof(m_ch);
        if (ssh_blocking_flush(m_s, 5000) != SSH_OK)
            fail("flush");
    }
    void read(std::size_t want)
    {
        std::size_t got = 0;
        char buf[2048];
        while (got < want) {
            if (ssh_blocking_flush(m_s, 1000) == SSH_ERROR)
                fail("flush");
            const int n = ssh_channel_read_nonblocking(m_ch, buf, sizeof buf, 0);
            if (n < 0 || (n == 0 && ssh_channel_is_eof(m_ch)))
                fail("read");
            if (n > 0)
                got += static_cast<std::size_t>(n);
            else
                wait();
        }
    }

private:
    template <typename Step>
    int pump(Step step)
    {
        for (;;) {
            const int rc = step();
            if (rc != SSH_AGAIN && rc != SSH_AUTH_AGAIN)
                return rc;
            if (ssh_get_fd(m_s) == SSH_INVALID_SOCKET) {
                ::poll(nullptr, 0, 1);
                continue;
            }
            wait();
        }
    }
    void wait()
    {
        const socket_t fd = ssh_get_fd(m_s);
        short events = POLLIN;
        if (ssh_get_poll_flags(m_s) & SSH_WRITE_PENDING)
            events |= POLLOUT;
        pollfd p{fd, events, 0};
        ::poll(&p, 1, 5);
        const int one = 1;
        ::setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
        ::setsockopt(fd, IPPROTO_TCP, TCP_QUICKACK, &one, sizeof one);
    }
    [[noreturn]] void fail(const char* what)
    {
        throw std::runtime_error(std::string("bare libssh: ") + what + ": " + ssh_get_error(m_s));
    }

    ssh_session m_s = nullptr;
    ssh_channel m_ch = nullptr;
};

// The limit of a push cycle: a bare libssh session, 1 KB out and echoed
// back, close.
void bareLibsshCycle(const Lab& lab, std::uint16_t echoPort)
{
    BareSession s(lab, echoPort);
    s.write(std::string(1024, 'x'), false);
    s.read(1024);
}

int benchCycle(int rounds)
{
    Lab lab;
    pushd::SshCollectorConnector connector(lab.config, lab.paths);
    Spool spool(lab.paths.spoolFile(), {});
    EchoPeer echo;
    std::vector<double> ferryCpu, ferryWall, sshCpu, sshWall, bareCpu, bareWall;
    for (int i = 0; i < rounds + 2; ++i) {
        lab.fill(spool, 50, 200);
        double c0 = threadCpuSeconds(), w0 = now();
        {
            auto link = connector.connect(lab.config.masters[0]);
            pushd::runPushCycle(link->stream(), spool, lab.options(500));
        }
        double c1 = threadCpuSeconds(), w1 = now();
        const double b0 = threadCpuSeconds(), bw0 = now();
        bareLibsshCycle(lab, echo.port());
        const double b1 = threadCpuSeconds(), bw1 = now();
        lab.fill(spool, 50, 200);
        const double cc0 = cpuSeconds(RUSAGE_SELF) + cpuSeconds(RUSAGE_CHILDREN), ww0 = now();
        cycleThroughOpenSsh(lab, spool, 500);
        const double cc1 = cpuSeconds(RUSAGE_SELF) + cpuSeconds(RUSAGE_CHILDREN), ww1 = now();
        if (i < 2)
            continue;  // warm-up
        ferryCpu.push_back(c1 - c0);
        ferryWall.push_back(w1 - w0);
        bareCpu.push_back(b1 - b0);
        bareWall.push_back(bw1 - bw0);
        sshCpu.push_back(cc1 - cc0);
        sshWall.push_back(ww1 - ww0);
    }
    const auto stored = MasterStore(lab.dir / "master/master.db").countRecords("bench");
    std::printf("push-cycle: 50-record batch, median of %d cycles each (node side; %llu records stored at the master)\n",
                rounds, static_cast<unsigned long long>(stored));
    std::printf("  ferry (libssh in-process)   cpu %7.2f ms   wall %7.2f ms\n", median(ferryCpu) * 1e3, median(ferryWall) * 1e3);
    std::printf("  bare libssh cycle (limit)   cpu %7.2f ms   wall %7.2f ms\n", median(bareCpu) * 1e3,
                median(bareWall) * 1e3);
    std::printf("  openssh (ssh + relay + send) cpu %7.2f ms   wall %7.2f ms\n", median(sshCpu) * 1e3,
                median(sshWall) * 1e3);
    std::printf("  ratio ferry/openssh         cpu %7.3f      wall %7.3f   (targets: cpu <= 0.1, wall <= 0.25)\n",
                median(ferryCpu) / median(sshCpu), median(ferryWall) / median(sshWall));
    const double cpuVsBare = median(ferryCpu) / median(bareCpu);
    const double wallVsSsh = median(ferryWall) / median(sshWall);
    std::printf("  target: cpu ferry/bare libssh %.2fx (<= 2x: %s), wall ferry/openssh %.3f (<= 0.25: %s)\n", cpuVsBare,
                cpuVsBare <= 2 ? "met" : "NOT met", wallVsSsh, wallVsSsh <= 0.25 ? "met" : "NOT met");
    return 0;
}

// Only Ferry's cycles, for a profiler (`perf record -g -- ferry-bench-push
// profile 200`): prints the CPU per cycle at the end.
int profileCycles(int rounds)
{
    Lab lab;
    pushd::SshCollectorConnector connector(lab.config, lab.paths);
    Spool spool(lab.paths.spoolFile(), {});
    std::vector<double> cpu, connect, session, close, wall, wallConnect, wallSession, wallClose;
    for (int i = 0; i < rounds; ++i) {
        lab.fill(spool, 50, 200);
        const double c0 = threadCpuSeconds(), w0 = now();
        auto link = connector.connect(lab.config.masters[0]);
        const double c1 = threadCpuSeconds(), w1 = now();
        pushd::runPushCycle(link->stream(), spool, lab.options(500));
        const double c2 = threadCpuSeconds(), w2 = now();
        link.reset();
        const double c3 = threadCpuSeconds(), w3 = now();
        cpu.push_back(c3 - c0);
        connect.push_back(c1 - c0);
        session.push_back(c2 - c1);
        close.push_back(c3 - c2);
        wall.push_back(w3 - w0);
        wallConnect.push_back(w1 - w0);
        wallSession.push_back(w2 - w1);
        wallClose.push_back(w3 - w2);
    }
    std::printf("ferry cycle cpu (median of %d): %.2f ms: ssh connect+auth+channel %.2f, session %.2f, close %.2f\n",
                rounds, median(cpu) * 1e3, median(connect) * 1e3, median(session) * 1e3, median(close) * 1e3);
    std::printf("ferry cycle wall (median of %d): %.2f ms: ssh connect+auth+channel %.2f, session %.2f, close %.2f\n",
                rounds, median(wall) * 1e3, median(wallConnect) * 1e3, median(wallSession) * 1e3,
                median(wallClose) * 1e3);
    return 0;
}

// An already open SSH connection to the same sshd (OpenSSH ControlMaster):
// each `cat > /dev/null` of the bytes is a new channel on it, no key
// exchange, no authentication.
class OpenConnection {
public:
    explicit OpenConnection(const Lab& lab) : m_lab(lab), m_control(lab.dir / "control")
    {
        auto args = lab.sshArgs();
        for (const std::string& a : std::vector<std::string>{"-N", "-o", "ControlMaster=yes", "-o",
                                                             "ControlPath=" + m_control, "root@127.0.0.1"})
            args.push_back(a);
        m_master.emplace(args, std::map<std::string, std::string>{}, lab.dir / "control.log");
        auto check = lab.sshArgs();
        for (const std::string& a :
             std::vector<std::string>{"-o", "ControlPath=" + m_control, "-O", "check", "root@127.0.0.1"})
            check.push_back(a);
        if (!waitUntil([&] { return run(check).exitCode == 0; }, std::chrono::seconds(10)))
            throw std::runtime_error("ssh control master did not start: " + readFile(lab.dir / "control.log"));
    }
    ~OpenConnection()
    {
        m_master->signal(SIGTERM);
        m_master->wait(std::chrono::seconds(5));
    }
    // Seconds to push bytes through a new channel of the open connection.
    double catSeconds(const std::string& bytes) const
    {
        auto args = m_lab.sshArgs();
        for (const std::string& a :
             std::vector<std::string>{"-o", "ControlPath=" + m_control, "root@127.0.0.1", "cat > /dev/null"})
            args.push_back(a);
        const double t0 = now();
        const auto r = run(args, {}, bytes, std::chrono::seconds(120));
        const double t = now() - t0;
        if (r.exitCode != 0)
            throw std::runtime_error("ssh cat over the open connection failed: " + r.err);
        return t;
    }

private:
    const Lab& m_lab;
    std::string m_control;
    std::optional<Process> m_master;
};

int benchBacklog(int days, std::uint32_t batchRecords, std::uint32_t batchBytes)
{
    Lab lab;
    pushd::SshCollectorConnector connector(lab.config, lab.paths);
    Spool spool(lab.paths.spoolFile(), {1ull << 40, std::chrono::hours(24 * 365)});
    const auto records = benchsupport::samplerBacklog(days * 24 * 60);
    auto options = lab.options(batchRecords);
    options.batchBytes = batchBytes;
    const auto stages =
        benchsupport::measureStages(records, options.batchRecords, options.batchBytes, lab.dir / "master");
    const std::string& bytes = stages.frames;
    const double mb = static_cast<double>(bytes.size()) / 1e6;

    OpenConnection open(lab);
    constexpr int kRuns = 3;
    std::vector<double> sessions, connects, cats;
    std::uint64_t sent = 0;
    for (int run = 0; run < kRuns; ++run) {
        spool.appendAll(records);
        try {
            const double w0 = now();
            auto link = connector.connect(lab.config.masters[0]);
            const double w1 = now();
            sent = pushd::runPushCycle(link->stream(), spool, options).recordsSent;
            sessions.push_back(now() - w1);
            connects.push_back(w1 - w0);
        } catch (const std::exception&) {
            std::fprintf(stderr, "collectord log:\n%s\n", readFile(lab.dir / "collectord.log").c_str());
            throw;
        }
        if (sent != records.size())
            throw std::runtime_error("the session sent " + std::to_string(sent) + " of " +
                                     std::to_string(records.size()) + " records");
        cats.push_back(open.catSeconds(bytes));
    }
    // The limit: the same bytes through a libssh channel that is already
    // open (to a peer on the master that counts them and answers).
    std::vector<double> raw;
    {
        EchoPeer counter(EchoPeer::Mode::Count);
        for (int run = 0; run < kRuns; ++run) {
            BareSession s(lab, counter.port());
            const double t0 = now();
            s.write(bytes, true);
            s.read(8);
            raw.push_back(now() - t0);
        }
    }
    // The channel the push travels in: a session channel whose command
    // (here wc, there the relay) reads sshd's pipe.
    std::vector<double> execs;
    for (int run = 0; run < kRuns; ++run) {
        BareSession s(lab, 0, "wc -c");
        const double t0 = now();
        s.write(bytes, true);
        s.read(std::to_string(bytes.size()).size() + 1);
        execs.push_back(now() - t0);
    }
    const auto stored = MasterStore(lab.dir / "master/master.db").countRecords("bench");
    const double session = median(sessions), cat = median(cats);
    std::printf(
        "backlog (push): %d days at a 60 s period, the sampler's record mix: %zu records, %.2f MB in %llu "
        "Batch frames of <= %u records / %u bytes (%d runs, medians; %llu records stored at the master, %d x %zu "
        "expected)\n",
        days, records.size(), mb, static_cast<unsigned long long>(stages.batches), options.batchRecords,
        options.batchBytes, kRuns, static_cast<unsigned long long>(stored), kRuns, records.size());
    std::printf("  ferry push session (handshake, batches, acks, bye) %8.1f ms  %7.2f MB/s  %8.0f records/s"
                "  (+ ssh connect %.1f ms)\n",
                session * 1e3, mb / session, static_cast<double>(records.size()) / session, median(connects) * 1e3);
    std::printf("  same bytes, cat over an already open ssh connection %7.1f ms  %7.2f MB/s\n", cat * 1e3, mb / cat);
    std::printf(
        "  same bytes, an open libssh channel to a counting peer %5.1f ms  %7.2f MB/s  (the transport's limit)\n",
        median(raw) * 1e3, mb / median(raw));
    std::printf("  same bytes, an open libssh session channel into a command (wc -c) %5.1f ms  %7.2f MB/s  (the kind "
                "of channel the relay is)\n",
                median(execs) * 1e3, mb / median(execs));
    benchsupport::printStages(stages, cat * 1e3);
    const double limit = median(raw);
    std::printf("  context: throughput ferry / an open libssh channel %.2fx (the transport's limit)\n",
                limit / session);
    std::printf("  context: throughput ferry / an open libssh session channel into a command %.2fx\n",
                median(execs) / session);
    std::printf("  context: bound: storing these records durably in SQLite, with nothing else, takes %.2fx the open "
                "libssh channel's time: a session that stores them before its Acks reaches at most %.2fx of its "
                "throughput here\n",
                stages.durableFloorMs / (limit * 1e3), limit * 1e3 / stages.durableFloorMs);
    const double ratio = cat / session;
    std::printf("  target: throughput ferry / the same bytes over an already open OpenSSH connection (cat, "
                "ControlMaster) %.2fx (>= 0.8: %s)\n",
                ratio, ratio >= 0.8 ? "met" : "NOT met");
    return stored == static_cast<std::uint64_t>(kRuns) * records.size() ? 0 : 1;
}

} // namespace

int main(int argc, char* argv[]) try {
    initLogging("ferry-bench-push", std::getenv("FERRY_BENCH_DEBUG") ? 1 : -1);
    if (!isRoot()) {
        std::fprintf(stderr, "ferry-bench-push: needs root (it runs sshd in a mount namespace)\n");
        return 1;
    }
    const std::string what = argc > 1 ? argv[1] : "cycle";
    if (what == "cycle")
        return benchCycle(argc > 2 ? std::max(20, std::atoi(argv[2])) : 20);
    if (what == "backlog")
        return benchBacklog(argc > 2 ? std::max(1, std::atoi(argv[2])) : 7,
                            argc > 3 ? static_cast<std::uint32_t>(std::atoi(argv[3])) : NodeConfig{}.batchRecords,
                            argc > 4 ? static_cast<std::uint32_t>(std::atoi(argv[4])) : NodeConfig{}.batchBytes);
    if (what == "profile")
        return profileCycles(argc > 2 ? std::max(1, std::atoi(argv[2])) : 100);
    std::fprintf(stderr, "usage: ferry-bench-push cycle [N] | backlog\n");
    return 2;
} catch (const std::exception& e) {
    std::fprintf(stderr, "ferry-bench-push: %s\n", e.what());
    return 1;
}
