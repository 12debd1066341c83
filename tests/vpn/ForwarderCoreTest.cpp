// The forwarder's core without a bus or root: configuration, addresses, the
// ruleset text, the saved toggles, and the Manager's decisions with the two
// system edges (links, nftables) substituted.

#include <gtest/gtest.h>

#include "ForwarderConfig.h"
#include "Ipv4Prefix.h"
#include "Manager.h"
#include "Ruleset.h"
#include "ToggleStore.h"
#include "ferry/Error.h"
#include "support/TestSupport.h"

namespace {

using namespace vpnfwd;
using ferry::test::TempDir;

std::string configError(const std::string& text)
{
    try {
        parseForwarderConfig("/etc/ferry/vpn-forwarder.yml", text);
    } catch (const ferry::ConfigError& e) {
        return e.what();
    }
    return "(accepted)";
}

TEST(AForwarderConfig, DefaultsToTheSeedLayoutWhenTheFileIsMissing)
{
    TempDir dir;
    const auto c = loadForwarderConfig(dir / "vpn-forwarder.yml");
    EXPECT_EQ(c.vpnInterface, "tap0");
    EXPECT_EQ(formatIpv4(c.containerAddress), "10.0.3.2");
    EXPECT_EQ(formatPortRanges(c.forwardedPorts), "22, 2000-2009");
    EXPECT_EQ(c.lanInterfaces, (std::vector<std::string>{"eth0", "eth1", "wlan0"}));
    EXPECT_EQ(c.hostControlPort, 2222);
    EXPECT_EQ(c.hostSshPort, 22);
}

TEST(AForwarderConfig, ReadsEveryKey)
{
    const auto c = parseForwarderConfig("f.yml", "vpn-interface: tun3\n"
                                                 "container-address: 192.0.2.10\n"
                                                 "forwarded-ports: [3000-3001, 22, \"4000 - 4002\"]\n"
                                                 "lan-interfaces: [enp1s0]\n"
                                                 "host-control-port: 2200\n"
                                                 "host-ssh-port: 2022\n");
    EXPECT_EQ(c.vpnInterface, "tun3");
    EXPECT_EQ(formatIpv4(c.containerAddress), "192.0.2.10");
    EXPECT_EQ(formatPortRanges(c.forwardedPorts), "22, 3000-3001, 4000-4002");
    EXPECT_EQ(c.lanInterfaces, std::vector<std::string>{"enp1s0"});
    EXPECT_EQ(c.hostControlPort, 2200);
    EXPECT_EQ(c.hostSshPort, 2022);
}

TEST(AForwarderConfig, RefusesAnUnknownKeyNamingFileLineAndKey)
{
    EXPECT_EQ(configError("vpn-interface: tap0\nlan-acess: true\n"),
              "/etc/ferry/vpn-forwarder.yml:2:1: key 'lan-acess': unknown key");
}

TEST(AForwarderConfig, RefusesBadPortRanges)
{
    EXPECT_EQ(configError("\nforwarded-ports: [22, 2009-2000]\n"),
              "/etc/ferry/vpn-forwarder.yml:2:23: key 'forwarded-ports[1]': port range '2009-2000' ends before it "
              "starts");
    EXPECT_NE(configError("forwarded-ports: [22, 70000]\n").find(":1:23: key 'forwarded-ports[1]': expected a port"),
              std::string::npos);
    EXPECT_NE(configError("forwarded-ports: [2000-2009, 2005]\n").find("overlaps"), std::string::npos);
    EXPECT_NE(configError("forwarded-ports: []\n").find("key 'forwarded-ports': expected at least one"),
              std::string::npos);
    EXPECT_NE(configError("forwarded-ports: [abc]\n").find("got 'abc'"), std::string::npos);
    EXPECT_NE(configError("forwarded-ports: [0]\n").find("forwarded-ports[0]"), std::string::npos);
    EXPECT_NE(configError("host-control-port: 2005\n").find("key 'host-control-port': host-control port 2005 is also"),
              std::string::npos);
}

TEST(AForwarderConfig, RefusesBadAddressesAndInterfaceNames)
{
    EXPECT_EQ(configError("container-address: 10.0.3.300\n"),
              "/etc/ferry/vpn-forwarder.yml:1:1: key 'container-address': expected an IPv4 address like 10.0.3.2, got "
              "'10.0.3.300'");
    EXPECT_NE(configError("container-address: 10.0.3.0/24\n").find("expected an IPv4 address"), std::string::npos);
    EXPECT_NE(configError("container-address: 127.0.0.1\n").find("loopback"), std::string::npos);
    EXPECT_NE(configError("container-address: 010.0.3.2\n").find("expected an IPv4 address"), std::string::npos);
    EXPECT_NE(configError("vpn-interface: 'tap0\" accept'\n").find("key 'vpn-interface'"), std::string::npos);
    EXPECT_NE(configError("vpn-interface: averyveryverylongname\n").find("not a valid interface name"),
              std::string::npos);
    EXPECT_NE(configError("lan-interfaces: [tap0]\n").find("is the VPN interface"), std::string::npos);
    EXPECT_NE(configError("host-control-port: yes\n").find("key 'host-control-port'"), std::string::npos);
}

TEST(AnIpv4Prefix, ParsesFormatsAndDetectsOverlap)
{
    const auto vpn = *Ipv4Prefix::parse("10.1.0.2/24");
    EXPECT_EQ(vpn.subnetText(), "10.1.0.0/24");
    EXPECT_EQ(vpn.text(), "10.1.0.2/24");
    EXPECT_TRUE(vpn.overlaps(*Ipv4Prefix::parse("10.1.0.200/30")));
    EXPECT_TRUE(vpn.overlaps(*Ipv4Prefix::parse("10.0.0.1/8")));
    EXPECT_FALSE(vpn.overlaps(*Ipv4Prefix::parse("10.0.3.1/24")));
    EXPECT_TRUE(vpn.contains(Ipv4Prefix::parse("10.1.0.77")->address));
    EXPECT_TRUE(Ipv4Prefix::parse("0.0.0.0/0")->overlaps(vpn));
    EXPECT_FALSE(Ipv4Prefix::parse("1.2.3"));
    EXPECT_FALSE(Ipv4Prefix::parse("1.2.3.4/33"));
    EXPECT_FALSE(Ipv4Prefix::parse("1.2.3.4.5"));
    EXPECT_FALSE(Ipv4Prefix::parse(" 1.2.3.4"));
}

int countLines(const std::string& script, const std::string& needle)
{
    int n = 0;
    std::size_t start = 0;
    while (start < script.size()) {
        const auto end = script.find('\n', start);
        const auto line = script.substr(start, end - start);
        if (line.find(needle) != std::string::npos)
            ++n;
        start = end == std::string::npos ? script.size() : end + 1;
    }
    return n;
}

TEST(TheRuleset, ReplacesOnlyFerrysTableInOneTransaction)
{
    const auto script = buildRuleset(ForwarderConfig{}, {});
    EXPECT_EQ(script.rfind("add table inet ferry_forwarder\ndelete table inet ferry_forwarder\n"
                           "add table ip ferry_vpn\ndelete table ip ferry_vpn\ntable inet ferry_forwarder {\n",
                           0),
              0u)
        << script;
    // Every statement about a table names Ferry's: add, delete, define (and
    // the removal of the IPv4-only table of earlier versions).
    EXPECT_EQ(countLines(script, "table "), 5);
    EXPECT_EQ(countLines(script, "table inet ferry_forwarder"), 3);
    EXPECT_EQ(removeRuleset(), "add table inet ferry_forwarder\ndelete table inet ferry_forwarder\n"
                               "add table ip ferry_vpn\ndelete table ip ferry_vpn\n");
}

TEST(TheRuleset, ForwardsNothingAndGuardsTheLanWithoutAVpnAddress)
{
    const auto script = buildRuleset(ForwarderConfig{}, {});
    EXPECT_EQ(countLines(script, "dnat"), 0) << script;
    EXPECT_EQ(countLines(script, "accept comment"), 0) << script;
    EXPECT_NE(script.find("iifname { \"eth0\", \"eth1\", \"wlan0\" } ct state new tcp dport { 22, 2000-2009 } reject"),
              std::string::npos)
        << script;
}

TEST(TheRuleset, TogglesAddOnlyTheirOwnRules)
{
    const ForwarderConfig config;
    RulesetInput input;
    input.vpnAddress = Ipv4Prefix::parse("10.1.0.2/24");
    const auto base = buildRuleset(config, input);
    EXPECT_NE(base.find("iifname \"tap0\" ip daddr 10.1.0.2 tcp dport { 22, 2000-2009 } dnat ip to 10.0.3.2"),
              std::string::npos)
        << base;
    EXPECT_EQ(countLines(base, "lan access"), 0);
    EXPECT_EQ(countLines(base, "host control"), 0);

    input.lanAccess = true;
    const auto lan = buildRuleset(config, input);
    EXPECT_EQ(countLines(lan, "lan access"), 2) << lan;
    input.hostControl = true;
    const auto both = buildRuleset(config, input);
    EXPECT_EQ(countLines(both, "host control"), 2) << both;
    EXPECT_NE(both.find("tcp dport 2222 redirect to :22"), std::string::npos);
    input.lanAccess = false;
    input.hostControl = false;
    EXPECT_EQ(buildRuleset(config, input), base);
}

class FakeNetwork final : public Network {
public:
    NetSnapshot snap;
    std::vector<std::string> forwardingEnabled;
    NetSnapshot snapshot() override { return snap; }
    void enableForwarding(const LinkState& link) override { forwardingEnabled.push_back(link.name); }
};

class RecordingFirewall final : public Firewall {
public:
    std::vector<std::string> scripts;
    bool fail = false;
    void run(const std::string& script) override
    {
        if (fail)
            throw ferry::Error("Error: Could not process rule: No such file or directory");
        scripts.push_back(script);
    }
};

LinkState link(int index, const std::string& name, bool up, std::vector<std::string> addrs)
{
    LinkState l;
    l.index = index;
    l.name = name;
    l.up = up;
    for (const auto& a : addrs)
        l.addresses.push_back(*Ipv4Prefix::parse(a));
    return l;
}

class AManager : public ::testing::Test {
protected:
    AManager() : m_store(m_dir / "vpn-forwarder.state"), m_manager(ForwarderConfig{}, m_net, m_fw, m_store)
    {
        m_net.snap.links = {link(1, "lo", true, {"127.0.0.1/8"}), link(2, "eth0", true, {"192.168.77.1/24"}),
                            link(3, "ve-container", true, {"10.0.3.1/24"}),
                            link(4, "tap0", true, {"10.1.0.2/24"})};
    }
    TempDir m_dir;
    FakeNetwork m_net;
    RecordingFirewall m_fw;
    ToggleStore m_store;
    Manager m_manager;
};

TEST_F(AManager, InstallsForwardsAndEnablesForwardingOnTheLinksThatNeedIt)
{
    m_manager.start();
    EXPECT_TRUE(m_manager.status().forwarding);
    EXPECT_EQ(m_manager.status().lastError, "");
    EXPECT_EQ(m_net.forwardingEnabled, (std::vector<std::string>{"tap0", "ve-container"}));
    ASSERT_EQ(m_fw.scripts.size(), 1u);
    // An event that changes nothing relevant does not touch nftables.
    m_manager.refresh();
    EXPECT_EQ(m_fw.scripts.size(), 1u);
}

TEST_F(AManager, RefusesAVpnSubnetOverlappingALocalOne)
{
    m_net.snap.links[3] = link(4, "tap0", true, {"10.0.3.77/16"});
    std::vector<std::string> changed;
    m_manager.onChanged([&](const std::vector<std::string>& c) { changed.insert(changed.end(), c.begin(), c.end()); });
    m_manager.start();
    EXPECT_FALSE(m_manager.status().forwarding);
    EXPECT_TRUE(m_manager.status().refused);
    EXPECT_NE(m_manager.status().lastError.find("Refusing to forward: the VPN subnet 10.0.0.0/16 on tap0 contains the "
                                                "container address 10.0.3.2"),
              std::string::npos)
        << m_manager.status().lastError;
    ASSERT_EQ(m_fw.scripts.size(), 1u);
    EXPECT_EQ(countLines(m_fw.scripts[0], "dnat"), 0);
    EXPECT_NE(std::find(changed.begin(), changed.end(), "LastError"), changed.end());

    m_net.snap.links[3] = link(4, "tap0", true, {"192.168.0.2/16"});
    m_manager.refresh();
    EXPECT_NE(m_manager.status().lastError.find("overlaps the local subnet 192.168.77.0/24 on eth0"), std::string::npos)
        << m_manager.status().lastError;

    // A secondary address counts too.
    m_net.snap.links[3] = link(4, "tap0", true, {"10.1.0.2/24", "192.168.77.50/28"});
    m_manager.refresh();
    EXPECT_FALSE(m_manager.status().forwarding);
    EXPECT_NE(m_manager.status().lastError.find("the VPN subnet 192.168.77.48/28 on tap0 overlaps the local subnet "
                                                "192.168.77.0/24 on eth0"),
              std::string::npos)
        << m_manager.status().lastError;
    m_net.snap.links[3] = link(4, "tap0", true, {"10.1.0.2/24"});
    m_manager.refresh();
    EXPECT_TRUE(m_manager.status().forwarding);
    EXPECT_EQ(m_manager.status().lastError, "");
}

TEST_F(AManager, SavesTogglesAndTurningThemOffRestoresTheSameTable)
{
    m_manager.start();
    const std::string before = m_fw.scripts.back();
    m_manager.setLanAccess(true);
    m_manager.setHostControl(true);
    EXPECT_EQ(m_store.load(), (Toggles{true, true}));
    EXPECT_NE(m_fw.scripts.back(), before);
    m_manager.setLanAccess(false);
    m_manager.setHostControl(false);
    EXPECT_EQ(m_fw.scripts.back(), before);
    EXPECT_EQ(m_store.load(), (Toggles{false, false}));
}

TEST_F(AManager, KeepsTheOldToggleWhenNftablesRefusesTheNewTable)
{
    m_manager.start();
    m_fw.fail = true;
    EXPECT_THROW(m_manager.setLanAccess(true), ferry::Error);
    EXPECT_FALSE(m_manager.status().toggles.lanAccess);
    EXPECT_EQ(m_store.load(), (Toggles{false, false}));
    EXPECT_NE(m_manager.status().lastError.find("Failed to replace nftables table inet ferry_forwarder"), std::string::npos);
    EXPECT_TRUE(m_manager.status().forwarding);  // the old table is still in force
}

TEST_F(AManager, RemovesItsForwardsButKeepsItsGuardsOnShutdown)
{
    m_manager.start();
    m_manager.shutdown();
    EXPECT_EQ(m_fw.scripts.back(), guardsOnlyRuleset(ForwarderConfig{}));
    EXPECT_EQ(countLines(m_fw.scripts.back(), "dnat"), 0);
    EXPECT_GE(countLines(m_fw.scripts.back(), "guard"), 4);
}

TEST(AToggleStore, ReadsAMalformedFileAsBothOff)
{
    TempDir dir;
    ferry::test::writeFile(dir / "s", "lan-access=maybe\n");
    EXPECT_EQ(ToggleStore(dir / "s").load(), (Toggles{false, false}));
    ToggleStore(dir / "t").save({true, false});
    EXPECT_EQ(ToggleStore(dir / "t").load(), (Toggles{true, false}));
}

// The daemon itself refuses a bad file before touching the bus or nftables.
TEST(TheDaemon, RefusesToStartWithABadConfigNamingFileLineAndKey)
{
    TempDir dir;
    const std::string daemon = ferry::test::buildPath("services/vpn-forwarderd/ferry-vpn-forwarderd");
    const std::map<std::string, std::string> env{{"FERRY_CONFIG_DIR", dir.path()},
                                                 {"FERRY_STATE_DIR", dir / "state"},
                                                 {"DBUS_SYSTEM_BUS_ADDRESS", "unix:path=" + (dir / "no-bus")}};
    const std::string file = dir / "vpn-forwarder.yml";
    struct Case {
        std::string text, expected;
    };
    const std::vector<Case> cases = {
        {"vpn-interface: tap0\nbogus: 1\n", file + ":2:1: key 'bogus': unknown key"},
        {"forwarded-ports:\n  - 22\n  - 2010-2000\n", file + ":3:5: key 'forwarded-ports[1]': port range"},
        {"container-address: 10.0.3\n", file + ":1:1: key 'container-address': expected an IPv4 address"},
        {"vpn-interface: tap0\nforwarded-ports: [22]\nvpn-interface: tap1\n",
         file + ":3:1: key 'vpn-interface' appears twice (lines 1 and 3); the second would be ignored"},
        {"forwarded-ports:\n\t- 22\n",
         file + ":2: key 'forwarded-ports': tab character in the indentation: YAML indentation must use spaces"},
    };
    for (const auto& c : cases) {
        ferry::test::writeFile(file, c.text);
        const auto r = ferry::test::run({daemon}, env, {}, std::chrono::seconds(10));
        EXPECT_EQ(r.exitCode, 1) << c.text;
        EXPECT_NE(r.err.find(c.expected), std::string::npos) << "stderr: " << r.err;
        const auto check = ferry::test::run({daemon, "--check-config"}, env, {}, std::chrono::seconds(10));
        EXPECT_EQ(check.exitCode, 1);
        EXPECT_NE(check.err.find(c.expected), std::string::npos) << "stderr: " << check.err;
    }
    ferry::test::writeFile(file, "forwarded-ports: [22, 2000-2009]\n");
    const auto ok = ferry::test::run({daemon, "--check-config"}, env, {}, std::chrono::seconds(10));
    EXPECT_EQ(ok.exitCode, 0) << ok.err;
}

} // namespace
