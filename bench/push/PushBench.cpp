// Push benchmarks, each printing a ratio against OpenSSH measured in the
// same run on the same sshd and collectord:
//
//   ferry-bench-push cycle [N]   one push cycle with a 50-record batch:
//       pushd's in-process path (libssh, direct-tcpip) vs spawning
//       `ssh -N -L 50011:127.0.0.1:50009` and sending the same bytes through
//       it; CPU (user+sys, ours + children) and wall, median of N (≥ 20).
//   ferry-bench-push backlog     a 24-hour backlog at a 60 s period drained
//       in one cycle vs `ssh master 'cat > /dev/null'` of the same bytes.

#include <signal.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <filesystem>
#include <iostream>
#include <vector>

#include "CollectorConnector.h"
#include "PushCycle.h"
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
    TestBus bus;
    std::unique_ptr<TestSshd> sshd;
    std::optional<Process> collector;
    std::string secret;
    NodeConfig config;
    Paths paths;

    Lab()
    {
        ensureUser("ferry", "/usr/sbin/nologin");
        SshdOptions so;
        so.globalLines = {"PermitRootLogin prohibit-password"};
        so.tail = shippedMasterDropIn(true);
        sshd = std::make_unique<TestSshd>(so);
        std::filesystem::create_directories(dir / "node");
        std::filesystem::create_directories(dir / "master");
        paths.stateDir = dir / "node";
        paths.configDir = dir / "node";
        ensureKeyPair(paths.privateKeyFile());
        const std::string pub = publicKeyLine(paths.privateKeyFile());
        writeFile(sshd->authorizedKeysFile("ferry"), "restrict,port-forwarding,permitopen=\"127.0.0.1:50009\" " + pub + "\n");
        writeFile(sshd->authorizedKeysFile("root"), pub + "\n");
        writeFile(paths.knownHostsFile(), sshd->knownHostsLine() + "\n");
        secret = generateSecret();
        MasterStore(dir / "master/master.db").addNode("bench", secret);
        collector.emplace(std::vector<std::string>{buildPath("services/collectord/ferry-collectord"), "-v", "--listen=127.0.0.1:50009"},
                          std::map<std::string, std::string>{{"FERRY_STATE_DIR", dir / "master"}}, dir / "collectord.log");
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
        o.batchBytes = 4 * 1024 * 1024;
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

// The same protocol bytes through a local OpenSSH forward.
void cycleThroughOpenSsh(Lab& lab, Spool& spool, int localPort, std::uint32_t batch)
{
    auto args = lab.sshArgs();
    for (const std::string a : {"-o", "ExitOnForwardFailure=yes", "-N", "-L"})
        args.push_back(a);
    args.push_back("127.0.0.1:" + std::to_string(localPort) + ":127.0.0.1:50009");
    args.push_back("ferry@127.0.0.1");
    Process ssh(args, {}, lab.dir / "ssh.log");
    int fd = -1;
    waitUntil(
        [&] {
            try {
                fd = connectTcp("127.0.0.1", static_cast<std::uint16_t>(localPort), std::chrono::seconds(1));
                return true;
            } catch (const std::exception&) {
                return false;
            }
        },
        std::chrono::seconds(10), std::chrono::milliseconds(2));
    if (fd < 0)
        throw std::runtime_error("ssh -L did not come up: " + readFile(lab.dir / "ssh.log"));
    {
        FdStream stream(fd, fd, "ssh -L", true);
        pushd::runPushCycle(stream, spool, lab.options(batch));
    }
    ssh.signal(SIGTERM);
    ssh.wait(std::chrono::seconds(5));
}

int benchCycle(int rounds)
{
    Lab lab;
    pushd::SshCollectorConnector connector(lab.config, lab.paths);
    Spool spool(lab.paths.spoolFile(), {});
    std::vector<double> ferryCpu, ferryWall, sshCpu, sshWall;
    const int localPort = freePort();
    for (int i = 0; i < rounds + 2; ++i) {
        lab.fill(spool, 50, 200);
        double c0 = cpuSeconds(RUSAGE_SELF), w0 = now();
        {
            auto link = connector.connect(lab.config.masters[0]);
            pushd::runPushCycle(link->stream(), spool, lab.options(500));
        }
        double c1 = cpuSeconds(RUSAGE_SELF), w1 = now();
        lab.fill(spool, 50, 200);
        const double cc0 = cpuSeconds(RUSAGE_SELF) + cpuSeconds(RUSAGE_CHILDREN), ww0 = now();
        cycleThroughOpenSsh(lab, spool, localPort, 500);
        const double cc1 = cpuSeconds(RUSAGE_SELF) + cpuSeconds(RUSAGE_CHILDREN), ww1 = now();
        if (i < 2)
            continue;  // warm-up
        ferryCpu.push_back(c1 - c0);
        ferryWall.push_back(w1 - w0);
        sshCpu.push_back(cc1 - cc0);
        sshWall.push_back(ww1 - ww0);
    }
    const auto stored = MasterStore(lab.dir / "master/master.db").countRecords("bench");
    std::printf("push-cycle: 50-record batch, median of %d cycles each (node side; %llu records stored at the master)\n",
                rounds, static_cast<unsigned long long>(stored));
    std::printf("  ferry (libssh in-process)   cpu %7.2f ms   wall %7.2f ms\n", median(ferryCpu) * 1e3, median(ferryWall) * 1e3);
    std::printf("  openssh (ssh -N -L + send)  cpu %7.2f ms   wall %7.2f ms\n", median(sshCpu) * 1e3, median(sshWall) * 1e3);
    std::printf("  ratio ferry/openssh         cpu %7.3f      wall %7.3f   (targets: cpu <= 0.1, wall <= 0.25)\n",
                median(ferryCpu) / median(sshCpu), median(ferryWall) / median(sshWall));
    return 0;
}

int benchBacklog()
{
    Lab lab;
    pushd::SshCollectorConnector connector(lab.config, lab.paths);
    Spool spool(lab.paths.spoolFile(), {512ull * 1024 * 1024, std::chrono::hours(48)});
    // 24 h at a 60 s period: 1440 sampler runs of 5 records each, of the
    // size the sampler produces (~150 bytes).
    std::vector<Record> records;
    for (int run = 0; run < 1440; ++run)
        for (int k = 0; k < 5; ++k)
            records.push_back({0, nowMs(), "load", std::string(150, static_cast<char>('a' + (run + k) % 26))});
    spool.appendAll(records);
    const std::string bytes = encode(spool.readAfter(0, records.size(), 1ull << 31));
    const double w0 = now();
    std::uint64_t sent = 0;
    try {
        auto link = connector.connect(lab.config.masters[0]);
        sent = pushd::runPushCycle(link->stream(), spool, lab.options(500)).recordsSent;
    } catch (const std::exception&) {
        std::fprintf(stderr, "collectord log:\n%s\nsshd log tail:\n%s\n", readFile(lab.dir / "collectord.log").c_str(),
                     lab.sshd->log().substr(lab.sshd->log().size() > 1500 ? lab.sshd->log().size() - 1500 : 0).c_str());
        throw;
    }
    const double ferryWall = now() - w0;

    auto args = lab.sshArgs();
    args.push_back("root@127.0.0.1");
    args.push_back("cat > /dev/null");
    const double s0 = now();
    const auto r = run(args, {}, bytes, std::chrono::seconds(120));
    const double sshWall = now() - s0;
    if (r.exitCode != 0)
        throw std::runtime_error("ssh cat failed: " + r.err);
    const double mb = static_cast<double>(bytes.size()) / 1e6;
    std::printf("backlog: 24 h at 60 s = %llu records, %.2f MB encoded, drained in one cycle\n",
                static_cast<unsigned long long>(sent), mb);
    std::printf("  ferry push (connect, auth, batches of 500, acks)  %7.1f ms  %6.2f MB/s\n", ferryWall * 1e3, mb / ferryWall);
    std::printf("  ssh master 'cat > /dev/null' (same bytes)         %7.1f ms  %6.2f MB/s\n", sshWall * 1e3, mb / sshWall);
    std::printf("  throughput ratio ferry/ssh                        %7.3f   (target >= 0.8)\n", sshWall / ferryWall);
    return 0;
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
        return benchBacklog();
    std::fprintf(stderr, "usage: ferry-bench-push cycle [N] | backlog\n");
    return 2;
} catch (const std::exception& e) {
    std::fprintf(stderr, "ferry-bench-push: %s\n", e.what());
    return 1;
}
