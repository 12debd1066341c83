// bench/master-load: how many nodes one master carries.
//
// N simulated nodes (each its own ed25519 key, secret, known_hosts and
// spool) are registered in the master's registry through RegistryStore — the
// calls registryd makes once a node has proved its secret — and push to one
// master (OpenSSH sshd with the shipped drop-in and the real
// AuthorizedKeysCommand helper, plus ferry-collectord) on loopback. A few
// client processes, each with a pool of threads, offer pushes at a fixed
// rate (open loop: latency counts from the moment a push was due, so a
// master that falls behind shows it). The rate ramps by 1.5× per step until
// a step is not sustained, then by 1.15×, 1.05× and 1.02× from the last step
// that was; the ramps take their steps in turn (rampTogether()).
//
// The ramps run --rounds times (3 by default), each round from scratch but
// the first (the second and later start their ×1.5 steps at 0.75× the
// lowest rate the first round sustained, to spend their steps near the
// edge), each sustained rate is the median of its rounds, and each ratio
// the median of the rounds' ratios (taken within a round): one step that
// a burst of other load on the machine fails, or that passes by luck right
// at the edge, then decides no figure alone. Every round's rates and ratios
// are printed too.
//
// Sustained, defined once for every ramp (ferry, ferry-cert, sshd alone;
// passes()): no errors (the clients not keeping up is one), p99 latency at
// most 1 s, and when the step's offering ends, at most half a second's worth
// of the offered rate (0.5 s × rate) still unfinished, queued or under way
// ("left" on each step's line). A master that keeps up holds about rate ×
// latency pushes; one that falls behind leaves a queue that grew through the
// step, which p99 alone passed as long as it was under a second old.
//
// The master's CPU per step: each ramp's sshd (and everything it forks),
// collectord and sshd alone's sink run in cgroups (v2) of the benchmark's
// own, and a step's CPU is the difference of their cpu.stat usage_usec at
// its edges (before its first push, 0.3 s after its last), so it falls in
// the step it was spent in, and "% of a core" is over that wall time.
// Without a writable cgroup v2 hierarchy the step reads /proc instead
// (sshd's listener with the children it reaped, collectord; a child's time
// counts when it is reaped, possibly in a later step), and says so.
//
// --no-early-policy: the simulated nodes do not offer session capability 2
// (the master's Policy in the write of its AuthOk, the node's Report with
// its first batch; Session.h), so they run the session's order before it,
// one round trip longer, against the same master.
//
// With --auth cert (or both, the default) the same pushes run a second time
// against an sshd that trusts the registry's CA instead (TrustedUserCAKeys,
// RevokedKeys, no AuthorizedKeysCommand): each node's certificate is issued
// by registryd's Manager answering the node's signed registration request,
// as it does on TCP 50010.
//
// Placement: the master's processes (each sshd and everything it forks —
// the per-connection sshd, the key helper, the relay — collectord, and the
// sink of sshd alone) run on CPU 0, the simulated nodes' client processes
// and this driver on CPU 1, identically for every ramp (sched_setaffinity
// before they start; children inherit it, and every step checks that they
// did). A server's capacity is measured with the load generator off the
// server's CPU: on a fleet the nodes' own work (a synced spool, the HMAC
// proof, libssh) is spent on the nodes, so on shared cores it lowered
// Ferry's measured rate by the nodes' cost, which is not the master's
// (3-5 ms of CPU per Ferry push against 1-2 ms per bare handshake). The
// sustained rates are then one core's, and the implied node counts those of
// a one-core master. --no-pin keeps the old placement (everything on every
// CPU).
//
// In the same run, the ceiling without Ferry's lookup and collector: the same
// sshd binary with the same keys in a plain authorized_keys file, accepting
// the same handshake (key auth as ferry-tunnel, one session channel whose
// relay connects to a sink that accepts and closes, close), ramped the same
// way. The ratio of the two sustained
// rates is Ferry's share of what sshd alone can do on this machine.
//
//   ferry-bench-master-load [--nodes N] [--procs P] [--threads T]
//                           [--step-seconds S] [--start-rate R] [--max-rate M]
//                           [--auth helper|cert|both] [--ca-type ed25519|ecdsa|rsa] [--no-pin]
//                           [--no-early-policy] [--rounds N] [--collector-nice N]

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <pwd.h>
#include <sched.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cinttypes>
#include <condition_variable>
#include <cstdio>
#include <cstring>
#include <deque>
#include <filesystem>
#include <fstream>
#include <map>
#include <mutex>
#include <set>
#include <sstream>
#include <thread>
#include <vector>

#include "CollectorConnector.h"
// pushd-core has a Manager.h too: registryd's by its path.
#include "../../services/registryd/Manager.h"
#include "BenchHost.h"
#include "PushCycle.h"
#include "ferry/AuthorizedKeysView.h"
#include "ferry/Bus.h"
#include "ferry/Crypto.h"
#include "ferry/Error.h"
#include "ferry/Log.h"
#include "ferry/MasterStore.h"
#include "ferry/RegistryProtocol.h"
#include "ferry/RegistryStore.h"
#include "ferry/Spool.h"
#include "ferry/Sqlite.h"
#include "ferry/SshSession.h"
#include "ferry/Stream.h"
#include "ferry/TcpServer.h"
#include "support/TestSshd.h"
#include "support/TestSupport.h"

using namespace ferry;
using namespace ferry::test;
using namespace ferry::bench;
namespace fs = std::filesystem;

namespace {

// Nice= of units/ferry-collectord.service (sshd.service has none: 0), 0
// when it sets none.
int shippedCollectorNice()
{
    std::istringstream unit(readFile(sourcePath("units/ferry-collectord.service")));
    for (std::string line; std::getline(unit, line);)
        if (line.rfind("Nice=", 0) == 0)
            return std::stoi(line.substr(5));
    return 0;
}

struct Settings {
    int nodes = 1000;
    int procs = 2;
    int threads = 24;
    double stepSeconds = 6;
    double startRate = 10;
    double maxRate = 2000;
    int recordsPerPush = 5;  // one sampler run of the built-in sampler
    bool helperAuth = true;  // the AuthorizedKeysCommand helper (the default master)
    bool certAuth = true;    // certificates from the registry's CA
    // ssh-keygen -t of the CA key. RSA (3072 bits, ssh-keygen's default) by
    // default, as services/registryd/README.md advises: sshd parses the
    // certificate, with the CA's key in it, and checks the CA's signature
    // several times per login (the pre-authentication child, the monitor),
    // and each parse of an ECDSA key makes a key on the curve and checks its
    // point, so an ECDSA P-256 CA cost sshd about 0.5 ms more per login than
    // an RSA one here, and an Ed25519 CA about 5 ms more
    // (docs/master-sizing.md).
    std::string caType = "rsa";
    // The master's processes on one CPU, the simulated nodes on the other
    // (--no-pin: wherever the scheduler puts them).
    bool pin = true;
    // The simulated nodes offer session capability 2, the Policy in the
    // write of the AuthOk (Session.h); --no-early-policy plays nodes
    // without it, the session's order before it.
    bool earlyPolicy = true;
    // Times the ramps run; each sustained rate is the median of its rounds.
    int rounds = 3;
    // collectord's nice relative to sshd's: units/ferry-collectord.service's
    // Nice= unless --collector-nice says otherwise.
    int collectorNice = shippedCollectorNice();
};

struct SimNode {
    std::string name;
    std::string dir;
    // The node's one spool: a node logging in with its certificate pushes
    // from it too (a second spool would be a second epoch, which the master
    // takes for a clone and holds).
    std::string spool;
    std::string secret;
    Paths paths;
    NodeConfig config;
};

// A unix listener that accepts and closes at once: where the sshd-alone
// handshake's relay connects. Runs in its own process.
pid_t startSink(const std::string& path, long gid)
{
    const int fd = ferry::bindUnixSocket(path, 0660, gid);
    const pid_t pid = ::fork();
    if (pid == 0) {
        ::prctl(PR_SET_PDEATHSIG, SIGKILL);
        for (;;) {
            const int c = ::accept(fd, nullptr, nullptr);
            if (c >= 0)
                ::close(c);
        }
    }
    ::close(fd);
    return pid;
}

enum class Target { Ferry, SshdAlone };

struct StepResult {
    double offered = 0;   // pushes/s asked for
    double achieved = 0;  // completed (ok) per second of the step
    std::uint64_t ok = 0;
    std::map<std::string, std::uint64_t> errors;
    std::vector<double> latencyMs;
    std::uint64_t records = 0;
    double masterCpuSeconds = 0;
    double collectorCpuSeconds = 0; // of masterCpuSeconds
    // The wall time the master's CPU was read over: from before the first
    // push to after the last one's end (the step's offering and its drain).
    double cpuWallSeconds = 0;
    // Pushes due before the offering ended that had not finished then
    // (queued or under way): the queue the step left.
    std::uint64_t leftAtEnd = 0;
    std::uint64_t masterPeakPssKiB = 0;
    std::uint64_t peakConcurrent = 0;
    // The simulated nodes' CPU (the client processes): on a real fleet it is
    // spent on other machines, here it shares the master's cores.
    double clientCpuSeconds = 0;
    double p50 = 0, p99 = 0;
    // Pinned runs: the master's processes seen while the step ran, and how
    // many of them (or of the client processes) could run elsewhere.
    std::size_t masterProcsSeen = 0;
    std::size_t misplaced = 0;
};

// One client process: offers `rate` pushes/s for `seconds`, over its share
// of the nodes, and writes one line per attempt to `out`.
void clientProcess(const Settings& s, Target target, const std::vector<SimNode>& nodes, double rate, double startAt,
                   int out)
{
    std::deque<std::pair<double, std::size_t>> queue;  // (due time, node index)
    std::mutex mutex;
    std::condition_variable cv;
    bool done = false;
    std::vector<std::unique_ptr<std::mutex>> busy;
    for (std::size_t i = 0; i < nodes.size(); ++i)
        busy.push_back(std::make_unique<std::mutex>());
    std::mutex outMutex;
    std::string lines;
    std::atomic<int> inFlight{0};
    std::atomic<int> peak{0};

    auto worker = [&] {
        for (;;) {
            std::pair<double, std::size_t> job;
            {
                std::unique_lock lock(mutex);
                cv.wait(lock, [&] { return done || !queue.empty(); });
                if (queue.empty())
                    return;
                job = queue.front();
                queue.pop_front();
            }
            const SimNode& node = nodes[job.second];
            std::unique_lock nodeLock(*busy[job.second], std::try_to_lock);
            std::string line;
            const int now = ++inFlight;
            for (int p = peak.load(); now > p && !peak.compare_exchange_weak(p, now);) {
            }
            try {
                if (target == Target::Ferry) {
                    Spool spool(node.spool, {});
                    std::vector<Record> rs;
                    for (int i = 0; i < s.recordsPerPush; ++i)
                        rs.push_back({0, nowMs(), "load", std::string(150, static_cast<char>('a' + i))});
                    spool.appendAll(rs);
                    pushd::SshCollectorConnector connector(node.config, node.paths);
                    auto link = connector.connect(node.config.masters[0]);
                    pushd::PushCycleOptions o;
                    o.nodeName = node.name;
                    o.secret = node.secret;
                    // As pushd does: the proof uses the key derived for this
                    // master id (registryd keeps only that key once a node
                    // registered). Unlike pushd it is not bound to the SSH
                    // host key: two sshds with their own keys share this
                    // collectord (a string compare's worth of work).
                    o.masterId = masterIdOf(node.config.masters[0]);
                    o.ioTimeout = std::chrono::seconds(30);
                    if (!s.earlyPolicy)
                        o.capabilities = kSessionCapabilities & ~kCapEarlyPolicy;
                    const auto r = pushd::runPushCycle(link->stream(), spool, o);
                    line = "ok " + std::to_string((monoSeconds() - job.first) * 1e3) + " " +
                           std::to_string(r.recordsSent) + "\n";
                } else {
                    SshOptions o;
                    o.privateKeyFile = node.paths.privateKeyFile();
                    o.knownHostsFile = node.paths.knownHostsFile();
                    o.connectTimeout = std::chrono::seconds(30);
                    o.ioTimeout = std::chrono::seconds(30);
                    o.bindAddress = node.config.sourceAddress;
                    SshSession session(SshTarget{"127.0.0.1", node.config.masters[0].sshPort, "ferry-tunnel"}, o);
                    auto channel = session.exec("ferry-tunnel-relay");
                    channel.reset();
                    line = "ok " + std::to_string((monoSeconds() - job.first) * 1e3) + " 0\n";
                }
            } catch (const std::exception& e) {
                line = "err " + errorKind(e) + "\n";
                if (std::getenv("FERRY_BENCH_DEBUG") != nullptr)
                    std::fprintf(stderr, "%s: %s\n", node.name.c_str(), e.what());
            }
            --inFlight;
            std::lock_guard lock(outMutex);
            lines += line;
        }
    };
    std::vector<std::thread> pool;
    for (int t = 0; t < s.threads; ++t)
        pool.emplace_back(worker);

    // Open-loop schedule; a queue longer than the pool can absorb in a
    // second means the clients themselves cannot keep up: counted, not hidden.
    const std::size_t maxQueue = static_cast<std::size_t>(std::max(8.0, rate));
    std::uint64_t overload = 0;
    std::size_t next = 0;
    const double interval = 1.0 / rate;
    const auto total = static_cast<std::uint64_t>(rate * s.stepSeconds);
    for (std::uint64_t i = 0; i < total; ++i) {
        const double due = startAt + static_cast<double>(i) * interval;
        const double wait = due - monoSeconds();
        if (wait > 0)
            std::this_thread::sleep_for(std::chrono::duration<double>(wait));
        std::lock_guard lock(mutex);
        if (queue.size() >= maxQueue) {
            ++overload;
            continue;
        }
        queue.emplace_back(due, next);
        next = (next + 1) % nodes.size();
        cv.notify_one();
    }
    // The queue when the offering ends: what is still waiting or under way.
    const double end = startAt + s.stepSeconds - monoSeconds();
    if (end > 0)
        std::this_thread::sleep_for(std::chrono::duration<double>(end));
    std::size_t left = 0;
    {
        std::lock_guard lock(mutex);
        left = queue.size() + static_cast<std::size_t>(std::max(0, inFlight.load()));
    }
    {
        std::lock_guard lock(mutex);
        done = true;
    }
    cv.notify_all();
    for (auto& t : pool)
        t.join();
    for (std::uint64_t i = 0; i < overload; ++i)
        lines += "err client-overload\n";
    lines += "peak " + std::to_string(peak.load()) + "\n";
    lines += "left " + std::to_string(left) + "\n";
    std::size_t off = 0;
    while (off < lines.size()) {
        const ssize_t n = ::write(out, lines.data() + off, lines.size() - off);
        if (n <= 0)
            break;
        off += static_cast<std::size_t>(n);
    }
}

// The master's CPU so far: sshd's processes and the collector (collectord,
// or sshd alone's sink), from their cgroups when there are, else from /proc
// (sshd's listener with the children it reaped; the sink is not counted).
struct MasterCpu {
    double sshd = 0;
    double collector = 0;
};
MasterCpu masterCpu(pid_t sshdPid, pid_t collectorPid, const CpuGroup& sshdGroup, const CpuGroup& collectorGroup)
{
    MasterCpu c;
    c.sshd = sshdGroup.usable() ? sshdGroup.cpuSeconds() : processCpuSeconds(sshdPid, true);
    if (collectorGroup.usable())
        c.collector = collectorGroup.cpuSeconds();
    else if (collectorPid > 0)
        c.collector = processCpuSeconds(collectorPid, false);
    return c;
}

StepResult runStep(const Settings& s, Target target, const std::vector<SimNode>& nodes, double rate, pid_t sshdPid,
                   pid_t collectorPid, const CpuGroup& sshdGroup, const CpuGroup& collectorGroup)
{
    StepResult r;
    r.offered = rate;
    const double cpuFrom = monoSeconds();
    const MasterCpu cpu0 = masterCpu(sshdPid, collectorPid, sshdGroup, collectorGroup);
    const double startAt = monoSeconds() + 0.2;
    std::vector<std::pair<pid_t, int>> children;
    for (int p = 0; p < s.procs; ++p) {
        std::vector<SimNode> share;
        for (std::size_t i = static_cast<std::size_t>(p); i < nodes.size(); i += static_cast<std::size_t>(s.procs))
            share.push_back(nodes[i]);
        int fds[2];
        if (::pipe2(fds, O_CLOEXEC) != 0)
            throwErrno("create a pipe");
        const pid_t pid = ::fork();
        if (pid == 0) {
            ::prctl(PR_SET_PDEATHSIG, SIGKILL);
            ::close(fds[0]);
            try {
                clientProcess(s, target, share, rate / s.procs, startAt, fds[1]);
            } catch (const std::exception& e) {
                std::fprintf(stderr, "client: %s\n", e.what());
                ::_exit(1);
            }
            ::_exit(0);
        }
        ::close(fds[1]);
        children.emplace_back(pid, fds[0]);
    }
    // Sample the master's memory while the step runs, and, when pinned,
    // check that every process of the master (the per-connection sshds,
    // the key helper, the relay) inherited its CPU and the clients theirs.
    std::atomic<bool> sampling{true};
    std::set<pid_t> seen;
    std::set<pid_t> misplaced;
    for (const auto& child : children)
        if (s.pin && !pinnedTo(child.first, kClientCpu))
            misplaced.insert(child.first);
    std::thread sampler([&] {
        while (sampling) {
            std::uint64_t total = 0;
            std::vector<pid_t> master = descendants(sshdPid);
            if (collectorPid > 0)
                master.push_back(collectorPid);
            for (pid_t p : master) {
                total += pssKiB(p);
                seen.insert(p);
                if (s.pin && !pinnedTo(p, kMasterCpu))
                    misplaced.insert(p);
            }
            r.masterPeakPssKiB = std::max(r.masterPeakPssKiB, total);
            std::this_thread::sleep_for(std::chrono::milliseconds(200));
        }
    });
    for (auto& [pid, fd] : children) {
        std::string text;
        char buf[65536];
        for (ssize_t n; (n = ::read(fd, buf, sizeof buf)) > 0;)
            text.append(buf, static_cast<std::size_t>(n));
        ::close(fd);
        int status = 0;
        rusage usage{};
        ::wait4(pid, &status, 0, &usage);
        r.clientCpuSeconds += static_cast<double>(usage.ru_utime.tv_sec + usage.ru_stime.tv_sec) +
                              static_cast<double>(usage.ru_utime.tv_usec + usage.ru_stime.tv_usec) / 1e6;
        std::istringstream in(text);
        for (std::string word; in >> word;) {
            if (word == "ok") {
                double ms = 0;
                std::uint64_t recs = 0;
                in >> ms >> recs;
                r.latencyMs.push_back(ms);
                r.records += recs;
                ++r.ok;
            } else if (word == "err") {
                std::string kind;
                in >> kind;
                ++r.errors[kind];
            } else if (word == "peak") {
                std::uint64_t p = 0;
                in >> p;
                r.peakConcurrent += p;
            } else if (word == "left") {
                std::uint64_t n = 0;
                in >> n;
                r.leftAtEnd += n;
            }
        }
    }
    sampling = false;
    sampler.join();
    r.masterProcsSeen = seen.size();
    r.misplaced = misplaced.size();
    // Let sshd's processes finish what just closed (and, without cgroups,
    // the listener reap them) before reading the CPU.
    std::this_thread::sleep_for(std::chrono::milliseconds(300));
    const MasterCpu cpu1 = masterCpu(sshdPid, collectorPid, sshdGroup, collectorGroup);
    r.cpuWallSeconds = monoSeconds() - cpuFrom;
    r.collectorCpuSeconds = cpu1.collector - cpu0.collector;
    r.masterCpuSeconds = cpu1.sshd - cpu0.sshd + r.collectorCpuSeconds;
    r.achieved = static_cast<double>(r.ok) / s.stepSeconds;
    r.p50 = percentile(r.latencyMs, 0.50);
    r.p99 = percentile(r.latencyMs, 0.99);
    return r;
}

std::string errorsText(const StepResult& r)
{
    if (r.errors.empty())
        return "none";
    std::string t;
    for (const auto& [k, n] : r.errors)
        t += (t.empty() ? "" : ", ") + k + " " + std::to_string(n);
    return t;
}

// The queue a sustained step may leave, in seconds of the offered rate.
constexpr double kMaxLeftSeconds = 0.5;

// Sustained, the same for every ramp (ferry, ferry-cert, sshd alone): no
// errors, p99 latency at most 1 s, and when the offering ended no more than
// half a second's worth of the offered pushes (0.5 s x the rate) were still
// unfinished (queued or under way). Open loop: every scheduled push
// completes (its latency counts from when it was due) or is an error. A
// master that keeps up holds about rate x latency pushes at any moment; one
// that falls behind builds a queue that grows through the step, and p99
// alone would still pass it while the queue is under a second old at the
// end of the step (the last pushes, the slowest, are a few of the step's).
bool passes(const StepResult& r)
{
    return r.errors.empty() && r.p99 <= 1000.0 && static_cast<double>(r.leftAtEnd) <= kMaxLeftSeconds * r.offered;
}

// One of the ramps that run together.
struct Ramp {
    const char* label;
    Target target;
    const std::vector<SimNode>* nodes;
    pid_t sshdPid;
    pid_t collectorPid;
    const CpuGroup* sshdGroup;      // sshd's processes
    const CpuGroup* collectorGroup; // collectord, or sshd alone's sink
    const char* collectorLabel;
    StepResult best;     // the last step that passed (offered 0 if none)
    double failedAt = 0; // the first ×1.5 step that failed
    bool stopped = false;
    std::size_t masterProcsSeen = 0; // over all its steps
    std::size_t misplaced = 0;
};

// Ramps the offered rate ×1.5 per step, then, between the last step that
// passed and the first that failed, ×1.15 per step, then ×1.05 and ×1.02
// the same way: a sustained rate is known to about 2 %, not to the ramp's
// 50 %. A ratio of two rates is known no better than its two rates: with
// ×1.15 last it could read only 1.0 or 0.87 and below, nothing between,
// where the target of 0.9 lies; with ×1.05 last each rate could read up to
// 5 % low, depending on where its steps fell, and the ratio 5 % off either
// way. The ramps take their steps in turn, each rate for every ramp before
// the next rate: on a shared machine, load that comes and goes falls on all
// of them alike, not on whichever ramp happened to run then.
void rampTogether(const Settings& s, std::vector<Ramp>& ramps)
{
    auto step = [&](Ramp& ramp, double rate) {
        const StepResult r = runStep(s, ramp.target, *ramp.nodes, rate, ramp.sshdPid, ramp.collectorPid,
                                     *ramp.sshdGroup, *ramp.collectorGroup);
        // Per completed push: sshd's processes (with the key helper and the
        // relay) and collectord (sshd alone: its sink).
        const double perPushMs = r.ok > 0 ? 1e3 / static_cast<double>(r.ok) : 0;
        std::printf("  %-10s offered %7.1f/s  done %7.1f/s  p50 %7.1f ms  p99 %7.1f ms  left %4" PRIu64
                    "  peak concurrent %4" PRIu64
                    "  master cpu %5.2f s over %4.1f s (%4.0f%% of a core; per push sshd %5.1f ms, %s %4.2f ms; "
                    "the clients %5.1f ms)  master PSS %6.1f MiB  errors: %s%s\n",
                    ramp.label, r.offered, r.achieved, r.p50, r.p99, r.leftAtEnd, r.peakConcurrent, r.masterCpuSeconds,
                    r.cpuWallSeconds, r.cpuWallSeconds > 0 ? 100.0 * r.masterCpuSeconds / r.cpuWallSeconds : 0,
                    (r.masterCpuSeconds - r.collectorCpuSeconds) * perPushMs, ramp.collectorLabel,
                    r.collectorCpuSeconds * perPushMs, r.clientCpuSeconds * perPushMs,
                    static_cast<double>(r.masterPeakPssKiB) / 1024.0, errorsText(r).c_str(),
                    passes(r) ? "" : "  (not sustained)");
        if (r.misplaced > 0)
            std::printf("  %-10s %zu processes of the master or the clients were not on their CPU\n", ramp.label,
                        r.misplaced);
        std::fflush(stdout);
        ramp.masterProcsSeen += r.masterProcsSeen;
        ramp.misplaced += r.misplaced;
        return r;
    };
    // One step of a ramp: the last that passed, or the first that failed.
    auto tryRate = [&](Ramp& ramp, double rate) {
        const StepResult r = step(ramp, rate);
        if (passes(r)) {
            ramp.best = r;
        } else {
            ramp.failedAt = rate;
            ramp.stopped = true;
        }
    };
    for (double rate = s.startRate; rate <= s.maxRate; rate *= 1.5) {
        bool any = false;
        for (auto& ramp : ramps) {
            if (!ramp.stopped) {
                any = true;
                tryRate(ramp, rate);
            }
        }
        if (!any)
            break;
    }
    for (const double factor : {1.15, 1.05, 1.02}) {
        for (auto& ramp : ramps)
            ramp.stopped = ramp.best.offered <= 0 || ramp.failedAt <= 0;
        for (bool any = true; any;) {
            any = false;
            for (auto& ramp : ramps) {
                const double rate = ramp.best.offered * factor;
                if (ramp.stopped || rate >= ramp.failedAt * 0.99) {
                    ramp.stopped = true;
                    continue;
                }
                any = true;
                tryRate(ramp, rate);
            }
        }
    }
}

Settings parseArgs(int argc, char* argv[])
{
    Settings s;
    for (int i = 1; i < argc; ++i) {
        const std::string a = argv[i];
        auto value = [&](const char* name) {
            if (i + 1 >= argc)
                throw Error(std::string("option ") + name + " needs a value");
            return std::string(argv[++i]);
        };
        if (a == "--nodes")
            s.nodes = std::max(10, std::stoi(value("--nodes")));
        else if (a == "--procs")
            s.procs = std::max(1, std::stoi(value("--procs")));
        else if (a == "--threads")
            s.threads = std::max(1, std::stoi(value("--threads")));
        else if (a == "--step-seconds")
            s.stepSeconds = std::max(2.0, std::stod(value("--step-seconds")));
        else if (a == "--start-rate")
            s.startRate = std::max(1.0, std::stod(value("--start-rate")));
        else if (a == "--max-rate")
            s.maxRate = std::stod(value("--max-rate"));
        else if (a == "--no-pin")
            s.pin = false;
        else if (a == "--no-early-policy")
            s.earlyPolicy = false;
        else if (a == "--ca-type")
            s.caType = value("--ca-type");
        else if (a == "--collector-nice")
            s.collectorNice = std::stoi(value("--collector-nice"));
        else if (a == "--rounds")
            s.rounds = std::max(1, std::stoi(value("--rounds")));
        else if (a == "--auth") {
            const std::string v = value("--auth");
            if (v != "helper" && v != "cert" && v != "both")
                throw Error("--auth takes helper, cert or both, not '" + v + "'");
            s.helperAuth = v != "cert";
            s.certAuth = v != "helper";
        } else
            throw Error("unknown argument '" + a + "' (see the comment at the top of MasterLoadBench.cpp)");
    }
    return s;
}

// B handshakes started at the same instant (a fleet arriving at once):
// returns how many failed, by kind.
std::map<std::string, int> burst(const std::vector<SimNode>& nodes, int sshPort, int count)
{
    std::map<std::string, int> errors;
    std::mutex mutex;
    std::atomic<int> ready{0};
    std::atomic<bool> go{false};
    std::vector<std::thread> threads;
    for (int i = 0; i < count; ++i) {
        threads.emplace_back([&, i] {
            const SimNode& node = nodes[static_cast<std::size_t>(i) % nodes.size()];
            ++ready;
            while (!go)
                std::this_thread::yield();
            try {
                SshOptions o;
                o.privateKeyFile = node.paths.privateKeyFile();
                o.knownHostsFile = node.paths.knownHostsFile();
                o.connectTimeout = std::chrono::seconds(30);
                o.ioTimeout = std::chrono::seconds(30);
                SshSession session(SshTarget{"127.0.0.1", static_cast<std::uint16_t>(sshPort), "ferry-tunnel"}, o);
                session.exec("ferry-tunnel-relay").reset();
            } catch (const std::exception& e) {
                std::lock_guard lock(mutex);
                ++errors[errorKind(e)];
            }
        });
    }
    while (ready < count)
        std::this_thread::yield();
    go = true;
    for (auto& t : threads)
        t.join();
    return errors;
}

std::string kindsText(const std::map<std::string, int>& errors)
{
    int total = 0;
    std::string t;
    for (const auto& [k, n] : errors) {
        total += n;
        t += (t.empty() ? " (" : ", ") + k + " " + std::to_string(n);
    }
    return std::to_string(total) + (t.empty() ? "" : t + ")");
}

std::vector<SimNode> makeNodes(const Settings& s, const TempDir& dir, const std::string& dbPath, int sshPort)
{
    std::vector<SimNode> nodes;
    RegistryStore registry(dbPath);
    for (int i = 0; i < s.nodes; ++i) {
        SimNode n;
        char name[32];
        std::snprintf(name, sizeof name, "node-%05d", i);
        n.name = name;
        n.dir = dir / ("nodes/" + n.name);
        fs::create_directories(n.dir);
        n.paths.stateDir = n.dir;
        n.paths.configDir = n.dir;
        ensureKeyPair(n.paths.privateKeyFile());
        n.spool = n.paths.spoolFile();
        n.secret = generateSecret();
        // What registryd stores once a node proved its secret.
        registry.addNode(n.name, n.secret);
        registry.recordKey(n.name, publicKeyLine(n.paths.privateKeyFile()), "push", "127.0.0.1", 22, nowMs());
        n.config.nodeName = n.name;
        n.config.masters = {{"127.0.0.1", static_cast<std::uint16_t>(sshPort), 50010}};
        n.config.connectTimeout = std::chrono::seconds(30);
        n.config.ioTimeout = std::chrono::seconds(30);
        // Each node from its own loopback address, as a fleet comes from
        // many: collectord limits the rate per node address (the relay names
        // it), so nodes all from 127.0.0.1 would share one source's bucket.
        n.config.sourceAddress = "127.0." + std::to_string(1 + i / 250) + "." + std::to_string(2 + i % 250);
        nodes.push_back(std::move(n));
    }
    // The helper's view, written once (registryd writes it per change).
    writeAuthorizedKeysView(registry.connection(), authorizedKeysViewPath(dbPath));
    return nodes;
}

// The certificate path: each node registers once with registryd's Manager on
// a master with a CA (the signed request keyregd sends to TCP 50010, with
// the key derived for this master id), and the certificate in the answer
// goes next to a copy of the node's key, where keyregd keeps it. Returns the
// nodes as they log in to the CA-trusting sshd on sshPort.
std::vector<SimNode> certifyNodes(const std::vector<SimNode>& nodes, const std::string& dbPath,
                                  const std::string& caKey, const std::string& krl, const std::string& hostKey,
                                  int sshPort)
{
    RegistryStore registry(dbPath);
    registryd::ManagerOptions options;
    options.hostKeys = {hostKey};
    options.acceptUnknown = false;
    options.caKeyFile = caKey;
    options.krlFile = krl;
    registryd::Manager manager(registry, options, [] { return nowMs(); });
    manager.prepare();
    std::vector<SimNode> out;
    for (const auto& n : nodes) {
        SimNode c = n;
        c.dir = n.dir + "-cert";
        fs::create_directories(c.dir);
        c.paths.stateDir = c.dir;
        c.paths.configDir = c.dir;
        fs::copy_file(n.paths.privateKeyFile(), c.paths.privateKeyFile());
        writeFile(c.paths.knownHostsFile(), readFile(n.paths.knownHostsFile()), 0600);
        c.config.masters[0].sshPort = static_cast<std::uint16_t>(sshPort);
        RegistrationRequest request;
        request.node = n.name;
        request.publicKey = normalizeKeyLine(publicKeyLine(n.paths.privateKeyFile()));
        request.mode = "push";
        request.timeMs = nowMs();
        request.nonce = randomBytes(kNonceSize);
        request.masterId = masterIdOf(c.config.masters[0]);
        const std::string key = deriveMasterKey(n.secret, request.masterId);
        const Frame answer =
            manager.handle({MessageType::Request, encodeRegistrationRequest(request, key)}, "127.0.0.1:40000");
        if (answer.type != MessageType::Response)
            throw Error("registryd refused the registration of " + n.name + ": " +
                        decodeError(answer.payload, "").message);
        const auto response = decodeRegistrationResponse(answer.payload, "registryd");
        if (response.response.state != RegistrationState::Accepted || response.response.certificate.empty() ||
            !verifyRegistrationResponse(response, key))
            throw Error("registryd issued no certificate for " + n.name);
        writeFile(c.paths.privateKeyFile() + "-cert.pub", response.response.certificate + "\n", 0644);
        out.push_back(std::move(c));
    }
    return out;
}

std::uint64_t fileSize(const std::string& path)
{
    std::error_code ec;
    const auto n = fs::file_size(path, ec);
    return ec ? 0 : n;
}

// What the registry's rows take on disk: master.db once its WAL is folded
// in (a checkpoint, as SQLite makes one every 1000 pages). The file and its
// WAL as they happen to be hold some pages twice or more, by how far the
// last automatic checkpoint lies back.
double registryBytes(const std::string& dbPath)
{
    {
        Database db(dbPath);
        db.exec("PRAGMA wal_checkpoint(TRUNCATE)");
    }
    return static_cast<double>(fileSize(dbPath) + fileSize(dbPath + "-wal"));
}

int benchMain(const Settings& s)
{
    // Everything of the master starts from here, and inherits this CPU: the
    // sshds (and what they fork: the per-connection sshd, the key helper,
    // the relay), the sink and collectord. The clients start after the
    // switch to the other CPU below.
    if (s.pin) {
        if (::sysconf(_SC_NPROCESSORS_ONLN) < 2)
            throw Error("pinning the master and the clients apart needs two CPUs, and this machine has one: run "
                        "with --no-pin");
        pinTo(kMasterCpu);
    }
    // Declared first, so that they are removed after every process in them
    // has stopped.
    const CpuGroup ferryGroup("master-load", "ferry-sshd");
    const CpuGroup certGroup("master-load", "cert-sshd");
    const CpuGroup aloneGroup("master-load", "alone-sshd");
    const CpuGroup collectorGroup("master-load", "collectord");
    const CpuGroup sinkGroup("master-load", "sink");
    TempDir dir;
    // collectord registers org.ferry.Collector1 on a (private) system bus.
    TestBus bus;
    ::chmod(dir.path().c_str(), 0755);
    ensureUser("ferry", "/usr/sbin/nologin");
    ensureTunnelUser();
    const std::string master = dir / "master";
    fs::create_directories(master);
    const std::string dbPath = master + "/master.db";

    // The master as shipped: the drop-in with the real key helper reading
    // the view of keys as its own user.
    RootOwnedCopy helper(buildPath("services/authorized-keys/ferry-authorized-keys"));
    SshdOptions ferryOptions;
    ferryOptions.tail = shippedMasterDropIn(false, helper.path() + " --state-dir " + master, dir / "collector.sock");
    TestSshd ferrySshd(ferryOptions);
    ferryGroup.add(ferrySshd.pid());

    const double t0 = monoSeconds();
    prepareMasterSideDirs(master);
    std::vector<SimNode> nodes = makeNodes(s, dir, dbPath, ferrySshd.port());
    const double registryBytesPlain = registryBytes(dbPath);
    run({"chown", "-R", "ferry:ferry", master, master + "-keys"});
    const double registerSeconds = monoSeconds() - t0;

    // sshd alone: the same binary and global settings, the same keys in a
    // plain authorized_keys file, the same relay, no helper, a sink for the
    // collector.
    const std::string sinkPath = dir / "sink.sock";
    const pid_t sink = startSink(sinkPath, static_cast<long>(::getpwnam("ferry-tunnel")->pw_gid));
    sinkGroup.add(sink);
    SshdOptions aloneOptions;
    aloneOptions.tail = shippedMasterDropIn(true, {}, sinkPath);
    TestSshd aloneSshd(aloneOptions);
    aloneGroup.add(aloneSshd.pid());
    {
        std::string keys;
        for (const auto& n : nodes)
            keys += tunnelKeyLine(publicKeyLine(n.paths.privateKeyFile())) + "\n";
        writeFile(aloneSshd.authorizedKeysFile("ferry-tunnel"), keys);
    }
    // Debian's default MaxStartups (10:30:100), everything else as shipped.
    SshdOptions stockOptions = aloneOptions;
    stockOptions.globalLines = {"MaxStartups 10:30:100"};
    TestSshd stockSshd(stockOptions);
    writeFile(stockSshd.authorizedKeysFile("ferry-tunnel"), readFile(aloneSshd.authorizedKeysFile("ferry-tunnel")));
    for (auto& n : nodes) {
        writeFile(n.paths.knownHostsFile(),
                  ferrySshd.knownHostsLine() + "\n" + aloneSshd.knownHostsLine() + "\n" + stockSshd.knownHostsLine() + "\n",
                  0600);
    }
    // The certificate path: an sshd that trusts the registry's CA and reads
    // its KRL, with no AuthorizedKeysCommand (services/registryd/README.md),
    // relaying to the same collectord.
    std::optional<TestSshd> certSshd;
    std::vector<SimNode> certNodes;
    double certifySeconds = 0;
    double registryBytesWithCerts = 0;
    if (s.certAuth) {
        const std::string ca = dir / "ca";
        const std::string krl = master + "/revoked_keys.krl";
        run({"ssh-keygen", "-q", "-t", s.caType, "-N", "", "-C", "ferry-ca", "-f", ca});
        // An empty KRL until the registry writes it (sshd refuses every key
        // while RevokedKeys is missing).
        SshdOptions certOptions;
        certOptions.globalLines = {"TrustedUserCAKeys " + ca + ".pub", "RevokedKeys " + krl};
        certOptions.tail = shippedMasterDropIn(true, {}, dir / "collector.sock");
        const std::string keysFileLine = "\tAuthorizedKeysFile @DIR@/authorized_keys.%u\n";
        certOptions.tail.replace(certOptions.tail.find(keysFileLine), keysFileLine.size(),
                                 "\tAuthorizedKeysFile none\n");
        const double c0 = monoSeconds();
        writeFile(krl, "", 0644);
        certSshd.emplace(certOptions);
        certGroup.add(certSshd->pid());
        certNodes = certifyNodes(nodes, dbPath, ca, krl, certSshd->hostKeyLine(), certSshd->port());
        for (auto& n : certNodes)
            writeFile(n.paths.knownHostsFile(), certSshd->knownHostsLine() + "\n", 0600);
        registryBytesWithCerts = registryBytes(dbPath);
        run({"chown", "-R", "ferry:ferry", master, master + "-keys"});
        certifySeconds = monoSeconds() - c0;
    }
    // collectord at the unit's Nice= relative to sshd (which runs at the
    // bench's own), as systemd starts them on a master.
    std::vector<std::string> collectorArgv = {buildPath("services/collectord/ferry-collectord"),
                                              "--listen=127.0.0.1:" + std::to_string(freePort()), "--relay-socket",
                                              dir / "collector.sock"};
    if (s.collectorNice != 0)
        collectorArgv.insert(collectorArgv.begin(), {"/usr/bin/nice", "-n", std::to_string(s.collectorNice)});
    Process collector(collectorArgv, {{"FERRY_STATE_DIR", master}}, dir / "collectord.log");
    if (!waitUntil([&] { return readFile(dir / "collectord.log").find("Accepting") != std::string::npos; }))
        throw Error("collectord did not start: " + readFile(dir / "collectord.log"));
    collectorGroup.add(collector.pid());
    const std::uint64_t collectorIdleKiB = pssKiB(collector.pid());
    // The master is complete: from here on this process and the clients it
    // forks are the load generator.
    if (s.pin)
        pinTo(kClientCpu);

    const int burstSize = std::min(50, s.nodes);
    const auto stockBurst = burst(nodes, stockSshd.port(), burstSize);
    const auto shippedBurst = burst(nodes, aloneSshd.port(), burstSize);
    stockSshd.stop();

    std::printf(
        "master-load: %d nodes registered (key pair, secret, registry rows) in %.1f s; %d client processes x "
        "%d threads; %.0f s per step, rate x1.5 per step until a step is not sustained, then x1.15, x1.05 and x1.02 "
        "from the last step that was\n",
        s.nodes, registerSeconds, s.procs, s.threads, s.stepSeconds);
    std::vector<SimNode> aloneNodes = nodes;
    for (auto& n : aloneNodes)
        n.config.masters[0].sshPort = static_cast<std::uint16_t>(aloneSshd.port());
    std::vector<Ramp> ramps;
    if (s.helperAuth) {
        std::printf("ferry: shipped sshd drop-in (AuthorizedKeysCommand helper) + collectord; a push = connect, key "
                    "auth, the relay to collectord, HMAC handshake, %d records (~150 B each), ack, close\n",
                    s.recordsPerPush);
        ramps.push_back({"ferry",
                         Target::Ferry,
                         &nodes,
                         ferrySshd.pid(),
                         collector.pid(),
                         &ferryGroup,
                         &collectorGroup,
                         "collectord",
                         {}});
    }
    if (s.certAuth) {
        std::printf("ferry-cert: sshd trusts the registry's CA (%s; TrustedUserCAKeys, RevokedKeys), no "
                    "AuthorizedKeysCommand; %d certificates issued by registryd's Manager in %.1f s; the same push\n",
                    s.caType.c_str(), s.nodes, certifySeconds);
        ramps.push_back({"ferry-cert",
                         Target::Ferry,
                         &certNodes,
                         certSshd->pid(),
                         collector.pid(),
                         &certGroup,
                         &collectorGroup,
                         "collectord",
                         {}});
    }
    std::printf("sshd-alone: same sshd, keys in authorized_keys, a handshake = connect, key auth, the relay to a "
                "sink that accepts and closes, close\n");
    ramps.push_back(
        {"sshd-alone", Target::SshdAlone, &aloneNodes, aloneSshd.pid(), sink, &aloneGroup, &sinkGroup, "sink", {}});
    if (s.pin)
        std::printf("placement: the master (each sshd and everything it forks, collectord, the sink) on CPU %d, the "
                    "simulated nodes' client processes and this driver on CPU %d; the sustained rates are one core's\n",
                    kMasterCpu, kClientCpu);
    else
        std::printf("placement: none (--no-pin): the master and the simulated nodes share every CPU\n");
    std::printf("the ramps take their steps in turn, each rate for every ramp before the next rate\n");
    std::printf("sustained (every ramp alike): no errors, p99 <= 1 s, and at most %.1f s x the offered rate of pushes "
                "left unfinished when the offering ends ('left')\n",
                kMaxLeftSeconds);
    std::printf("collectord at nice %+d from the master's sshd (%s)\n", s.collectorNice,
                s.collectorNice == shippedCollectorNice() ? "units/ferry-collectord.service's Nice="
                                                          : "--collector-nice");
    std::printf("the simulated nodes %s session capability 2 (the Policy in the write of the AuthOk)\n",
                s.earlyPolicy ? "offer" : "do not offer (--no-early-policy)");
    if (ferryGroup.usable() && collectorGroup.usable() && aloneGroup.usable() && sinkGroup.usable() &&
        (!s.certAuth || certGroup.usable()))
        std::printf("master cpu: from cgroups of the bench's own (cpu.stat usage_usec), read at each step's edges: "
                    "sshd's processes of each ramp, collectord, the sink\n");
    else
        std::printf("master cpu: from /proc (no writable cgroup v2): sshd's listener with the children it reaped, "
                    "collectord; a child's CPU counts when it is reaped, which may be in a later step\n");
    // Each round from scratch; later rounds start their ×1.5 steps nearer
    // the edge the first found. Each ramp's figures are then its median
    // round's (by sustained rate).
    std::vector<std::vector<StepResult>> rounds(ramps.size());
    for (int round = 1; round <= s.rounds; ++round) {
        Settings rs = s;
        if (round > 1) {
            double lowest = 0;
            for (const auto& r : rounds)
                if (r.front().offered > 0 && (lowest <= 0 || r.front().offered < lowest))
                    lowest = r.front().offered;
            if (lowest > 0)
                rs.startRate = std::max(s.startRate, 0.75 * lowest);
        }
        if (s.rounds > 1)
            std::printf("round %d of %d: the ramps from %.1f/s\n", round, s.rounds, rs.startRate);
        for (auto& ramp : ramps) {
            ramp.best = {};
            ramp.failedAt = 0;
            ramp.stopped = false;
        }
        rampTogether(rs, ramps);
        std::string line;
        for (std::size_t i = 0; i < ramps.size(); ++i) {
            rounds[i].push_back(ramps[i].best);
            char part[160];
            std::snprintf(part, sizeof part, "%s%s %.1f/s", i == 0 ? "" : ", ", ramps[i].label, ramps[i].best.achieved);
            line += part;
        }
        const double aloneRate = ramps.back().best.achieved;
        for (std::size_t i = 0; i + 1 < ramps.size(); ++i) {
            char part[160];
            std::snprintf(part, sizeof part, "; ratio %s/sshd-alone %.3f", ramps[i].label,
                          aloneRate > 0 ? ramps[i].best.achieved / aloneRate : 0);
            line += part;
        }
        if (s.rounds > 1)
            std::printf("round %d of %d sustained: %s\n", round, s.rounds, line.c_str());
    }
    std::vector<std::vector<double>> roundRates(ramps.size()); // in round order
    for (std::size_t i = 0; i < ramps.size(); ++i)
        for (const auto& r : rounds[i])
            roundRates[i].push_back(r.achieved);
    for (std::size_t i = 0; i < ramps.size(); ++i) {
        auto& r = rounds[i];
        std::sort(r.begin(), r.end(), [](const StepResult& a, const StepResult& b) { return a.achieved < b.achieved; });
        // The lower median when the count is even.
        ramps[i].best = r[(r.size() - 1) / 2];
    }
    const std::uint64_t collectorAfterKiB = pssKiB(collector.pid());
    ::kill(sink, SIGKILL);
    ::waitpid(sink, nullptr, 0);
    StepResult ferry = s.helperAuth ? ramps.front().best : StepResult{};
    const StepResult cert = s.certAuth ? ramps[s.helperAuth ? 1 : 0].best : StepResult{};
    const StepResult alone = ramps.back().best;

    if (s.rounds > 1)
        std::printf("summary (%d nodes; each sustained rate the median of %d rounds, its step's figures):\n", s.nodes,
                    s.rounds);
    else
        std::printf("summary (%d nodes):\n", s.nodes);
    auto ferryRow = [&](const char* label, const StepResult& r) {
        std::printf("  %-20s %7.1f pushes/s  %8.1f records/s  p50 %6.1f ms  p99 %6.1f ms  master cpu %4.0f%% "
                    "of a core  master PSS peak %6.1f MiB\n",
                    label, r.achieved, r.achieved * s.recordsPerPush, r.p50, r.p99,
                    r.cpuWallSeconds > 0 ? 100.0 * r.masterCpuSeconds / r.cpuWallSeconds : 0,
                    static_cast<double>(r.masterPeakPssKiB) / 1024.0);
    };
    if (s.helperAuth)
        ferryRow("ferry sustained", ferry);
    if (s.certAuth)
        ferryRow("ferry-cert sustained", cert);
    std::printf(
        "  sshd alone sustained %7.1f handshakes/s               p50 %6.1f ms  p99 %6.1f ms  master cpu %4.0f%% "
        "of a core\n",
        alone.achieved, alone.p50, alone.p99,
        alone.cpuWallSeconds > 0 ? 100.0 * alone.masterCpuSeconds / alone.cpuWallSeconds : 0);
    // A ratio is taken within each round, whose ramps took their steps in
    // turn under the same conditions, and the median of the rounds' ratios
    // printed: the medians of the rates may come from different rounds, and
    // sshd alone's rate moved by up to 12 % between rounds of one run here.
    auto ratioText = [&](std::size_t ramp) {
        std::vector<double> ratios;
        std::string list;
        for (std::size_t k = 0; k < rounds[ramp].size(); ++k) {
            const double a = roundRates.back()[k];
            ratios.push_back(a > 0 ? roundRates[ramp][k] / a : 0);
            char part[32];
            std::snprintf(part, sizeof part, "%s%.3f", k == 0 ? "" : ", ", ratios.back());
            list += part;
        }
        std::sort(ratios.begin(), ratios.end());
        char text[256];
        if (ratios.size() > 1)
            std::snprintf(text, sizeof text, "%6.3f   (median of the rounds' %s; of the median rates %.3f)",
                          ratios[(ratios.size() - 1) / 2], list.c_str(),
                          alone.achieved > 0 ? rounds[ramp][(rounds[ramp].size() - 1) / 2].achieved / alone.achieved
                                             : 0);
        else
            std::snprintf(text, sizeof text, "%6.3f  ", ratios.empty() ? 0 : ratios[0]);
        return std::string(text);
    };
    if (s.helperAuth)
        std::printf("  ratio ferry/sshd-alone %s (target >= 0.9; key helper, AuthorizedKeysCommand)\n",
                    ratioText(0).c_str());
    if (s.certAuth)
        std::printf("  ratio ferry-cert/sshd-alone %s (target >= 0.9; certificates, TrustedUserCAKeys, %s CA)\n",
                    ratioText(s.helperAuth ? 1 : 0).c_str(), s.caType.c_str());
    // The figures below are the key helper's, or the certificates' when
    // only they ran.
    if (!s.helperAuth)
        ferry = cert;
    std::printf("  burst of %d simultaneous handshakes: %s failed with Debian's MaxStartups 10:30:100, %s with the "
                "shipped 100:30:300\n",
                burstSize, kindsText(stockBurst).c_str(), kindsText(shippedBurst).c_str());
    // Pinned, the master had one core: the sustained rate is one core's.
    const char* cores = s.pin ? "a one-core master" : "a master sharing its cores with the clients";
    std::printf("  implied nodes per master: %.0f at a 60 s period, %.0f at a 240 s period (%s, %s)\n",
                ferry.achieved * 60, ferry.achieved * 240, cores, s.helperAuth ? "key helper" : "certificates");
    if (s.helperAuth && s.certAuth)
        std::printf("  implied nodes per master with certificates: %.0f at a 60 s period, %.0f at a 240 s period "
                    "(%s)\n",
                    cert.achieved * 60, cert.achieved * 240, cores);
    if (s.pin) {
        std::size_t seen = 0, misplaced = 0;
        for (const auto& ramp : ramps) {
            seen += ramp.masterProcsSeen;
            misplaced += ramp.misplaced;
        }
        std::printf("  placement checked while the steps ran: %zu processes of the master seen, %zu processes of "
                    "the master or the clients off their CPU\n",
                    seen, misplaced);
    }
    // Nothing is resident per node on the master: sshd and collectord keep
    // no per-node state between sessions, and SQLite's page cache is
    // bounded. What a registered node costs is its registry rows, which the
    // page cache holds when they are hot.
    std::printf(
        "  memory per registered node: %.2f KiB of registry rows (master.db checkpointed, before any push; resident "
        "only as bounded page cache)   (target <= 4 KiB); collectord PSS %.1f MiB idle, %.1f MiB after the ramp\n",
        registryBytesPlain / 1024.0 / s.nodes, static_cast<double>(collectorIdleKiB) / 1024.0,
        static_cast<double>(collectorAfterKiB) / 1024.0);
    if (s.certAuth)
        std::printf("  memory per registered node with its certificate: %.2f KiB of registry rows (target <= 4 KiB)\n",
                    registryBytesWithCerts / 1024.0 / s.nodes);
    if (ferry.peakConcurrent > 0)
        std::printf("  memory per concurrent push: %.0f KiB (master PSS peak %.1f MiB over %" PRIu64
                    " pushes in flight at the sustained step)\n",
                    static_cast<double>(ferry.masterPeakPssKiB) / static_cast<double>(ferry.peakConcurrent),
                    static_cast<double>(ferry.masterPeakPssKiB) / 1024.0, ferry.peakConcurrent);
    return 0;
}

} // namespace

int main(int argc, char* argv[]) try {
    initLogging("ferry-bench-master-load", std::getenv("FERRY_BENCH_DEBUG") ? 1 : -1);
    if (!isRoot()) {
        std::fprintf(stderr, "ferry-bench-master-load: needs root (it runs sshd in a mount namespace)\n");
        return 1;
    }
    ::signal(SIGPIPE, SIG_IGN);
    std::setvbuf(stdout, nullptr, _IOLBF, 0);
    return benchMain(parseArgs(argc, argv));
} catch (const std::exception& e) {
    std::fprintf(stderr, "ferry-bench-master-load: %s\n", e.what());
    return 1;
}
