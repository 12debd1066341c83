#include "PushFixture.h"

#include <signal.h>

#include <cstdlib>
#include <filesystem>

#include "ferry/Bus.h"

#include "ferry/Crypto.h"
#include "ferry/Spool.h"
#include "ferry/SshSession.h"

namespace ferry::test {

void PushFixture::SetUp()
{
    if (!isRoot())
        GTEST_SKIP() << "needs root: runs a real sshd in a mount namespace and a system user 'ferry'";
    m_root = std::make_unique<TempDir>();
    m_nodeConfig = *m_root / "node-etc";
    m_nodeState = *m_root / "node-state";
    m_masterState = *m_root / "master-state";
    m_serviceDir = *m_root / "services";
    for (const auto& d : {m_nodeConfig, m_nodeState, m_masterState, m_serviceDir})
        std::filesystem::create_directories(d);

    ensureUser("ferry", "/usr/sbin/nologin");
    ensureTunnelUser();
    // Pushes reach the collector as on a master: sshd runs the relay as the
    // tunnel user, which connects to collectord's relay socket.
    m_relayDir = std::make_unique<SharedDir>("relay-");
    m_relaySocket = *m_relayDir / "collector.sock";
    SshdOptions so;
    so.tail = shippedMasterDropIn(true, {}, m_relaySocket);
    m_sshd = std::make_unique<TestSshd>(so);

    // Node identity: key pair and secret, as keyregd and postinst make them.
    ferry::ensureKeyPair(m_nodeState + "/id_ed25519");
    m_secret = ferry::generateSecret();
    writeFile(m_nodeState + "/secret", m_secret + "\n", 0600);
    writeFile(m_sshd->authorizedKeysFile("ferry-tunnel"),
              tunnelKeyLine(ferry::publicKeyLine(m_nodeState + "/id_ed25519")) + "\n");
    pinHostKey(m_sshd->knownHostsLine());
    writeNodeConfig({m_sshd->port()});
    enrol(m_secret);

    ::setenv("FERRY_CONFIG_DIR", m_nodeConfig.c_str(), 1);
    ::setenv("FERRY_STATE_DIR", m_nodeState.c_str(), 1);
    // pushd is D-Bus-activated by the private bus, as on a real system.
    writeFile(m_serviceDir + "/org.ferry.Push1.service",
              "[D-BUS Service]\nName=org.ferry.Push1\nExec=" + buildPath("services/pushd/ferry-pushd") +
                  " -v --idle-timeout=5\nUser=root\n");
    m_bus = std::make_unique<TestBus>(std::vector<std::string>{m_serviceDir});
    startCollector();
}

void PushFixture::startCollector(const std::map<std::string, std::string>& extraEnv)
{
    std::map<std::string, std::string> env{{"FERRY_STATE_DIR", m_masterState}};
    env.insert(extraEnv.begin(), extraEnv.end());
    // Pushes come through the relay socket, but collectord listens on TCP
    // too: a port of this run's own, so that another run's collector never
    // holds it. Should another process bind it first, collectord exits,
    // and it starts again on the next port.
    for (int attempt = 1;; ++attempt) {
        m_collectorPort = freePort();
        const std::size_t logBefore = collectorLog().size();
        m_collector.emplace(std::vector<std::string>{buildPath("services/collectord/ferry-collectord"), "-v",
                                                     "--listen=127.0.0.1:" + std::to_string(m_collectorPort),
                                                     "--relay-socket", m_relaySocket, "--sshd-host-keys",
                                                     m_sshd->hostKeyDir()},
                            env, *m_root / "collectord.log");
        ASSERT_TRUE(waitUntil([&] {
            return collectorLog().find("Accepting", logBefore) != std::string::npos || !m_collector->running();
        })) << collectorLog();
        if (m_collector->running() || attempt == 3 ||
            collectorLog().find("Address already in use", logBefore) == std::string::npos)
            break;
    }
    ASSERT_TRUE(m_collector->running()) << collectorLog();
}

void PushFixture::TearDown()
{
    m_collector.reset();
    m_bus.reset();
    m_sshd.reset();
    m_relayDir.reset();
    ::unsetenv("FERRY_CONFIG_DIR");
    ::unsetenv("FERRY_STATE_DIR");
}

void PushFixture::writeNodeConfig(const std::vector<int>& sshPorts, const std::string& extra)
{
    std::string yml = "node:\n  name: test-node\n  mode: push\nmasters:\n";
    for (int p : sshPorts)
        yml += "  - host: 127.0.0.1\n    ssh_port: " + std::to_string(p) + "\n";
    yml += "push:\n  connect_timeout: 5\n  io_timeout: 10\n" + extra;
    writeFile(m_nodeConfig + "/ferry.yml", yml);
}

void PushFixture::pinHostKey(const std::string& line)
{
    writeFile(m_nodeState + "/known_hosts", line + "\n");
}

void PushFixture::enrol(const std::string& secret)
{
    const auto r = run({buildPath("services/ferryctl/ferryctl"), "master", "add-node", "test-node"},
                       {{"FERRY_STATE_DIR", m_masterState}}, secret + "\n");
    ASSERT_EQ(r.exitCode, 0) << r.err;
}

RunResult PushFixture::ferryctl(const std::vector<std::string>& args, std::chrono::seconds timeout)
{
    std::vector<std::string> argv{buildPath("services/ferryctl/ferryctl")};
    argv.insert(argv.end(), args.begin(), args.end());
    return run(argv, {}, {}, timeout);
}

RunResult PushFixture::sample()
{
    return run({buildPath("services/sampler/ferry-sampler")});
}

RunResult PushFixture::pushdOnce(const std::string& what)
{
    std::vector<std::string> argv{buildPath("services/pushd/ferry-push-once")};
    if (what != "--cycle")
        argv.push_back(what);
    return run(argv, {{"DBUS_SYSTEM_BUS_ADDRESS", "unix:path=" + *m_root / "no-bus-here"}});
}

void PushFixture::spoolRecords(int count, std::size_t payloadBytes)
{
    ferry::Spool spool(m_nodeState + "/spool.db", {});
    std::vector<ferry::Record> batch;
    for (int i = 0; i < count; ++i)
        batch.push_back({0, ferry::nowMs(), "test", std::string(payloadBytes, static_cast<char>('a' + i % 26))});
    spool.appendAll(batch);
}

std::uint64_t PushFixture::storedAtMaster()
{
    ferry::MasterStore store(m_masterState + "/master.db");
    return store.countRecords("test-node");
}

std::optional<pid_t> PushFixture::pushdPid()
{
    // By the bus name on this test's bus, not by the binary's path: another
    // run of the suite on the same build has pushds of its own.
    const auto r = run({"busctl", "--system", "call", "org.freedesktop.DBus", "/org/freedesktop/DBus",
                        "org.freedesktop.DBus", "GetConnectionUnixProcessID", "s", "org.ferry.Push1"},
                       {{"DBUS_SYSTEM_BUS_ADDRESS", m_bus->address()}});
    if (r.exitCode != 0 || r.out.rfind("u ", 0) != 0)
        return std::nullopt;
    return static_cast<pid_t>(std::stol(r.out.substr(2)));
}

void PushFixture::stopPushd()
{
    const auto pid = pushdPid();
    if (!pid)
        return;
    ::kill(*pid, SIGTERM);
    // Not our child (the bus started it, and reaps it): it has let go of the
    // spool once it is gone or a zombie.
    const auto exited = [&] {
        const std::string stat = readFile("/proc/" + std::to_string(*pid) + "/stat");
        const std::size_t end = stat.rfind(')');
        return end == std::string::npos || stat.compare(end, 3, ") Z") == 0;
    };
    ASSERT_TRUE(waitUntil(exited)) << "pushd did not stop";
}

RunResult PushFixture::ferryctlMaster(const std::vector<std::string>& args)
{
    std::vector<std::string> argv{buildPath("services/ferryctl/ferryctl"), "master"};
    argv.insert(argv.end(), args.begin(), args.end());
    return run(argv, {{"FERRY_STATE_DIR", m_masterState}});
}

std::string PushFixture::collectorLog() const
{
    return readFile(*m_root / "collectord.log");
}

std::string PushFixture::busProperty(const std::string& name)
{
    const auto r = run({"busctl", "--system", "get-property", "org.ferry.Push1", "/org/ferry/Push1", "org.ferry.Push1", name},
                       {{"DBUS_SYSTEM_BUS_ADDRESS", m_bus->address()}});
    return r.out;
}

} // namespace ferry::test
