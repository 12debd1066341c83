// The daemon on a private bus, reading the rules of a node namespace made
// by the test: Check(), the properties, VerdictChanged, the result kept
// across a restart, `ferryctl doctor` (human and --json), and a bad
// ferry.yml refused with a message instead of a crash.

#include <gtest/gtest.h>

#include <sys/stat.h>
#include <unistd.h>

#include <atomic>
#include <filesystem>
#include <mutex>

#include <cstdio>

#include <nlohmann/json.hpp>
#include <sdbus-c++/sdbus-c++.h>

#include "NetnsLab.h"
#include "support/PolicyBus.h"
#include "org.ferry.FwCheck1-proxy.h"
#include "support/TestSupport.h"

namespace {

using namespace ferry::test;

class FwCheckClient final : public sdbus::ProxyInterfaces<org::ferry::FwCheck1_proxy> {
public:
    explicit FwCheckClient(sdbus::IConnection& bus) : ProxyInterfaces(bus, "org.ferry.FwCheck1", "/org/ferry/FwCheck1")
    {
        registerProxy();
    }
    ~FwCheckClient() { unregisterProxy(); }

    std::vector<std::pair<std::string, std::string>> changes()
    {
        std::lock_guard lock(m_mutex);
        return m_changes;
    }

private:
    void onVerdictChanged(const std::string& verdict, const std::string& previous) override
    {
        std::lock_guard lock(m_mutex);
        m_changes.emplace_back(verdict, previous);
    }
    std::mutex m_mutex;
    std::vector<std::pair<std::string, std::string>> m_changes;
};

class TheFwCheckDaemon : public ::testing::Test {
protected:
    void SetUp() override
    {
        if (!isRoot())
            GTEST_SKIP() << "needs root to create network namespaces";
        m_lab = std::make_unique<fwtest::NetnsLab>();
        writeFile(m_config / "ferry.yml", "masters:\n  - 198.51.100.2\n  - 198.51.100.130\nnode:\n  ssh_port: 22\n");
        writeFile(m_config / "hosts.allow", "# nothing\n");
        writeFile(m_config / "hosts.deny", "sshd: 192.0.2.\n");
        m_bus = std::make_unique<TestBus>();
    }

    // The daemon inside the node namespace with a private /run (sshd -T
    // needs /run/sshd); the pull user is root so that the account exists.
    // By default it is started as its timer starts it (systemd sets
    // TRIGGER_UNIT); triggered = false starts it as bus activation does.
    Process startDaemon(std::vector<std::string> extra = {}, bool triggered = true)
    {
        std::vector<std::string> argv = {"/usr/sbin/ip", "netns", "exec", m_lab->node()};
        for (const auto& a : fwtest::privateRunPrefix())
            argv.push_back(a);
        for (const std::string& a : {buildPath("services/fwcheckd/ferry-fwcheckd"), std::string("--idle-timeout"),
                                    std::string("60"), std::string("--pull-user"), std::string("root"),
                                    std::string("--pull-shell"), std::string("/bin/bash"), std::string("--sshd-config"),
                                    m_lab->sshdConfig(), std::string("--hosts-allow"), m_config / "hosts.allow",
                                    std::string("--hosts-deny"), m_config / "hosts.deny"})
            argv.push_back(a);
        for (const auto& e : extra)
            argv.push_back(e);
        std::map<std::string, std::string> env = {{"FERRY_CONFIG_DIR", m_config.path()},
                                                  {"FERRY_STATE_DIR", m_state.path()},
                                                  {"DBUS_SYSTEM_BUS_ADDRESS", m_bus->address()}};
        if (triggered)
            env["TRIGGER_UNIT"] = "ferry-fwcheckd.timer";
        return Process(argv, env, m_config / "daemon.log");
    }

    void TearDown() override
    {
        m_bus.reset();
        m_lab.reset();
    }

    std::unique_ptr<fwtest::NetnsLab> m_lab;
    TempDir m_config, m_state;
    std::unique_ptr<TestBus> m_bus;
};

TEST_F(TheFwCheckDaemon, ChecksAtStartReportsChangesAndKeepsItsResultAcrossARestart)
{
    auto daemon = startDaemon();
    auto conn = sdbus::createSystemBusConnection();
    conn->enterEventLoopAsync();
    FwCheckClient client(*conn);
    ASSERT_TRUE(waitUntil(
        [&] {
            try {
                return client.LastCheck() != 0;
            } catch (const sdbus::Error&) {
                return false;
            }
        },
        std::chrono::seconds(20)))
        << readFile(m_config / "daemon.log");
    EXPECT_EQ(client.Verdict(), "reachable") << readFile(m_config / "daemon.log");
    ASSERT_EQ(client.Masters().size(), 2u);

    // Block one master; a check says so, with the command that fixes it.
    m_lab->inNode(
        {"iptables-legacy", "-A", "INPUT", "-s", "198.51.100.130", "-p", "tcp", "--dport", "22", "-j", "DROP"});
    const auto findings = client.Check();
    ASSERT_FALSE(findings.empty());
    EXPECT_EQ(findings[0].get<0>(), "firewall.blocked");
    EXPECT_EQ(findings[0].get<1>(), "error");
    EXPECT_NE(findings[0].get<2>().find("198.51.100.130"), std::string::npos) << findings[0].get<2>();
    EXPECT_NE(findings[0].get<3>().find("iptables-legacy -I INPUT -p tcp -s 198.51.100.130 --dport 22 -j ACCEPT"),
              std::string::npos)
        << findings[0].get<3>();
    EXPECT_EQ(client.Verdict(), "blocked");
    EXPECT_TRUE(waitUntil([&] {
        const auto c = client.changes();
        return std::find(c.begin(), c.end(), std::make_pair(std::string("blocked"), std::string("reachable"))) != c.end();
    }));

    // ferryctl doctor, for a person and as JSON.
    const auto human = run({buildPath("services/ferryctl/ferryctl"), "doctor"}, m_bus->env());
    EXPECT_EQ(human.exitCode, 1);
    EXPECT_NE(human.out.find("Blocking:"), std::string::npos) << human.out;
    EXPECT_NE(human.out.find("      iptables-legacy -I INPUT -p tcp -s 198.51.100.130 --dport 22 -j ACCEPT"),
              std::string::npos)
        << human.out;
    const auto json = run({buildPath("services/ferryctl/ferryctl"), "--json", "doctor", "--cached"}, m_bus->env());
    const auto j = nlohmann::json::parse(json.out);
    EXPECT_EQ(j["verdict"], "blocked");
    EXPECT_EQ(j["masters"][1]["firewall"], "drop");
    EXPECT_EQ(j["masters"][0]["verdict"], "reachable");

    // A fresh start answers from the saved result before checking again.
    const auto lastCheck = client.LastCheck();
    daemon.signal(SIGTERM);
    ASSERT_TRUE(daemon.wait(std::chrono::seconds(10)));
    auto again = startDaemon({"--no-initial-check"});
    ASSERT_TRUE(waitUntil([&] {
        try {
            return client.Verdict() == "blocked";
        } catch (const sdbus::Error&) {
            return false;
        }
    }));
    EXPECT_EQ(client.LastCheck(), lastCheck);
}

TEST_F(TheFwCheckDaemon, ChecksAgainOnItsOwnWhenHostsDenyChanges)
{
    auto daemon = startDaemon();
    auto conn = sdbus::createSystemBusConnection();
    conn->enterEventLoopAsync();
    FwCheckClient client(*conn);
    ASSERT_TRUE(waitUntil(
        [&] {
            try {
                return client.LastCheck() != 0;
            } catch (const sdbus::Error&) {
                return false;
            }
        },
        std::chrono::seconds(20)))
        << readFile(m_config / "daemon.log");
    ASSERT_EQ(client.Verdict(), "reachable") << readFile(m_config / "daemon.log");

    // An editor's way of saving: write a new file and rename it over the old one.
    writeFile(m_config / "hosts.deny.new", "sshd: 198.51.100.0/255.255.255.128\n");
    ASSERT_EQ(::rename((m_config / "hosts.deny.new").c_str(), (m_config / "hosts.deny").c_str()), 0);
    ASSERT_TRUE(waitUntil([&] { return client.Verdict() == "blocked"; }, std::chrono::seconds(10)))
        << readFile(m_config / "daemon.log");
    const auto findings = client.Findings();
    ASSERT_FALSE(findings.empty());
    EXPECT_EQ(findings[0].get<0>(), "hosts.denied");
    EXPECT_NE(findings[0].get<3>().find("sshd: 198.51.100.2"), std::string::npos) << findings[0].get<3>();
}

TEST_F(TheFwCheckDaemon, StartsPassiveWhenActivatedByTheBusAndChecksOnlyWhenRootOrPushdAsks)
{
    // Started the way D-Bus activation starts it (no TRIGGER_UNIT): a
    // property read must not make it list the firewall or run sshd -T.
    auto daemon = startDaemon({}, false);
    auto conn = sdbus::createSystemBusConnection();
    conn->enterEventLoopAsync();
    FwCheckClient client(*conn);
    ASSERT_TRUE(waitUntil([&] {
        try {
            client.Verdict();
            return true;
        } catch (const sdbus::Error&) {
            return false;
        }
    })) << readFile(m_config / "daemon.log");
    EXPECT_EQ(client.LastCheck(), 0u);
    // Long enough for a start-up check to have finished (they take well under a second here).
    EXPECT_FALSE(waitUntil([&] { return client.LastCheck() != 0; }, std::chrono::seconds(3)));
    EXPECT_FALSE(std::filesystem::exists(m_state / "fwcheck.json"));
    // pushd asks through the request file when pulls stop coming (the path
    // unit would start a daemon that is not running; a running one watches
    // the file itself): now it checks.
    writeFile(m_state / "fwcheck-request", "requested_ms=1\nreason=no pull since …\n");
    EXPECT_TRUE(waitUntil([&] { return client.LastCheck() != 0; }, std::chrono::seconds(20)))
        << readFile(m_config / "daemon.log");
    EXPECT_TRUE(std::filesystem::exists(m_state / "fwcheck.json"));
    EXPECT_NE(readFile(m_config / "daemon.log").find("A fresh check was asked for"), std::string::npos)
        << readFile(m_config / "daemon.log");
    // Root asks: it checks again.
    const auto asked = client.LastCheck();
    const auto findings = client.Check();
    EXPECT_GT(client.LastCheck(), asked);
    EXPECT_EQ(client.Verdict(), "reachable") << readFile(m_config / "daemon.log");
}

TEST_F(TheFwCheckDaemon, ReadsEveryBackendAsUserFerryWithOnlyTheUnitsCapabilities)
{
    // One master blocked by each reader: iptables-legacy-save (NET_ADMIN,
    // NET_RAW, DAC_READ_SEARCH), iptables-nft-save for an xt rule
    // (NET_ADMIN) and libnftables in the daemon (NET_ADMIN).
    m_lab->resetFirewall();
    m_lab->inNode(
        {"iptables-legacy", "-A", "INPUT", "-s", "198.51.100.130", "-p", "tcp", "--dport", "22", "-j", "DROP"});
    m_lab->inNode({"iptables-nft", "-A", "INPUT", "-s", "198.51.100.2", "-p", "tcp", "-m", "multiport", "--dports",
                   "22", "-j", "DROP"});
    m_lab->inNode({"nft", "-f", "-"},
                  "table inet t {\n chain input {\n  type filter hook input priority 0; policy accept;\n"
                  "  ip6 saddr 2001:db8:1::2 tcp dport 22 reject\n }\n}\n");
    writeFile(m_config / "ferry.yml", "masters:\n  - 198.51.100.2\n  - 2001:db8:1::2\n  - 198.51.100.130\n");
    ASSERT_EQ(::chmod(m_config.path().c_str(), 0755), 0);
    ASSERT_EQ(::chmod(m_state.path().c_str(), 0777), 0);
    const std::string caps = "-all,+net_admin,+net_raw,+dac_read_search";
    const auto r = run({"ip", "netns", "exec", m_lab->node(), "/usr/bin/setpriv", "--reuid=ferry", "--regid=ferry",
                        "--clear-groups", "--inh-caps=" + caps, "--ambient-caps=" + caps, "--bounding-set=" + caps,
                        buildPath("services/fwcheckd/ferry-fwcheckd"), "--check", "--hosts-allow", m_config / "hosts.allow",
                        "--hosts-deny", m_config / "hosts.deny"},
                       {{"FERRY_CONFIG_DIR", m_config.path()}, {"FERRY_STATE_DIR", m_state.path()}});
    const auto j = nlohmann::json::parse(r.out);
    ASSERT_EQ(j["masters"].size(), 3u) << r.out << r.err;
    EXPECT_EQ(j["masters"][0]["firewall"], "drop") << j["masters"][0]["decidedBy"] << r.err;
    EXPECT_EQ(j["masters"][1]["firewall"], "reject") << r.err;
    EXPECT_EQ(j["masters"][2]["firewall"], "drop") << r.err;
    for (const auto& f : j["findings"])
        EXPECT_NE(f["id"], "firewall.unreadable") << f["message"];
}

TEST(TheFwCheckPolicy, KeepsChecksAndFindingsFromUnprivilegedUsers)
{
    if (!isRoot())
        GTEST_SKIP() << "needs root to run clients as other users";
    ferry::test::PolicyBus bus({"dbus/org.ferry.FwCheck1.conf"});
    TempDir config, state;
    writeFile(config / "ferry.yml", "masters:\n  - 192.0.2.10\n");
    // The daemon as its unit runs it (user ferry), started as bus
    // activation would start it.
    auto argv = ferry::test::PolicyBus::asUser("ferry");
    for (const std::string& a : {buildPath("services/fwcheckd/ferry-fwcheckd"), std::string("--idle-timeout"), std::string("60")})
        argv.push_back(a);
    // Its directories as the packaging makes them: readable, and writable for the state.
    ASSERT_EQ(::chmod(config.path().c_str(), 0755), 0);
    ASSERT_EQ(::chmod(state.path().c_str(), 0777), 0);
    Process daemon(argv,
                   {{"FERRY_CONFIG_DIR", config.path()}, {"FERRY_STATE_DIR", state.path()},
                    {"DBUS_SYSTEM_BUS_ADDRESS", bus.address()}},
                   config / "daemon.log");
    ASSERT_TRUE(waitUntil([&] {
        return bus.busctlAs("root", {"get-property", "org.ferry.FwCheck1", "/org/ferry/FwCheck1", "org.ferry.FwCheck1",
                                     "Verdict"})
                   .exitCode == 0;
    })) << readFile(config / "daemon.log");
    const auto check = bus.busctlAs("nobody", {"call", "org.ferry.FwCheck1", "/org/ferry/FwCheck1", "org.ferry.FwCheck1", "Check"});
    EXPECT_NE(check.exitCode, 0);
    EXPECT_NE(check.err.find("ccess denied"), std::string::npos) << check.err;
    const auto read = bus.busctlAs("nobody", {"get-property", "org.ferry.FwCheck1", "/org/ferry/FwCheck1",
                                              "org.ferry.FwCheck1", "Findings"});
    EXPECT_NE(read.exitCode, 0);
    // Root may read; nothing was checked because nobody with the right asked.
    const auto last = bus.busctlAs("root", {"get-property", "org.ferry.FwCheck1", "/org/ferry/FwCheck1",
                                            "org.ferry.FwCheck1", "LastCheck"});
    EXPECT_EQ(last.out, "t 0\n");
}

// The daemon as its unit runs it: user ferry, and /proc mounted the way
// ProtectProc=invisible mounts it (hidepid=invisible: other users'
// processes are not there), so that nothing about the caller can be read
// from /proc. Started as bus activation starts it (passive).
Process startLikeTheUnit(const PolicyBus& bus, const TempDir& config, const TempDir& state)
{
    std::vector<std::string> argv = {"/usr/bin/unshare",
                                     "--mount",
                                     "--propagation",
                                     "private",
                                     "/bin/sh",
                                     "-c",
                                     "mount -t proc -o hidepid=invisible proc /proc && exec \"$@\"",
                                     "sh"};
    for (const auto& a : PolicyBus::asUser("ferry"))
        argv.push_back(a);
    for (const std::string& a :
         {buildPath("services/fwcheckd/ferry-fwcheckd"), std::string("--idle-timeout"), std::string("60")})
        argv.push_back(a);
    EXPECT_EQ(::chmod(config.path().c_str(), 0755), 0);
    EXPECT_EQ(::chmod(state.path().c_str(), 0777), 0);
    return Process(argv,
                   {{"FERRY_CONFIG_DIR", config.path()},
                    {"FERRY_STATE_DIR", state.path()},
                    {"DBUS_SYSTEM_BUS_ADDRESS", bus.address()}},
                   config / "daemon.log");
}

bool answers(const PolicyBus& bus)
{
    return waitUntil([&] {
        return bus.busctlAs("root", {"get-property", "org.ferry.FwCheck1", "/org/ferry/FwCheck1", "org.ferry.FwCheck1",
                                     "Verdict"})
                   .exitCode == 0;
    });
}

TEST(TheFwCheckPolicy, LetsRootCheckWhenTheDaemonCannotSeeTheCallerInProc)
{
    // Regression: the caller's uid came from sd-bus's credentials, which it
    // completes from /proc/<pid>; under the unit that entry is hidden and
    // root's `ferryctl doctor` read "Cannot identify the caller".
    if (!isRoot())
        GTEST_SKIP() << "needs root to run the daemon as ferry with its own /proc";
    PolicyBus bus({"dbus/org.ferry.FwCheck1.conf"});
    TempDir config, state;
    writeFile(config / "ferry.yml", "masters:\n  - 192.0.2.10\n");
    auto daemon = startLikeTheUnit(bus, config, state);
    ASSERT_TRUE(answers(bus)) << readFile(config / "daemon.log");
    const auto check =
        bus.busctlAs("root", {"call", "org.ferry.FwCheck1", "/org/ferry/FwCheck1", "org.ferry.FwCheck1", "Check"});
    EXPECT_EQ(check.exitCode, 0) << check.err << readFile(config / "daemon.log");
    const auto last = bus.busctlAs(
        "root", {"get-property", "org.ferry.FwCheck1", "/org/ferry/FwCheck1", "org.ferry.FwCheck1", "LastCheck"});
    EXPECT_NE(last.out, "t 0\n") << readFile(config / "daemon.log");
}

TEST(TheFwCheckPolicy, RefusesANonRootCheckInTheDaemonWhenALoosenedPolicyLetsItThrough)
{
    if (!isRoot())
        GTEST_SKIP() << "needs root to run clients as other users";
    TempDir policy;
    ::chmod(policy.path().c_str(), 0755);
    // A site's mistake: everyone may call the interface.
    writeFile(
        policy / "loose.conf",
        "<!DOCTYPE busconfig PUBLIC \"-//freedesktop//DTD D-Bus Bus Configuration 1.0//EN\"\n"
        " \"http://www.freedesktop.org/standards/dbus/1.0/busconfig.dtd\">\n<busconfig>\n"
        "  <policy context=\"default\">\n"
        "    <allow send_destination=\"org.ferry.FwCheck1\" send_interface=\"org.ferry.FwCheck1\"/>\n"
        "    <allow send_destination=\"org.ferry.FwCheck1\" send_interface=\"org.freedesktop.DBus.Properties\"/>\n"
        "  </policy>\n</busconfig>\n",
        0644);
    PolicyBus bus({"dbus/org.ferry.FwCheck1.conf", policy / "loose.conf"});
    TempDir config, state;
    writeFile(config / "ferry.yml", "masters:\n  - 192.0.2.10\n");
    auto daemon = startLikeTheUnit(bus, config, state);
    ASSERT_TRUE(answers(bus)) << readFile(config / "daemon.log");
    const auto check =
        bus.busctlAs("nobody", {"call", "org.ferry.FwCheck1", "/org/ferry/FwCheck1", "org.ferry.FwCheck1", "Check"});
    EXPECT_NE(check.exitCode, 0);
    // busctl prints the error's name as strerror ("Access denied"); the
    // daemon's own line shows that it was the daemon that refused.
    EXPECT_NE(check.err.find("ccess denied"), std::string::npos) << check.err;
    EXPECT_NE(readFile(config / "daemon.log").find("Refusing a check asked for by uid 65534"), std::string::npos)
        << readFile(config / "daemon.log");
    // The policy does let the property through, and it shows that nothing ran.
    const auto last = bus.busctlAs(
        "nobody", {"get-property", "org.ferry.FwCheck1", "/org/ferry/FwCheck1", "org.ferry.FwCheck1", "LastCheck"});
    EXPECT_EQ(last.out, "t 0\n") << last.err;
    EXPECT_FALSE(std::filesystem::exists(state / "fwcheck.json"));
}

TEST_F(TheFwCheckDaemon, RefusesABadConfigurationWithAMessageNamingIt)
{
    writeFile(m_config / "ferry.yml", "masters:\n  - host: 198.51.100.2\n    colour: blue\n");
    auto daemon = startDaemon();
    const auto status = daemon.wait(std::chrono::seconds(10));
    ASSERT_TRUE(status);
    EXPECT_TRUE(WIFEXITED(*status) && WEXITSTATUS(*status) == 1);
    const auto log = readFile(m_config / "daemon.log");
    EXPECT_NE(log.find("ferry.yml"), std::string::npos) << log;
    EXPECT_NE(log.find("colour"), std::string::npos) << log;
}

} // namespace
