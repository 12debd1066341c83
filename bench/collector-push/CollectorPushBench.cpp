// bench/collector-push: collectord alone, its CPU per push.
//
// N nodes are registered in master.db through RegistryStore (the calls
// registryd makes once a node proved its secret), the real ferry-collectord
// starts on them (a private system bus, its relay socket), and C concurrent
// clients push one batch of R records each (~150 B a record, one sampler
// run) over and over for S seconds. A push is what ferry-tunnel-relay hands
// collectord for a node behind sshd: a connection to the relay socket from
// the tunnel user (the client process setuid()s to ferry-tunnel once it has
// read its nodes), the relay's header line naming the node's address, then
// the node's session as pushd runs it (pushd::runPushCycle over the
// socket). No sshd, no file descriptors passed: what is left is collectord.
//
// Each node pushes first once before the measurement (its epoch's admission
// is not what a push costs on a master that runs). The measured pushes
// spread over the nodes in turn, each client its own share, so that no node
// runs two sessions at once. Each client pushes again as soon as its last
// push ended, or, with --rate R, the clients together start R pushes a
// second (a master's load between a fleet's periods: collectord idles
// between pushes, and each one wakes it).
//
// collectord's CPU: the usage_usec of a cgroup (v2) of the bench's own
// holding collectord, read before the first measured push and 0.3 s after
// the last (a session's thread ends after the node read its last Ack);
// without a writable cgroup v2, /proc/<pid>/stat (utime + stime of the
// process: its ended threads included).
//
// The floor, measured in the same run on the same file system as master.db:
// one transaction inserting the same R records into a WAL database with
// synchronous=FULL (what each push must cost at least: its records made
// durable before the Ack), its thread's CPU per transaction. The ratio
// collectord/floor is what the collector adds around that.
//
// collectord runs on CPU 0, the clients on CPU 1 (--no-pin: anywhere); the
// run script starts everything at nice 5. --perf FILE records collectord
// (`perf record -g -p <its pid>`, the pid this bench started) over the
// measured seconds. --collectord PATH runs another build's collectord (to
// compare two builds on one machine, interleaved). --attach 'CMD {pid}'
// runs CMD (sh -c) over the measured seconds, {pid} replaced by
// collectord's, and stops it with SIGINT (strace -f -c -p {pid} -o FILE).
//
//   ferry-bench-collector-push [--nodes N] [--clients C] [--seconds S]
//                              [--records R] [--rate R] [--collectord PATH]
//                              [--perf FILE] [--attach CMD] [--no-pin]

#include <fcntl.h>
#include <grp.h>
#include <pwd.h>
#include <sched.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cinttypes>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <map>
#include <mutex>
#include <sstream>
#include <thread>
#include <vector>

#include "BenchHost.h"
#include "PushCycle.h"
#include "ferry/Clock.h"
#include "ferry/Crypto.h"
#include "ferry/Error.h"
#include "ferry/Log.h"
#include "ferry/RegistryStore.h"
#include "ferry/RelayHeader.h"
#include "ferry/Spool.h"
#include "ferry/Sqlite.h"
#include "ferry/Stream.h"
#include "support/TestSshd.h"
#include "support/TestSupport.h"

using namespace ferry;
using namespace ferry::test;
using namespace ferry::bench;
namespace fs = std::filesystem;

namespace {

struct Settings {
    int nodes = 200;
    int clients = 4;
    double seconds = 10;
    int records = 5;
    // Pushes per second over all clients (0: each client pushes again as
    // soon as its last push ended).
    double rate = 0;
    std::string collectord;
    std::string perfFile;
    std::string attach;
    bool pin = true;
    int floorTransactions = 400;
};

struct Node {
    std::string name;
    std::string secret;
    std::string address; // as the relay's header names it
    std::string spool;
};

void writeAll(int fd, const std::string& text)
{
    std::size_t off = 0;
    while (off < text.size()) {
        const ssize_t n = ::write(fd, text.data() + off, text.size() - off);
        if (n <= 0)
            return;
        off += static_cast<std::size_t>(n);
    }
}

std::string readAll(int fd)
{
    std::string text;
    char buf[4096];
    for (ssize_t n; (n = ::read(fd, buf, sizeof buf)) > 0;)
        text.append(buf, static_cast<std::size_t>(n));
    return text;
}

char readByte(int fd)
{
    char c = 0;
    if (::read(fd, &c, 1) != 1)
        throw Error("the other side of the bench went away");
    return c;
}

int connectUnix(const std::string& path)
{
    const int fd = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0)
        throwErrno("create a unix socket");
    sockaddr_un addr{};
    addr.sun_family = AF_UNIX;
    std::strncpy(addr.sun_path, path.c_str(), sizeof addr.sun_path - 1);
    if (::connect(fd, reinterpret_cast<const sockaddr*>(&addr), sizeof addr) != 0) {
        const int e = errno;
        ::close(fd);
        throw Error("connect to " + path + ": " + errnoMessage(e));
    }
    return fd;
}

// One push as ferry-tunnel-relay hands it to collectord: the header, then
// the node's session.
pushd::PushCycleResult push(const Settings& s, const Node& node, const std::string& socketPath)
{
    Spool spool(node.spool, {});
    std::vector<Record> rs;
    for (int i = 0; i < s.records; ++i)
        rs.push_back({0, nowMs(), "load", std::string(150, static_cast<char>('a' + i))});
    spool.appendAll(rs);
    const int fd = connectUnix(socketPath);
    FdStream stream(fd, fd, "collectord", true);
    const auto address = parseRelayAddress(node.address, "22");
    const std::string header = formatRelayHeader(*address);
    stream.writeAll(header.data(), header.size(), Clock::now() + std::chrono::seconds(10));
    pushd::PushCycleOptions o;
    o.nodeName = node.name;
    o.secret = node.secret;
    o.ioTimeout = std::chrono::seconds(30);
    return pushd::runPushCycle(stream, spool, o);
}

// The clients' process: as the tunnel user, C threads; each node pushes
// once (the warm-up), then 'w' to the parent, which answers 'g' when it has
// read collectord's CPU; then S seconds of pushes, and the results as text
// lines ("ok <latency ms>", "err <kind>", "first <errors>").
[[noreturn]] void clientMain(const Settings& s, const std::vector<Node>& nodes, const std::string& socketPath,
                             uid_t uid, gid_t gid, int toParent, int fromParent)
{
    ::prctl(PR_SET_PDEATHSIG, SIGKILL);
    try {
        if (s.pin)
            pinTo(kClientCpu);
        if (::setgroups(0, nullptr) != 0 || ::setgid(gid) != 0 || ::setuid(uid) != 0)
            throwErrno("become the tunnel user");
        std::mutex mutex;
        std::string lines;
        std::atomic<int> warmupErrors{0};
        auto share = [&](int t) {
            std::vector<const Node*> mine;
            for (std::size_t i = static_cast<std::size_t>(t); i < nodes.size();
                 i += static_cast<std::size_t>(s.clients))
                mine.push_back(&nodes[i]);
            return mine;
        };
        {
            std::vector<std::thread> pool;
            for (int t = 0; t < s.clients; ++t)
                pool.emplace_back([&, t] {
                    for (const Node* n : share(t)) {
                        try {
                            push(s, *n, socketPath);
                        } catch (const std::exception& e) {
                            ++warmupErrors;
                            std::fprintf(stderr, "warm-up push of %s failed: %s\n", n->name.c_str(), e.what());
                        }
                    }
                });
            for (auto& t : pool)
                t.join();
        }
        writeAll(toParent, "w");
        readByte(fromParent);
        const double end = monoSeconds() + s.seconds;
        std::vector<std::thread> pool;
        for (int t = 0; t < s.clients; ++t)
            pool.emplace_back([&, t] {
                const auto mine = share(t);
                std::string out;
                const double interval = s.rate > 0 ? s.clients / s.rate : 0;
                const double start = monoSeconds() + interval * t / s.clients;
                std::uint64_t k = 0;
                for (std::size_t i = 0; !mine.empty() && monoSeconds() < end; i = (i + 1) % mine.size()) {
                    if (interval > 0) {
                        const double due = start + interval * static_cast<double>(k++);
                        if (due >= end)
                            break;
                        if (due > monoSeconds())
                            std::this_thread::sleep_for(std::chrono::duration<double>(due - monoSeconds()));
                    }
                    const double t0 = monoSeconds();
                    try {
                        const auto r = push(s, *mine[i], socketPath);
                        out += "ok " + std::to_string((monoSeconds() - t0) * 1e3) + " " +
                               std::to_string(r.recordsSent) + "\n";
                    } catch (const std::exception& e) {
                        out += "err " + errorKind(e) + "\n";
                        if (std::getenv("FERRY_BENCH_DEBUG") != nullptr)
                            std::fprintf(stderr, "%s: %s\n", mine[i]->name.c_str(), e.what());
                    }
                }
                std::lock_guard lock(mutex);
                lines += out;
            });
        for (auto& t : pool)
            t.join();
        lines += "first " + std::to_string(warmupErrors.load()) + "\n";
        writeAll(toParent, lines);
        ::_exit(0);
    } catch (const std::exception& e) {
        std::fprintf(stderr, "ferry-bench-collector-push: clients: %s\n", e.what());
        ::_exit(1);
    }
}

// CPU per transaction of one synced transaction inserting `records` rows
// into a WAL database at path (the shape of master.db's records table).
struct Floor {
    double cpuMs = 0;
    double wallMs = 0;
};

Floor measureFloor(const std::string& path, int records, int transactions)
{
    Database db(path);
    db.exec("CREATE TABLE IF NOT EXISTS records (node TEXT NOT NULL, epoch TEXT NOT NULL, seq INTEGER NOT NULL, "
            "time_ms INTEGER NOT NULL, kind TEXT NOT NULL, payload BLOB NOT NULL, received_ms INTEGER NOT NULL, "
            "via TEXT NOT NULL, PRIMARY KEY (node, epoch, seq)) WITHOUT ROWID");
    const std::string epoch = toHex(randomBytes(16));
    std::int64_t seq = 0;
    auto one = [&] {
        Transaction tx(db);
        Statement insert(db, "INSERT OR IGNORE INTO records (node, epoch, seq, time_ms, kind, payload, received_ms, "
                             "via) VALUES (?, ?, ?, ?, ?, ?, ?, 'push')");
        for (int i = 0; i < records; ++i) {
            insert.bind(1, "node-00000").bind(2, epoch).bind(3, ++seq).bind(4, nowMs()).bind(5, "load");
            insert.bindBlob(6, std::string(150, static_cast<char>('a' + i))).bind(7, nowMs());
            insert.run();
            insert.reset();
        }
        tx.commit();
    };
    for (int i = 0; i < 20; ++i)
        one();
    const double c0 = threadCpuSeconds(), w0 = monoSeconds();
    for (int i = 0; i < transactions; ++i)
        one();
    return {(threadCpuSeconds() - c0) * 1e3 / transactions, (monoSeconds() - w0) * 1e3 / transactions};
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
            s.nodes = std::max(1, std::stoi(value("--nodes")));
        else if (a == "--clients")
            s.clients = std::max(1, std::stoi(value("--clients")));
        else if (a == "--seconds")
            s.seconds = std::max(1.0, std::stod(value("--seconds")));
        else if (a == "--records")
            s.records = std::max(1, std::stoi(value("--records")));
        else if (a == "--rate")
            s.rate = std::max(0.0, std::stod(value("--rate")));
        else if (a == "--collectord")
            s.collectord = value("--collectord");
        else if (a == "--attach")
            s.attach = value("--attach");
        else if (a == "--perf")
            s.perfFile = value("--perf");
        else if (a == "--no-pin")
            s.pin = false;
        else
            throw Error("unknown argument '" + a + "' (see the comment at the top of CollectorPushBench.cpp)");
    }
    if (s.clients > s.nodes)
        throw Error("--clients " + std::to_string(s.clients) + " needs at least as many --nodes");
    return s;
}

int benchMain(const Settings& s)
{
    if (s.pin) {
        if (::sysconf(_SC_NPROCESSORS_ONLN) < 2)
            throw Error("pinning collectord and the clients apart needs two CPUs: run with --no-pin");
        pinTo(kMasterCpu);
    }
    const CpuGroup group("collector-push", "collectord");
    TempDir dir;
    TestBus bus;
    ensureUser("ferry", "/usr/sbin/nologin");
    ensureTunnelUser();
    const passwd* tunnel = ::getpwnam("ferry-tunnel");
    if (tunnel == nullptr)
        throw Error("no user ferry-tunnel");
    const uid_t tunnelUid = tunnel->pw_uid;
    const gid_t tunnelGid = tunnel->pw_gid;
    const std::string master = dir / "master";
    fs::create_directories(master);
    const std::string dbPath = master + "/master.db";
    prepareMasterSideDirs(master);

    // The nodes' spools live in memory (tmpfs): their syncs are the nodes'
    // cost, not the master's, and must not queue behind master.db's.
    std::string spoolDir = "/dev/shm/ferry-bench-collector-push-XXXXXX";
    if (::mkdtemp(spoolDir.data()) == nullptr)
        throwErrno("create a directory under /dev/shm");
    struct RemoveDir {
        std::string path;
        ~RemoveDir()
        {
            std::error_code ec;
            fs::remove_all(path, ec);
        }
    } removeSpools{spoolDir};
    if (::chown(spoolDir.c_str(), tunnelUid, tunnelGid) != 0)
        throwErrno("chown " + spoolDir);

    std::vector<Node> nodes;
    {
        RegistryStore registry(dbPath);
        for (int i = 0; i < s.nodes; ++i) {
            Node n;
            char name[32];
            std::snprintf(name, sizeof name, "node-%05d", i);
            n.name = name;
            n.secret = generateSecret();
            registry.addNode(n.name, n.secret);
            n.address = "127.0." + std::to_string(1 + i / 250) + "." + std::to_string(2 + i % 250);
            n.spool = spoolDir + "/" + n.name + ".db";
            nodes.push_back(std::move(n));
        }
    }
    run({"chown", "-R", "ferry:ferry", master, master + "-keys"});

    const std::string socketPath = dir / "collector.sock";
    const std::string binary = s.collectord.empty() ? buildPath("services/collectord/ferry-collectord") : s.collectord;
    Process collector({binary, "--listen=127.0.0.1:" + std::to_string(freePort()), "--relay-socket", socketPath},
                      {{"FERRY_STATE_DIR", master}}, dir / "collectord.log");
    if (!waitUntil([&] { return readFile(dir / "collectord.log").find("Accepting") != std::string::npos; }))
        throw Error("collectord did not start: " + readFile(dir / "collectord.log"));
    group.add(collector.pid());
    const bool cgroup = group.usable();
    auto collectorCpu = [&] { return cgroup ? group.userSystemSeconds() : processUserSystemSeconds(collector.pid()); };

    int up[2], down[2];
    if (::pipe2(up, O_CLOEXEC) != 0 || ::pipe2(down, O_CLOEXEC) != 0)
        throwErrno("create pipes");
    const double w0 = monoSeconds();
    const pid_t client = ::fork();
    if (client < 0)
        throwErrno("fork the clients");
    if (client == 0)
        clientMain(s, nodes, socketPath, tunnelUid, tunnelGid, up[1], down[0]);
    ::close(up[1]);
    ::close(down[0]);
    if (readByte(up[0]) != 'w')
        throw Error("the clients did not finish their warm-up");
    const double warmupSeconds = monoSeconds() - w0;

    std::optional<Process> perf;
    if (!s.perfFile.empty()) {
        perf.emplace(std::vector<std::string>{"/usr/bin/perf", "record", "-q", "-g", "-p",
                                              std::to_string(collector.pid()), "-o", s.perfFile},
                     std::map<std::string, std::string>{}, dir / "perf.log");
    } else if (!s.attach.empty()) {
        std::string command = s.attach;
        for (auto at = command.find("{pid}"); at != std::string::npos; at = command.find("{pid}"))
            command.replace(at, 5, std::to_string(collector.pid()));
        perf.emplace(std::vector<std::string>{"/bin/sh", "-c", "exec " + command}, std::map<std::string, std::string>{},
                     dir / "perf.log");
    }
    if (perf)
        std::this_thread::sleep_for(std::chrono::milliseconds(500));
    const auto cpu0 = collectorCpu();
    const double t0 = monoSeconds();
    writeAll(down[1], "g");
    const std::string results = readAll(up[0]);
    const double t1 = monoSeconds();
    int status = 0;
    ::waitpid(client, &status, 0);
    // The last sessions' threads end after their node read the last Ack.
    std::this_thread::sleep_for(std::chrono::milliseconds(300));
    const auto cpu1 = collectorCpu();
    if (perf) {
        perf->signal(SIGINT);
        perf->wait(std::chrono::seconds(30));
    }
    if (!WIFEXITED(status) || WEXITSTATUS(status) != 0)
        throw Error("the clients failed (status " + std::to_string(status) + ")");

    std::uint64_t ok = 0, records = 0, warmupErrors = 0;
    std::map<std::string, std::uint64_t> errors;
    std::vector<double> latency;
    std::istringstream in(results);
    for (std::string line; std::getline(in, line);) {
        std::istringstream f(line);
        std::string what;
        f >> what;
        if (what == "ok") {
            double ms = 0;
            std::uint64_t n = 0;
            f >> ms >> n;
            ++ok;
            records += n;
            latency.push_back(ms);
        } else if (what == "err") {
            f >> what;
            ++errors[what];
        } else if (what == "first") {
            f >> warmupErrors;
        }
    }
    std::string errorText;
    for (const auto& [k, n] : errors)
        errorText += (errorText.empty() ? "" : ", ") + k + " " + std::to_string(n);

    const Floor floor = measureFloor(dir / "floor.db", s.records, s.floorTransactions);
    const double wall = t1 - t0;
    const double user = cpu1.first - cpu0.first, system = cpu1.second - cpu0.second;
    const double perPushMs = ok > 0 ? (user + system) * 1e3 / static_cast<double>(ok) : 0;

    const std::string pace =
        s.rate > 0 ? "at " + std::to_string(static_cast<int>(s.rate)) + " pushes/s" : "each pushing again at once";
    std::printf("collector-push: %d nodes, %d clients %s, %.0f s, %d records (~150 B) per push; collectord %s; "
                "warm-up (one push per node, its epoch's admission) %.1f s, %" PRIu64 " failed\n",
                s.nodes, s.clients, pace.c_str(), s.seconds, s.records,
                s.pin ? "on CPU 0, the clients on CPU 1" : "and the clients unpinned", warmupSeconds, warmupErrors);
    std::printf("  pushes: %" PRIu64 " in %.2f s = %.1f pushes/s, %.0f records/s; errors: %s; latency p50 %.2f ms, "
                "p99 %.2f ms\n",
                ok, wall, static_cast<double>(ok) / wall, static_cast<double>(records) / wall,
                errorText.empty() ? "none" : errorText.c_str(), percentile(latency, 0.5), percentile(latency, 0.99));
    std::printf("  collectord cpu per push: %.3f ms (user %.3f, system %.3f; %s), %.0f%% of a core\n", perPushMs,
                ok > 0 ? user * 1e3 / static_cast<double>(ok) : 0, ok > 0 ? system * 1e3 / static_cast<double>(ok) : 0,
                cgroup ? "cgroup cpu.stat" : "/proc stat", 100.0 * (user + system) / (wall + 0.3));
    std::printf("  floor: one synced transaction of %d records (WAL, synchronous=FULL, master.db's file system): "
                "%.3f ms cpu, %.2f ms wall (%d transactions)\n",
                s.records, floor.cpuMs, floor.wallMs, s.floorTransactions);
    std::printf("  ratio collectord/floor %.2f\n", floor.cpuMs > 0 ? perPushMs / floor.cpuMs : 0);
    if (!errors.empty() || warmupErrors > 0)
        std::printf("  collectord's log: %s\n", (dir / "collectord.log").c_str());
    collector.signal(SIGTERM);
    collector.wait(std::chrono::seconds(10));
    return errors.empty() && warmupErrors == 0 ? 0 : 1;
}

} // namespace

int main(int argc, char* argv[])
try {
    initLogging("ferry-bench-collector-push", std::getenv("FERRY_BENCH_DEBUG") ? 1 : -1);
    if (!isRoot()) {
        std::fprintf(stderr, "ferry-bench-collector-push: needs root (the clients become the tunnel user)\n");
        return 1;
    }
    ::signal(SIGPIPE, SIG_IGN);
    std::setvbuf(stdout, nullptr, _IOLBF, 0);
    return benchMain(parseArgs(argc, argv));
} catch (const std::exception& e) {
    std::fprintf(stderr, "ferry-bench-collector-push: %s\n", e.what());
    return 1;
}
