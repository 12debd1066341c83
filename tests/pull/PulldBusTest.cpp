// The ferry-pulld binary on a private bus, called through the generated
// proxy, pulling a real node through real sshd and the real login shell.
#include <sys/stat.h>
#include <unistd.h>

#include <filesystem>

#include <map>

#include <gtest/gtest.h>
#include <sdbus-c++/sdbus-c++.h>

#include "NodeSshd.h"
#include "ferry/Bus.h"
#include "ferry/MasterStore.h"
#include "ferry/Spool.h"
#include "org.ferry.Pull1-proxy.h"

using namespace ferry::test;
using pulltest::NodeSshd;

namespace {

class Pull1Proxy final : public sdbus::ProxyInterfaces<org::ferry::Pull1_proxy> {
public:
    explicit Pull1Proxy(sdbus::IConnection& bus) : ProxyInterfaces(bus, "org.ferry.Pull1", "/org/ferry/Pull1")
    {
        registerProxy();
    }
    ~Pull1Proxy() { unregisterProxy(); }

private:
    void onNodePulled(const std::string&, const bool&, const uint64_t&, const std::string&, const uint32_t&,
                      const uint32_t&) override
    {}
};

} // namespace

TEST(ThePullDaemon, PullsANodeOnRequestAndReportsItInItsProperties)
{
    if (!isRoot())
        GTEST_SKIP() << "needs root to create a system user and run sshd";
    NodeSshd node;
    TempDir master;
    const std::string config = master / "etc";
    const std::string state = master / "state";
    std::filesystem::create_directories(config);
    std::filesystem::create_directories(state);
    {
        ferry::MasterStore store(ferry::masterStorePath(state));
        store.addNode(node.nodeName(), node.secret());
        ferry::Statement(store.database(),
                         "UPDATE nodes SET mode = 'auto', ssh_host = '127.0.0.1', ssh_port = ?1 WHERE name = ?2")
            .bind(1, static_cast<std::int64_t>(node.port()))
            .bind(2, node.nodeName())
            .run();
        ferry::Spool spool(node.spoolPath(), ferry::SpoolLimits{});
        for (int i = 0; i < 42; ++i)
            spool.append("load", "0.42", ferry::nowMs());
        node.chownHome();
    }
    writeFile(config + "/pulld.yml", "user: " + node.user() + "\nkey: " + node.restrictedKey() +
                                         "\nknown_hosts: " + node.knownHosts() + "\nconcurrency: 4\n");
    TestBus bus;
    Process pulld({buildPath("services/pulld/ferry-pulld"), "-v", "--no-round", "--idle-timeout=60"},
                  {{"FERRY_CONFIG_DIR", config}, {"FERRY_STATE_DIR", state}}, master / "pulld.log");

    auto connection = sdbus::createSystemBusConnection();
    std::unique_ptr<Pull1Proxy> proxy;
    ASSERT_TRUE(waitUntil(
        [&] {
            try {
                proxy = std::make_unique<Pull1Proxy>(*connection);
                return proxy->Concurrency() == 4;
            } catch (const sdbus::Error&) {
                return false;
            }
        },
        std::chrono::seconds(10)))
        << readFile(master / "pulld.log");

    const auto [records, summary] = proxy->PullNow(node.nodeName());
    EXPECT_EQ(records, 42u) << summary;
    EXPECT_NE(summary.find("pulled 42 records"), std::string::npos) << summary;

    const auto nodes = proxy->Nodes();
    ASSERT_EQ(nodes.size(), 1u);
    EXPECT_EQ(nodes[0].get<0>(), node.nodeName());
    EXPECT_GT(nodes[0].get<1>(), 0u);                   // last attempt
    EXPECT_EQ(nodes[0].get<1>(), nodes[0].get<2>());    // = last success
    EXPECT_EQ(nodes[0].get<3>().rfind("success: ", 0), 0u);
    EXPECT_EQ(nodes[0].get<4>(), 42u);
    EXPECT_EQ(nodes[0].get<6>(), 42u);  // cursor

    try {
        proxy->PullNow("no-such-node");
        ADD_FAILURE() << "PullNow of an unknown node succeeded";
    } catch (const sdbus::Error& e) {
        EXPECT_EQ(e.getName(), "org.ferry.Pull1.Error.UnknownNode");
    }

    // A forced round over the bus pulls the (auto-mode) node again.
    const auto [pulled, failed] = proxy->PullAll();
    EXPECT_EQ(pulled, 1u);
    EXPECT_EQ(failed, 0u);

    // ferryctl master pull --all on a terminal (script(1) gives it one): a
    // line per node as it ends, then the totals after the progress line is
    // erased. Elsewhere: the totals alone.
    const std::string ferryctl = buildPath("services/ferryctl/ferryctl");
    const auto onTty = run({"script", "-qefc", ferryctl + " master pull --all", "/dev/null"});
    EXPECT_EQ(onTty.exitCode, 0) << onTty.out << readFile(master / "pulld.log");
    EXPECT_NE(onTty.out.find("[1/1] " + node.nodeName() + ": pulled 0 new records"), std::string::npos) << onTty.out;
    EXPECT_NE(onTty.out.find("Pulling: 1 of 1 nodes done, 0 failed"), std::string::npos) << onTty.out;
    EXPECT_NE(onTty.out.find("\r\033[KPull of every node: 1 pulled, 0 failed, in "), std::string::npos) << onTty.out;
    const auto piped = run({ferryctl, "master", "pull", "--all"});
    EXPECT_EQ(piped.exitCode, 0) << piped.err;
    EXPECT_EQ(piped.err, "");
    EXPECT_EQ(piped.out.rfind("Pull of every node: 1 pulled, 0 failed, in ", 0), 0u) << piped.out;
    const auto one = run({ferryctl, "master", "pull", node.nodeName()});
    EXPECT_EQ(one.exitCode, 0) << one.err;
    EXPECT_NE(one.out.find("pulled 0 records"), std::string::npos) << one.out;

    // A pull that fails (nothing listens on the node's port any more) is
    // counted by cause beside the good ones, in master.db for metricsd.
    {
        ferry::MasterStore store(ferry::masterStorePath(state));
        ferry::Statement(store.database(), "UPDATE nodes SET ssh_port = ?1 WHERE name = ?2")
            .bind(1, static_cast<std::int64_t>(freePort()))
            .bind(2, node.nodeName())
            .run();
    }
    std::string why;
    try {
        proxy->PullNow(node.nodeName());
        ADD_FAILURE() << "PullNow of a node whose port is closed succeeded";
    } catch (const sdbus::Error& e) {
        EXPECT_EQ(e.getName(), "org.ferry.Pull1.Error.PullFailed");
        why = e.getMessage();
    }
    std::map<std::string, std::int64_t> counts;
    for (const auto& c : ferry::MasterStore(ferry::masterStorePath(state)).counters())
        counts[c.name + "{" + c.labels + "}"] = c.value;
    // Two PullNow above and the three pulls ferryctl asked for.
    EXPECT_EQ(counts["sessions{outcome=\"ok\",transport=\"pull\"}"], 5);
    EXPECT_EQ(counts["sessions{outcome=\"failed\",transport=\"pull\"}"], 1);
    EXPECT_EQ(counts["pull_failures{cause=\"connection refused\"}"], 1) << why;
    EXPECT_EQ(counts["records_stored{via=\"pull\"}"], 42);
}

namespace {

// A bus with the system bus's own default policy (Debian's system.conf) and
// only our policy file added, so the test sees what production would.
class PolicyBus {
public:
    PolicyBus()
    {
        std::string conf = readFile("/usr/share/dbus-1/system.conf");
        auto drop = [&conf](const std::string& from, const std::string& to) {
            const auto a = conf.find(from);
            if (a == std::string::npos)
                return;
            const auto b = conf.find(to, a);
            conf.erase(a, b + to.size() - a);
        };
        drop("<user>", "</user>");
        drop("<fork/>", "<fork/>");
        drop("<pidfile>", "</pidfile>");
        drop("<syslog/>", "<syslog/>");
        drop("<standard_system_servicedirs/>", "<standard_system_servicedirs/>");
        while (conf.find("<include") != std::string::npos)
            drop("<include", ">\n");  // every include and includedir line
        const auto listen = conf.find("<listen>");
        conf.replace(listen, conf.find("</listen>") + 9 - listen, "<listen>unix:path=" + (m_dir / "bus") + "</listen>");
        // Root stands in for user ferry as the owner (creating a real user
        // `ferry` here could disturb the host); everything else is the file.
        const std::string extra = "  <include>" + sourcePath("dbus/org.ferry.Pull1.conf") +
                                  "</include>\n  <policy user=\"root\"><allow own=\"org.ferry.Pull1\"/></policy>\n";
        conf.insert(conf.rfind("</busconfig>"), extra);
        writeFile(m_dir / "bus.conf", conf);
        m_daemon.emplace(std::vector<std::string>{"/usr/bin/dbus-daemon", "--nofork", "--nopidfile",
                                                  "--config-file=" + (m_dir / "bus.conf")},
                         std::map<std::string, std::string>{}, m_dir / "dbus.log");
        if (!waitUntil([&] { return ::access((m_dir / "bus").c_str(), F_OK) == 0; }, std::chrono::seconds(10)))
            throw std::runtime_error("dbus-daemon did not start: " + readFile(m_dir / "dbus.log"));
        ::chmod(m_dir.path().c_str(), 0755);
    }
    std::string address() const { return "unix:path=" + (m_dir / "bus"); }

private:
    TempDir m_dir;
    std::optional<Process> m_daemon;
};

RunResult busctl(const std::string& address, bool asNobody, std::vector<std::string> args)
{
    std::vector<std::string> argv;
    if (asNobody)
        argv = {"/usr/bin/setpriv", "--reuid=nobody", "--regid=nogroup", "--clear-groups", "--"};
    argv.insert(argv.end(), {"/usr/bin/busctl", "--address=" + address, "--timeout=10"});
    argv.insert(argv.end(), args.begin(), args.end());
    return run(argv, {}, "", std::chrono::seconds(20));
}

} // namespace

TEST(ThePullBusPolicy, LetsAnyoneReadButOnlyRootStartPulls)
{
    if (!isRoot())
        GTEST_SKIP() << "needs root to call as another user";
    PolicyBus bus;
    TempDir state;
    Process pulld({buildPath("services/pulld/ferry-pulld"), "--no-round", "--idle-timeout=60"},
                  {{"DBUS_SYSTEM_BUS_ADDRESS", bus.address()}, {"FERRY_STATE_DIR", state.path()},
                   {"FERRY_CONFIG_DIR", state / "etc"}},
                  state / "pulld.log");
    ASSERT_TRUE(waitUntil(
        [&] {
            return busctl(bus.address(), false, {"get-property", "org.ferry.Pull1", "/org/ferry/Pull1", "org.ferry.Pull1",
                                                 "Concurrency"})
                       .exitCode == 0;
        },
        std::chrono::seconds(10)))
        << readFile(state / "pulld.log");

    const auto read = busctl(bus.address(), true,
                             {"get-property", "org.ferry.Pull1", "/org/ferry/Pull1", "org.ferry.Pull1", "Nodes"});
    EXPECT_EQ(read.exitCode, 0) << read.err;

    const auto denied = busctl(bus.address(), true,
                               {"call", "org.ferry.Pull1", "/org/ferry/Pull1", "org.ferry.Pull1", "PullNow", "s", "n1"});
    EXPECT_NE(denied.exitCode, 0);
    EXPECT_NE(denied.err.find("Access denied"), std::string::npos) << denied.err;
    const auto deniedAll =
        busctl(bus.address(), true, {"call", "org.ferry.Pull1", "/org/ferry/Pull1", "org.ferry.Pull1", "PullAll"});
    EXPECT_NE(deniedAll.err.find("Access denied"), std::string::npos) << deniedAll.err;

    // Root's call reaches the daemon (which knows no such node).
    const auto allowed = busctl(bus.address(), false,
                                {"call", "org.ferry.Pull1", "/org/ferry/Pull1", "org.ferry.Pull1", "PullNow", "s", "n1"});
    EXPECT_NE(allowed.exitCode, 0);
    EXPECT_NE(allowed.err.find("No node named"), std::string::npos) << allowed.err;
}
