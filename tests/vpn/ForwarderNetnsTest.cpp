// End-to-end: the real ferry-vpn-forwarderd inside an "appliance" network
// namespace, a "VPN peer" namespace on the far side of a veth named tap0, a
// "container" namespace with real listeners on 22 and 2000-2009 behind
// ve-container, and a "LAN" namespace behind eth0. Every claim is checked
// with real TCP connections; all traffic stays inside these namespaces.

#include <gtest/gtest.h>

#include <pwd.h>
#include <signal.h>
#include <unistd.h>

#include <filesystem>
#include <algorithm>
#include <mutex>
#include <optional>
#include <regex>

#include <nlohmann/json.hpp>
#include <sdbus-c++/sdbus-c++.h>

#include "NetnsKit.h"
#include "org.ferry.VpnForwarder1-proxy.h"
#include "support/TestSupport.h"

namespace {

using namespace std::chrono_literals;
using ferry::test::buildPath;
using ferry::test::Process;
using ferry::test::TempDir;
using ferry::test::waitUntil;
using vpntest::BannerServer;
using vpntest::connectFrom;
using vpntest::Netns;

class ForwarderProxy final : public sdbus::ProxyInterfaces<org::ferry::VpnForwarder1_proxy> {
public:
    explicit ForwarderProxy(sdbus::IConnection& bus)
        : ProxyInterfaces(bus, "org.ferry.VpnForwarder1", "/org/ferry/VpnForwarder1")
    {
        registerProxy();
    }
    ~ForwarderProxy() { unregisterProxy(); }
};

// Collects the names in org.freedesktop.DBus.Properties.PropertiesChanged
// signals from the forwarder, on a connection with its own event loop.
class ChangeListener final : public sdbus::ProxyInterfaces<sdbus::Properties_proxy> {
public:
    explicit ChangeListener(sdbus::IConnection& bus)
        : ProxyInterfaces(bus, "org.ferry.VpnForwarder1", "/org/ferry/VpnForwarder1")
    {
        registerProxy();
    }
    ~ChangeListener() { unregisterProxy(); }
    bool saw(const std::string& name)
    {
        std::lock_guard lock(m_mutex);
        return std::find(m_seen.begin(), m_seen.end(), name) != m_seen.end();
    }

private:
    void onPropertiesChanged(const std::string& interface, const std::map<std::string, sdbus::Variant>& changed,
                             const std::vector<std::string>&) override
    {
        std::lock_guard lock(m_mutex);
        if (interface == "org.ferry.VpnForwarder1")
            for (const auto& [name, value] : changed)
                m_seen.push_back(name);
    }
    std::mutex m_mutex;
    std::vector<std::string> m_seen;
};

// Documentation addresses (RFC 5737), used only inside the namespaces this
// test creates: the container link is 192.0.2.0/24, the VPN link
// 198.51.100.0/25 and the LAN 198.51.100.128/25. Instead of the product's
// default container address (the appliance's layout), every test configures
// kContainer.
constexpr const char* kVpnAddress = "198.51.100.2";
constexpr const char* kContainer = "192.0.2.2";
constexpr const char* kLanAddress = "198.51.100.129"; // the appliance on the LAN

std::vector<int> containerPorts()
{
    std::vector<int> ports{22};
    for (int p = 2000; p <= 2010; ++p)  // 2010 listens too, but is not forwarded
        ports.push_back(p);
    return ports;
}

int countOf(const std::string& text, const std::string& needle)
{
    int n = 0;
    for (auto pos = text.find(needle); pos != std::string::npos; pos = text.find(needle, pos + 1))
        ++n;
    return n;
}

class AVpnForwarder : public ::testing::Test {
protected:
    void SetUp() override
    {
        if (!ferry::test::isRoot())
            GTEST_SKIP() << "needs root to create network namespaces";
        if (::access("/usr/sbin/nft", X_OK) != 0 || ::access("/usr/sbin/ip", X_OK) != 0)
            GTEST_SKIP() << "needs ip and nft";
        vpntest::removeStaleNamespaces("fvpn");
        const std::string prefix = "fvpn" + std::to_string(::getpid()) + "-";
        try {
            m_appliance.emplace(prefix + "appl");
        } catch (const std::exception& e) {
            GTEST_SKIP() << "cannot create network namespaces here: " << e.what();
        }
        m_peer.emplace(prefix + "peer");
        m_container.emplace(prefix + "ctr");
        m_lan.emplace(prefix + "lan");

        // VPN link: tap0 in the appliance (left down, no address, until a
        // test brings it up), vpn0 in the peer.
        m_appliance->ip({"link", "add", "tap0", "type", "veth", "peer", "name", "vpn0", "netns", m_peer->name()});
        m_peer->ip({"addr", "add", "198.51.100.1/25", "dev", "vpn0"});
        m_peer->ip({"link", "set", "vpn0", "up"});
        // Container link.
        m_appliance->ip({"link", "add", "ve-container", "type", "veth", "peer", "name", "eth0", "netns",
                         m_container->name()});
        m_appliance->ip({"addr", "add", "192.0.2.1/24", "dev", "ve-container"});
        m_appliance->ip({"link", "set", "ve-container", "up"});
        m_container->ip({"addr", "add", std::string(kContainer) + "/24", "dev", "eth0"});
        m_container->ip({"link", "set", "eth0", "up"});
        m_container->ip({"route", "add", "default", "via", "192.0.2.1"});
        // LAN link.
        m_appliance->ip({"link", "add", "eth0", "type", "veth", "peer", "name", "eth0", "netns", m_lan->name()});
        m_appliance->ip({"addr", "add", std::string(kLanAddress) + "/25", "dev", "eth0"});
        m_appliance->ip({"link", "set", "eth0", "up"});
        m_lan->ip({"addr", "add", "198.51.100.130/25", "dev", "eth0"});
        m_lan->ip({"link", "set", "eth0", "up"});
        m_lan->ip({"route", "add", "default", "via", kLanAddress});

        // Tables that are not Ferry's: they must stay exactly as they are.
        ferry::test::writeFile(m_dir / "bystander.nft",
                               "table ip bystander {\n"
                               "  set blocked { type ipv4_addr; elements = { 192.0.2.7 } }\n"
                               "  chain input { type filter hook input priority 10; policy accept; ip saddr @blocked drop; }\n"
                               "  chain prerouting { type nat hook prerouting priority -90; policy accept;\n"
                               "    tcp dport 9 dnat to 192.0.2.9\n  }\n"
                               "}\n"
                               "table inet ferry_vpn {\n  chain c { tcp dport 7 drop; }\n}\n");
        const auto r = m_appliance->exec({"nft", "-f", m_dir / "bystander.nft"});
        ASSERT_EQ(r.exitCode, 0) << r.err;
        m_othersBefore = otherTables();
        // Every test starts with the container at kContainer; a test that
        // configures more writes the whole file itself.
        ferry::test::writeFile(configFile(), "container-address: " + std::string(kContainer) + "\n");

        m_containerServer.emplace(m_container->name(), containerPorts(), "container");
        m_bus.emplace();
        // TestBus returns once the socket file exists, which can be a moment
        // before dbus-daemon listens on it (seen as ECONNREFUSED under load).
        ASSERT_TRUE(waitUntil(
            [&] {
                try {
                    m_connection = sdbus::createSystemBusConnection();
                    return true;
                } catch (const sdbus::Error&) {
                    return false;
                }
            },
            10s));
        m_proxy.emplace(*m_connection);
    }

    void TearDown() override
    {
        if (!HasFailure())
            return;
        if (m_daemon)
            std::cerr << "daemon log:\n" << ferry::test::readFile(m_dir / "daemon.log") << "\n";
        if (m_appliance)
            std::cerr << "ruleset:\n" << ruleset() << "\n";
    }

    std::string configFile() const { return m_dir / "etc/vpn-forwarder.yml"; }

    // wrapper: a command that runs the rest of argv (e.g. setpriv …).
    void startDaemon(const std::vector<std::string>& wrapper = {})
    {
        std::vector<std::string> argv{"/usr/sbin/ip", "netns", "exec", m_appliance->name()};
        argv.insert(argv.end(), wrapper.begin(), wrapper.end());
        // Under a wrapper (setpriv) the daemon runs as another user.
        argv.push_back(wrapper.empty()
                           ? buildPath("services/vpn-forwarderd/ferry-vpn-forwarderd")
                           : ferry::test::buildPathForAnyUser("services/vpn-forwarderd/ferry-vpn-forwarderd"));
        argv.push_back("-v");
        m_daemon.emplace(argv,
                         std::map<std::string, std::string>{{"FERRY_CONFIG_DIR", m_dir / "etc"},
                                                            {"FERRY_STATE_DIR", m_dir / "state"}},
                         m_dir / "daemon.log");
        ASSERT_TRUE(waitUntil(
            [&] {
                try {
                    m_proxy->LinkUp();
                    return true;
                } catch (const sdbus::Error&) {
                    return false;
                }
            },
            10s))
            << ferry::test::readFile(m_dir / "daemon.log");
    }

    void stopDaemon(int signal)
    {
        m_daemon->signal(signal);
        ASSERT_TRUE(m_daemon->wait(10s).has_value());
        m_daemon.reset();
    }

    void bringVpnUp(const std::string& cidr = "198.51.100.2/25")
    {
        m_appliance->ip({"addr", "add", cidr, "dev", "tap0"});
        m_appliance->ip({"link", "set", "tap0", "up"});
    }

    std::string ruleset() const { return m_appliance->exec({"nft", "list", "ruleset"}).out; }
    std::string ferryTable() const
    {
        return m_appliance->exec({"nft", "list", "table", "inet", "ferry_forwarder"}).out;
    }
    // After a stop: the guards, and nothing that forwards or redirects.
    void expectOnlyGuardsLeft() const
    {
        const auto table = ferryTable();
        EXPECT_NE(table.find("guard"), std::string::npos) << table;
        EXPECT_EQ(countOf(table, "dnat ip to"), 0) << table;
        EXPECT_EQ(countOf(table, "redirect"), 0) << table;
    }
    std::string otherTables() const
    {
        return m_appliance->exec({"nft", "list", "table", "ip", "bystander"}).out +
               m_appliance->exec({"nft", "list", "table", "inet", "ferry_vpn"}).out;
    }
    void expectOtherTablesUntouched() const { EXPECT_EQ(otherTables(), m_othersBefore); }

    // Positive checks wait (a neighbour entry may need a moment after a link
    // comes up); negative ones are a single attempt.
    bool reaches(const Netns& from, const std::string& address, int port, const std::string& banner)
    {
        std::string last;
        const bool ok = waitUntil(
            [&] {
                last = connectFrom(from.name(), address, port);
                return last == banner;
            },
            5s, 50ms);
        if (!ok)
            ADD_FAILURE() << from.name() << " -> " << address << ":" << port << " gave '" << last << "', not '"
                          << banner << "'";
        return ok;
    }

    TempDir m_dir;
    std::optional<Netns> m_appliance, m_peer, m_container, m_lan;
    std::string m_othersBefore;
    std::optional<BannerServer> m_containerServer, m_hostServer;
    std::optional<ferry::test::TestBus> m_bus;
    std::unique_ptr<sdbus::IConnection> m_connection;
    std::optional<ForwarderProxy> m_proxy;
    std::optional<Process> m_daemon;
};

TEST_F(AVpnForwarder, ForwardsVpnPortsToTheContainerOnlyWhileTheLinkIsUp)
{
    startDaemon();
    // Before the link is up: no forwards, nothing reachable.
    EXPECT_FALSE(m_proxy->LinkUp());
    EXPECT_FALSE(m_proxy->Forwarding());
    EXPECT_EQ(m_proxy->VpnAddress(), "");
    EXPECT_EQ(countOf(ruleset(), "dnat to"), 1);  // the bystander's only
    EXPECT_NE(connectFrom(m_peer->name(), kVpnAddress, 22, 800ms), "container:22");

    bringVpnUp();
    ASSERT_TRUE(waitUntil([&] { return m_proxy->Forwarding(); }, 5s));
    EXPECT_TRUE(m_proxy->LinkUp());
    EXPECT_EQ(m_proxy->VpnAddress(), "198.51.100.2/25");
    EXPECT_EQ(m_proxy->ContainerAddress(), kContainer);
    EXPECT_EQ(m_proxy->LastError(), "");
    EXPECT_TRUE(reaches(*m_peer, kVpnAddress, 22, "container:22"));
    EXPECT_TRUE(reaches(*m_peer, kVpnAddress, 2005, "container:2005"));
    EXPECT_TRUE(reaches(*m_peer, kVpnAddress, 2000, "container:2000"));
    EXPECT_TRUE(reaches(*m_peer, kVpnAddress, 2009, "container:2009"));
    // 2010 listens in the container but is not forwarded; the VPN peer reaches
    // nothing else, not even the container directly.
    EXPECT_EQ(connectFrom(m_peer->name(), kVpnAddress, 2010), "refused");
    m_peer->ip({"route", "add", "192.0.2.0/24", "via", kVpnAddress});
    EXPECT_EQ(connectFrom(m_peer->name(), kContainer, 2010), "refused");
    expectOtherTablesUntouched();

    // The address changes (as a VPN client does it: the old one goes, the new
    // one comes): the forwards move with it.
    m_appliance->ip({"addr", "del", "198.51.100.2/25", "dev", "tap0"});
    m_appliance->ip({"addr", "add", "198.51.100.3/25", "dev", "tap0"});
    ASSERT_TRUE(waitUntil([&] { return m_proxy->VpnAddress() == "198.51.100.3/25"; }, 5s));
    EXPECT_TRUE(reaches(*m_peer, "198.51.100.3", 22, "container:22"));
    EXPECT_EQ(ferryTable().find(kVpnAddress), std::string::npos) << ferryTable();

    // The address goes away: so do the forwards.
    m_appliance->ip({"addr", "flush", "dev", "tap0"});
    ASSERT_TRUE(waitUntil([&] { return !m_proxy->Forwarding(); }, 5s));
    EXPECT_TRUE(m_proxy->LinkUp());
    EXPECT_EQ(countOf(ferryTable(), "dnat ip to"), 0) << ferryTable();

    // Up again, then the link goes down: forwards removed.
    m_appliance->ip({"addr", "add", "198.51.100.2/25", "dev", "tap0"});
    ASSERT_TRUE(waitUntil([&] { return m_proxy->Forwarding(); }, 5s));
    EXPECT_TRUE(reaches(*m_peer, kVpnAddress, 2005, "container:2005"));
    m_appliance->ip({"link", "set", "tap0", "down"});
    ASSERT_TRUE(waitUntil([&] { return !m_proxy->LinkUp() && !m_proxy->Forwarding(); }, 5s));
    EXPECT_EQ(countOf(ferryTable(), "dnat ip to"), 0) << ferryTable();
    EXPECT_NE(connectFrom(m_peer->name(), kVpnAddress, 22, 800ms), "container:22");
    expectOtherTablesUntouched();
}

TEST_F(AVpnForwarder, SignalsPropertyChangesAsTheLinkComesAndGoes)
{
    startDaemon();
    auto signals = sdbus::createSystemBusConnection();
    signals->enterEventLoopAsync();
    {
        ChangeListener listener(*signals);
        bringVpnUp();
        EXPECT_TRUE(waitUntil([&] { return listener.saw("LinkUp") && listener.saw("Forwarding") &&
                                           listener.saw("VpnAddress"); },
                              5s));
        m_proxy->SetLanAccess(true);
        EXPECT_TRUE(waitUntil([&] { return listener.saw("LanAccess"); }, 5s));
    }
    signals->leaveEventLoop();
}

TEST_F(AVpnForwarder, KeepsTheLanOutUntilLanAccessIsTurnedOn)
{
    // The host's own sshd listens on 22 too: the LAN must not reach it either.
    m_hostServer.emplace(m_appliance->name(), std::vector<int>{22}, "host");
    bringVpnUp();
    startDaemon();
    ASSERT_TRUE(waitUntil([&] { return m_proxy->Forwarding(); }, 5s));
    EXPECT_FALSE(m_proxy->LanAccess());
    const std::string tableBefore = ferryTable();

    // By default the LAN reaches none of the forwarded ports, on any address,
    // nor the container directly.
    EXPECT_EQ(connectFrom(m_lan->name(), kLanAddress, 22), "refused");
    EXPECT_EQ(connectFrom(m_lan->name(), kLanAddress, 2005), "refused");
    EXPECT_EQ(connectFrom(m_lan->name(), kVpnAddress, 22), "refused");
    EXPECT_NE(connectFrom(m_lan->name(), kContainer, 22, 800ms), "container:22");

    m_proxy->SetLanAccess(true);
    EXPECT_TRUE(m_proxy->LanAccess());
    EXPECT_TRUE(reaches(*m_lan, kLanAddress, 22, "container:22"));
    EXPECT_TRUE(reaches(*m_lan, kLanAddress, 2005, "container:2005"));
    EXPECT_EQ(connectFrom(m_lan->name(), kLanAddress, 2010), "refused");
    EXPECT_NE(ferry::test::readFile(m_dir / "state/vpn-forwarder.state").find("lan-access=on"), std::string::npos);
    // The VPN side is unaffected.
    EXPECT_TRUE(reaches(*m_peer, kVpnAddress, 22, "container:22"));
    // LAN access does not depend on the VPN link.
    m_appliance->ip({"link", "set", "tap0", "down"});
    ASSERT_TRUE(waitUntil([&] { return !m_proxy->LinkUp(); }, 5s));
    EXPECT_TRUE(reaches(*m_lan, kLanAddress, 2005, "container:2005"));
    m_appliance->ip({"link", "set", "tap0", "up"});
    ASSERT_TRUE(waitUntil([&] { return m_proxy->Forwarding(); }, 5s));

    m_proxy->SetLanAccess(false);
    EXPECT_FALSE(m_proxy->LanAccess());
    EXPECT_EQ(connectFrom(m_lan->name(), kLanAddress, 22), "refused");
    EXPECT_EQ(connectFrom(m_lan->name(), kLanAddress, 2005), "refused");
    // Off removed exactly what on added.
    EXPECT_EQ(ferryTable(), tableBefore);
    expectOtherTablesUntouched();
}

TEST_F(AVpnForwarder, ReachesTheHostOnlyWhileHostControlIsOn)
{
    // The host's sshd on 22 and some other host service on 8022.
    m_hostServer.emplace(m_appliance->name(), std::vector<int>{22, 8022}, "host");
    bringVpnUp();
    startDaemon();
    ASSERT_TRUE(waitUntil([&] { return m_proxy->Forwarding(); }, 5s));
    EXPECT_EQ(m_proxy->HostControlPort(), 2222);
    const std::string tableBefore = ferryTable();

    EXPECT_EQ(connectFrom(m_peer->name(), kVpnAddress, 2222), "refused");
    EXPECT_EQ(connectFrom(m_peer->name(), kVpnAddress, 8022), "refused");
    EXPECT_TRUE(reaches(*m_peer, kVpnAddress, 22, "container:22"));

    m_proxy->SetHostControl(true);
    EXPECT_TRUE(m_proxy->HostControl());
    EXPECT_TRUE(reaches(*m_peer, kVpnAddress, 2222, "host:22"));
    EXPECT_TRUE(reaches(*m_peer, kVpnAddress, 22, "container:22"));
    // Only the host's sshd, nothing else on the host.
    EXPECT_EQ(connectFrom(m_peer->name(), kVpnAddress, 8022), "refused");
    // Host control is for the VPN peer only.
    EXPECT_EQ(connectFrom(m_lan->name(), kLanAddress, 2222), "refused");

    m_proxy->SetHostControl(false);
    EXPECT_EQ(connectFrom(m_peer->name(), kVpnAddress, 2222), "refused");
    EXPECT_EQ(ferryTable(), tableBefore);
    expectOtherTablesUntouched();
}

TEST_F(AVpnForwarder, ReappliesTheSameRulesAfterARestartWithoutDuplicates)
{
    m_hostServer.emplace(m_appliance->name(), std::vector<int>{22}, "host");
    bringVpnUp();
    startDaemon();
    ASSERT_TRUE(waitUntil([&] { return m_proxy->Forwarding(); }, 5s));
    m_proxy->SetLanAccess(true);
    m_proxy->SetHostControl(true);
    const std::string before = ruleset();
    EXPECT_EQ(countOf(before, "dnat ip to") + countOf(before, "dnat to"), 3);  // VPN, LAN, bystander
    EXPECT_EQ(countOf(before, "redirect to"), 1);

    // A clean stop removes Ferry's forwards, and only them: the guards stay.
    ASSERT_NO_FATAL_FAILURE(stopDaemon(SIGTERM));
    expectOnlyGuardsLeft();
    EXPECT_EQ(connectFrom(m_lan->name(), kLanAddress, 22, 800ms).rfind("container", 0), std::string::npos);
    expectOtherTablesUntouched();

    // A fresh start re-applies the saved toggles: the same ruleset, byte for byte.
    startDaemon();
    ASSERT_TRUE(waitUntil([&] { return m_proxy->Forwarding(); }, 5s));
    EXPECT_TRUE(m_proxy->LanAccess());
    EXPECT_TRUE(m_proxy->HostControl());
    EXPECT_EQ(ruleset(), before);
    EXPECT_TRUE(reaches(*m_peer, kVpnAddress, 2005, "container:2005"));
    EXPECT_TRUE(reaches(*m_lan, kLanAddress, 22, "container:22"));
    EXPECT_TRUE(reaches(*m_peer, kVpnAddress, 2222, "host:22"));

    // A crash leaves the table behind; the next start replaces it whole.
    ASSERT_NO_FATAL_FAILURE(stopDaemon(SIGKILL));
    EXPECT_EQ(ruleset(), before);
    startDaemon();
    ASSERT_TRUE(waitUntil([&] { return m_proxy->Forwarding(); }, 5s));
    EXPECT_EQ(ruleset(), before);
    m_proxy->Reapply();
    EXPECT_EQ(ruleset(), before);
    EXPECT_TRUE(reaches(*m_peer, kVpnAddress, 22, "container:22"));
    expectOtherTablesUntouched();
}

// Issue 12 item 5: the guards hold over IPv6 too. Link-local addresses
// exist on both links whether or not anyone configured IPv6; before, the
// table was "ip" only, so the VPN peer and the LAN reached the host's
// services over them, and a clean stop removed the guards altogether.
TEST_F(AVpnForwarder, RefusesTheVpnPeerAndTheLanOverIpv6LinkLocalEvenAfterAStop)
{
    m_hostServer.emplace(m_appliance->name(), std::vector<int>{22, 2005}, "host");
    bringVpnUp();
    startDaemon();
    ASSERT_TRUE(waitUntil([&] { return m_proxy->Forwarding(); }, 5s));
    // The appliance's link-local addresses, once duplicate detection is done.
    auto linkLocal = [&](const std::string& dev) {
        std::string out;
        waitUntil(
            [&] {
                out = m_appliance->exec({"ip", "-6", "-o", "addr", "show", "dev", dev, "scope", "link"}).out;
                return out.find("fe80::") != std::string::npos && out.find("tentative") == std::string::npos;
            },
            10s);
        const auto start = out.find("fe80::");
        return start == std::string::npos ? std::string() : out.substr(start, out.find('/', start) - start);
    };
    const std::string vpnLinkLocal = linkLocal("tap0");
    const std::string lanLinkLocal = linkLocal("eth0");
    ASSERT_FALSE(vpnLinkLocal.empty()) << m_appliance->exec({"ip", "-6", "addr"}).out;
    ASSERT_FALSE(lanLinkLocal.empty()) << m_appliance->exec({"ip", "-6", "addr"}).out;
    // The host's services answer over IPv6 at all (from the appliance itself).
    ASSERT_EQ(connectFrom(m_appliance->name(), "::1", 22), "host:22");

    // Refused by the guard's reset, or unanswered where the kernel cannot
    // route a reset to a link-local source: either way, no banner.
    auto blocked = [](const std::string& r) { return r == "refused" || r == "timeout"; };
    auto attack = [&](const std::string& when) {
        SCOPED_TRACE(when);
        for (int port : {22, 2005}) {
            const auto fromVpn = connectFrom(m_peer->name(), vpnLinkLocal + "%vpn0", port, 800ms);
            EXPECT_TRUE(blocked(fromVpn)) << "VPN peer to [" << vpnLinkLocal << "]:" << port << ": " << fromVpn;
            const auto fromLan = connectFrom(m_lan->name(), lanLinkLocal + "%eth0", port, 800ms);
            EXPECT_TRUE(blocked(fromLan)) << "LAN to [" << lanLinkLocal << "]:" << port << ": " << fromLan;
        }
    };
    attack("while running");
    ASSERT_NO_FATAL_FAILURE(stopDaemon(SIGTERM));
    attack("after a clean stop");
    // IPv4 stays guarded after the stop as well.
    EXPECT_NE(connectFrom(m_peer->name(), kVpnAddress, 22, 800ms), "host:22");
    EXPECT_NE(connectFrom(m_lan->name(), kLanAddress, 22, 800ms), "host:22");
}

TEST_F(AVpnForwarder, RefusesToForwardWhenTheVpnSubnetOverlapsALocalSubnet)
{
    // The VPN server hands out a /24 that swallows the LAN's 198.51.100.128/25
    // (the peer's own 198.51.100.1/25 still reaches the address).
    bringVpnUp("198.51.100.2/24");
    startDaemon();
    ASSERT_TRUE(waitUntil([&] { return !m_proxy->LastError().empty(); }, 5s));
    EXPECT_TRUE(m_proxy->LinkUp());
    EXPECT_FALSE(m_proxy->Forwarding());
    const std::string error = m_proxy->LastError();
    EXPECT_NE(error.find("Refusing to forward"), std::string::npos) << error;
    EXPECT_NE(error.find("198.51.100.0/24 on tap0 overlaps the local subnet 198.51.100.128/25 on eth0"),
              std::string::npos)
        << error;
    EXPECT_EQ(countOf(ferryTable(), "dnat ip to"), 0);
    EXPECT_EQ(connectFrom(m_peer->name(), kVpnAddress, 22), "refused");
    try {
        m_proxy->Reapply();
        ADD_FAILURE() << "Reapply succeeded while forwarding is refused";
    } catch (const sdbus::Error& e) {
        EXPECT_EQ(e.getName(), "org.ferry.VpnForwarder1.Error.Refused");
        EXPECT_EQ(e.getMessage(), error);
    }
    const auto status = ferry::test::run({buildPath("services/ferryctl/ferryctl"), "vpn", "status"}, m_bus->env());
    EXPECT_EQ(status.exitCode, 1) << status.err;
    EXPECT_NE(status.out.find(error), std::string::npos) << status.out;

    // Once the VPN uses its own subnet again, forwarding resumes by itself.
    m_appliance->ip({"addr", "flush", "dev", "tap0"});
    m_appliance->ip({"addr", "add", "198.51.100.2/25", "dev", "tap0"});
    ASSERT_TRUE(waitUntil([&] { return m_proxy->Forwarding(); }, 5s));
    EXPECT_EQ(m_proxy->LastError(), "");
    EXPECT_TRUE(reaches(*m_peer, kVpnAddress, 22, "container:22"));
    expectOtherTablesUntouched();
}

TEST_F(AVpnForwarder, IsDrivenByFerryctl)
{
    bringVpnUp();
    startDaemon();
    ASSERT_TRUE(waitUntil([&] { return m_proxy->Forwarding(); }, 5s));
    const std::string ferryctl = buildPath("services/ferryctl/ferryctl");
    const auto env = m_bus->env();

    auto human = ferry::test::run({ferryctl, "vpn", "status"}, env);
    EXPECT_EQ(human.exitCode, 0) << human.err;
    EXPECT_NE(human.out.find("tap0 up, 198.51.100.2/25"), std::string::npos) << human.out;
    EXPECT_NE(human.out.find("TCP 22, 2000-2009 -> 192.0.2.2"), std::string::npos) << human.out;
    EXPECT_NE(human.out.find("LAN access:    off"), std::string::npos) << human.out;

    auto on = ferry::test::run({ferryctl, "vpn", "lan", "on"}, env);
    EXPECT_EQ(on.exitCode, 0) << on.err;
    EXPECT_TRUE(m_proxy->LanAccess());
    EXPECT_TRUE(reaches(*m_lan, kLanAddress, 2001, "container:2001"));
    auto hc = ferry::test::run({ferryctl, "vpn", "host-control", "on"}, env);
    EXPECT_EQ(hc.exitCode, 0) << hc.err;
    EXPECT_TRUE(m_proxy->HostControl());

    auto json = ferry::test::run({ferryctl, "--json", "vpn", "status"}, env);
    ASSERT_EQ(json.exitCode, 0) << json.err;
    const auto j = nlohmann::json::parse(json.out);
    EXPECT_EQ(j.at("vpnInterface"), "tap0");
    EXPECT_EQ(j.at("linkUp"), true);
    EXPECT_EQ(j.at("forwarding"), true);
    EXPECT_EQ(j.at("vpnAddress"), "198.51.100.2/25");
    EXPECT_EQ(j.at("containerAddress"), kContainer);
    EXPECT_EQ(j.at("lanAccess"), true);
    EXPECT_EQ(j.at("hostControl"), true);
    EXPECT_EQ(j.at("hostControlPort"), 2222);
    EXPECT_EQ(j.at("lastError"), "");
    ASSERT_EQ(j.at("forwardedPorts").size(), 2u);
    EXPECT_EQ(j.at("forwardedPorts")[1].at("first"), 2000);
    EXPECT_EQ(j.at("forwardedPorts")[1].at("last"), 2009);

    EXPECT_EQ(ferry::test::run({ferryctl, "vpn", "lan", "off"}, env).exitCode, 0);
    EXPECT_FALSE(m_proxy->LanAccess());
    EXPECT_EQ(connectFrom(m_lan->name(), kLanAddress, 2001), "refused");

    auto hcOff = ferry::test::run({ferryctl, "--json", "vpn", "host-control", "off"}, env);
    EXPECT_EQ(hcOff.exitCode, 0) << hcOff.err;
    EXPECT_EQ(nlohmann::json::parse(hcOff.out), nlohmann::json({{"hostControl", false}}));
    EXPECT_FALSE(m_proxy->HostControl());

    auto bad = ferry::test::run({ferryctl, "vpn", "lan", "maybe"}, env);
    EXPECT_EQ(bad.exitCode, 2);
    EXPECT_NE(bad.err.find("on|off"), std::string::npos) << bad.err;
}

TEST_F(AVpnForwarder, UsesTheConfiguredInterfacePortsAndContainer)
{
    // A differently named VPN interface and a narrower port list.
    m_appliance->ip({"link", "set", "tap0", "name", "tun7"});
    ferry::test::writeFile(configFile(), "vpn-interface: tun7\n"
                                         "container-address: 192.0.2.2\n"
                                         "forwarded-ports: [2005, 2001-2002]\n"
                                         "lan-interfaces: [eth0]\n"
                                         "host-control-port: 2200\n");
    m_appliance->ip({"addr", "add", "198.51.100.2/25", "dev", "tun7"});
    m_appliance->ip({"link", "set", "tun7", "up"});
    startDaemon();
    ASSERT_TRUE(waitUntil([&] { return m_proxy->Forwarding(); }, 5s));
    EXPECT_EQ(m_proxy->VpnInterface(), "tun7");
    EXPECT_TRUE(reaches(*m_peer, kVpnAddress, 2005, "container:2005"));
    EXPECT_TRUE(reaches(*m_peer, kVpnAddress, 2002, "container:2002"));
    EXPECT_EQ(connectFrom(m_peer->name(), kVpnAddress, 22), "refused");
    EXPECT_EQ(connectFrom(m_peer->name(), kVpnAddress, 2003), "refused");
    const auto ports = m_proxy->ForwardedPorts();
    ASSERT_EQ(ports.size(), 2u);
    EXPECT_EQ(ports[0].get<0>(), 2001);
    EXPECT_EQ(ports[0].get<1>(), 2002);
    EXPECT_EQ(ports[1].get<0>(), 2005);
    expectOtherTablesUntouched();
}

// The unit grants CAP_NET_ADMIN and nothing else to user ferry: that must
// be enough for rtnetlink, per-link forwarding, nftables and the state file.
TEST_F(AVpnForwarder, WorksAsAnUnprivilegedUserWithOnlyCapNetAdmin)
{
    if (::access("/usr/bin/setpriv", X_OK) != 0)
        GTEST_SKIP() << "needs setpriv (util-linux) to drop privileges";
    const std::string nobody = "65534";
    std::filesystem::create_directories(m_dir / "state");
    ASSERT_EQ(::chown((m_dir / "state").c_str(), 65534, 65534), 0);
    bringVpnUp();
    startDaemon({"/usr/bin/setpriv", "--reuid=" + nobody, "--regid=" + nobody, "--clear-groups",
                 "--inh-caps=-all,+net_admin", "--ambient-caps=-all,+net_admin", "--bounding-set=-all,+net_admin"});
    ASSERT_TRUE(waitUntil([&] { return m_proxy->Forwarding(); }, 5s));
    const std::string status = ferry::test::readFile("/proc/" + std::to_string(m_daemon->pid()) + "/status");
    EXPECT_NE(status.find("Uid:\t65534"), std::string::npos) << status;
    EXPECT_NE(status.find("CapEff:\t0000000000001000"), std::string::npos) << status;  // CAP_NET_ADMIN only
    EXPECT_TRUE(reaches(*m_peer, kVpnAddress, 22, "container:22"));
    m_proxy->SetLanAccess(true);
    EXPECT_TRUE(reaches(*m_lan, kLanAddress, 2005, "container:2005"));
    EXPECT_NE(ferry::test::readFile(m_dir / "state/vpn-forwarder.state").find("lan-access=on"), std::string::npos);
    ASSERT_NO_FATAL_FAILURE(stopDaemon(SIGTERM));
    expectOnlyGuardsLeft();
    expectOtherTablesUntouched();
}

// The shipped bus policy, on a bus configured like Debian's system bus
// (default deny), with the daemon running as user ferry the way the unit
// runs it: everyone may read, only root may change the toggles.
TEST_F(AVpnForwarder, LetsOnlyRootChangeTheTogglesUnderItsBusPolicy)
{
    const passwd* ferryUser = ::getpwnam("ferry");
    if (ferryUser == nullptr || ::access("/usr/bin/setpriv", X_OK) != 0 || ::access("/usr/bin/busctl", X_OK) != 0)
        GTEST_SKIP() << "needs a 'ferry' user, setpriv and busctl";
    const std::string socket = m_dir / "system_bus_socket";
    ferry::test::writeFile(
        m_dir / "system.conf",
        "<!DOCTYPE busconfig PUBLIC \"-//freedesktop//DTD D-Bus Bus Configuration 1.0//EN\"\n"
        " \"http://www.freedesktop.org/standards/dbus/1.0/busconfig.dtd\">\n"
        "<busconfig>\n  <type>system</type>\n  <auth>EXTERNAL</auth>\n  <listen>unix:path=" + socket + "</listen>\n"
        "  <policy context=\"default\">\n    <allow user=\"*\"/>\n    <deny own=\"*\"/>\n"
        "    <deny send_type=\"method_call\"/>\n    <allow send_type=\"signal\"/>\n"
        "    <allow send_requested_reply=\"true\" send_type=\"method_return\"/>\n"
        "    <allow send_requested_reply=\"true\" send_type=\"error\"/>\n"
        "    <allow receive_type=\"method_call\"/>\n    <allow receive_type=\"method_return\"/>\n"
        "    <allow receive_type=\"error\"/>\n    <allow receive_type=\"signal\"/>\n"
        "    <allow send_destination=\"org.freedesktop.DBus\" send_interface=\"org.freedesktop.DBus\"/>\n"
        "  </policy>\n"
        "  <include>" + ferry::test::sourcePath("dbus/org.ferry.VpnForwarder1.conf") + "</include>\n"
        "</busconfig>\n");
    Process bus({"/usr/bin/dbus-daemon", "--nofork", "--nopidfile", "--config-file=" + (m_dir / "system.conf")}, {},
                m_dir / "system-bus.log");
    const std::string address = "unix:path=" + socket;
    const std::string dest = "org.ferry.VpnForwarder1", path = "/org/ferry/VpnForwarder1", iface = dest;
    auto busctl = [&](bool asRoot, std::vector<std::string> args) {
        std::vector<std::string> argv;
        if (!asRoot)
            argv = {"/usr/bin/setpriv", "--reuid=65534", "--regid=65534", "--clear-groups"};
        argv.insert(argv.end(), {"/usr/bin/busctl", "--address=" + address});
        argv.insert(argv.end(), args.begin(), args.end());
        return ferry::test::run(argv, {}, {}, 10s);
    };
    ASSERT_TRUE(waitUntil([&] { return busctl(true, {"list"}).exitCode == 0; }, 10s))
        << ferry::test::readFile(m_dir / "system-bus.log");

    std::filesystem::create_directories(m_dir / "state");
    ASSERT_EQ(::chown((m_dir / "state").c_str(), ferryUser->pw_uid, ferryUser->pw_gid), 0);
    bringVpnUp();
    Process daemon({"/usr/sbin/ip", "netns", "exec", m_appliance->name(), "/usr/bin/setpriv", "--reuid=ferry",
                    "--regid=ferry", "--clear-groups", "--inh-caps=-all,+net_admin", "--ambient-caps=-all,+net_admin",
                    "--bounding-set=-all,+net_admin",
                    ferry::test::buildPathForAnyUser("services/vpn-forwarderd/ferry-vpn-forwarderd")},
                   {{"DBUS_SYSTEM_BUS_ADDRESS", address},
                    {"FERRY_CONFIG_DIR", m_dir / "etc"},
                    {"FERRY_STATE_DIR", m_dir / "state"}},
                   m_dir / "daemon.log");
    ASSERT_TRUE(waitUntil([&] { return busctl(true, {"get-property", dest, path, iface, "Forwarding"}).out == "b true\n"; },
                          10s))
        << ferry::test::readFile(m_dir / "daemon.log") << ferry::test::readFile(m_dir / "system-bus.log");

    // Anyone may read.
    const auto read = busctl(false, {"get-property", dest, path, iface, "LanAccess"});
    EXPECT_EQ(read.out, "b false\n") << read.err;
    EXPECT_EQ(busctl(false, {"introspect", dest, path}).exitCode, 0);
    // Only root may change.
    const auto denied = busctl(false, {"call", dest, path, iface, "SetLanAccess", "b", "true"});
    EXPECT_NE(denied.exitCode, 0);
    EXPECT_NE(denied.err.find("Access denied"), std::string::npos) << denied.err;
    EXPECT_NE(busctl(false, {"call", dest, path, iface, "SetHostControl", "b", "true"}).exitCode, 0);
    EXPECT_NE(busctl(false, {"call", dest, path, iface, "Reapply"}).exitCode, 0);
    EXPECT_NE(busctl(false, {"set-property", dest, "/org/freedesktop/LogControl1", "org.freedesktop.LogControl1",
                             "LogLevel", "s", "debug"})
                  .exitCode,
              0);
    EXPECT_EQ(connectFrom(m_lan->name(), kLanAddress, 2005), "refused");
    const auto allowed = busctl(true, {"call", dest, path, iface, "SetLanAccess", "b", "true"});
    EXPECT_EQ(allowed.exitCode, 0) << allowed.err;
    EXPECT_EQ(busctl(false, {"get-property", dest, path, iface, "LanAccess"}).out, "b true\n");
    EXPECT_TRUE(reaches(*m_lan, kLanAddress, 2005, "container:2005"));
}

} // namespace
