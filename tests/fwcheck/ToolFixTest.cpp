// The fixes fwcheck prints for ufw, firewalld and fail2ban hosts, applied
// the way each tool applies them, must turn the verdict to reachable — in
// fwcheck and in the kernel (a real connection from the master's namespace).
//
// ufw is the real one from Debian, run inside the node's network namespace
// with a private copy of its stock files bind-mounted over /etc/ufw (it
// needs no systemd). firewalld (a D-Bus daemon) and fail2ban (a daemon
// watching logs) are not run: their stock rule layouts are loaded as those
// tools write them (firewalld 1.3's nftables zones; fail2ban 1.0's
// iptables-multiport and nftables actions), and their fixes are applied as
// the rules the tool writes for them.

#include <gtest/gtest.h>

#include <cstdio>
#include <filesystem>
#include <memory>
#include <regex>
#include <sstream>

#include "Checker.h"
#include "HostReader.h"
#include "NetnsLab.h"
#include "support/TestSupport.h"

namespace {

using fwtest::MasterNs;
using fwtest::NetnsLab;
using ferry::test::run;

class AToolFix : public ::testing::Test {
protected:
    static void SetUpTestSuite() { s_lab.build(); }
    static void TearDownTestSuite() { s_lab.remove(); }

    void SetUp() override
    {
        if (const auto why = s_lab.unusable(); !why.empty())
            GTEST_SKIP() << why;
        s_lab->resetFirewall();
    }

    fwcheck::Report check() const
    {
        fwcheck::HostReaderOptions opts;
        opts.commandPrefix = s_lab->nodePrefix();
        opts.netns = s_lab->node();
        fwcheck::HostReader reader(opts);
        fwcheck::CheckSettings settings;
        for (const auto& m : s_lab->masters())
            settings.masters.push_back({m.address, 22, 50010});
        settings.checkSshd = false;
        settings.checkHostsAccess = false;
        return fwcheck::Checker(reader, settings).run();
    }

    static const fwcheck::Finding* blockedFinding(const fwcheck::Report& r, const std::string& master)
    {
        for (const auto& f : r.findings)
            if ((f.id == "firewall.blocked" || f.id == "firewall.undecided") &&
                f.message.find(" " + master + " ") != std::string::npos)
                return &f;
        return nullptr;
    }

    // Every master's verdict agrees with the kernel; returns them by address.
    std::map<std::string, std::string> verdicts(const fwcheck::Report& r) const
    {
        std::map<std::string, std::string> out;
        for (std::size_t i = 0; i < s_lab->masters().size(); ++i) {
            const auto& m = s_lab->masters()[i];
            const std::string kernel = NetnsLab::connect(m, 22);
            std::printf("    %-14s fwcheck %-9s kernel %-7s %s\n", m.address.c_str(), r.masters[i].firewall.c_str(),
                        kernel.c_str(), r.masters[i].decidedBy.substr(0, 100).c_str());
            EXPECT_EQ(r.masters[i].firewall, kernel) << m.address << ": " << r.masters[i].decidedBy;
            out[m.address] = r.masters[i].firewall;
        }
        return out;
    }

    static fwtest::SuiteLab s_lab;
};

fwtest::SuiteLab AToolFix::s_lab;

// ufw in the node namespace with its stock files (as the package installs
// them) in a private /etc/ufw.
class Ufw {
public:
    explicit Ufw(const NetnsLab& lab) : m_lab(lab)
    {
        namespace fs = std::filesystem;
        for (const char* f : {"after.init", "after.rules", "after6.rules", "before.init", "before.rules", "before6.rules",
                              "ufw.conf", "user.rules", "user6.rules"})
            fs::copy_file(fs::path("/usr/share/ufw") / f, fs::path(m_etc.path()) / f);
        fs::copy_file("/etc/ufw/sysctl.conf", fs::path(m_etc.path()) / "sysctl.conf");
        fs::create_directory(fs::path(m_etc.path()) / "applications.d");
    }

    // `ufw args…` as typed (the words of a command line).
    std::string operator()(const std::string& commandLine) const
    {
        // ip netns exec gives the command its own mount namespace, so the
        // bind mount is seen by this ufw only.
        return m_lab.inNode({"sh", "-c", "mount --bind '" + m_etc.path() + "' /etc/ufw && exec " + commandLine});
    }

private:
    const NetnsLab& m_lab;
    ferry::test::TempDir m_etc;
};

// Runs each line of a fix, which must all be ufw commands.
void ufwLines(const Ufw& ufw, const std::string& fix)
{
    std::istringstream lines(fix);
    for (std::string line; std::getline(lines, line);) {
        ASSERT_EQ(line.rfind("ufw ", 0), 0u) << "not a ufw command: " << line;
        ufw(line);
    }
}

bool ufwInstalled()
{
    return std::filesystem::exists("/usr/sbin/ufw") && std::filesystem::exists("/usr/share/ufw/before.rules");
}

TEST_F(AToolFix, UfwLimitRuleLetsAPullThroughOverIPv4AndIPv6)
{
    if (!ufwInstalled())
        GTEST_SKIP() << "ufw is not installed (scripts/install-deps installs it)";
    Ufw ufw(*s_lab);
    ufw("ufw --force enable");
    ufw("ufw limit 22/tcp");
    // ufw 0.36.2 adds the IPv6 limit rules live without the ACCEPT and
    // REJECT of its ufw6-user-limit chains (seen here with iptables-nft):
    // until a reload, IPv6 masters are dropped, and fwcheck must say so.
    auto v = verdicts(check());
    EXPECT_EQ(v.at("198.51.100.2"), "accept");
    EXPECT_EQ(v.at("198.51.100.130"), "accept");
    ufw("ufw reload");
    s_lab->flushNeighbours();
    v = verdicts(check());
    for (const auto& m : s_lab->masters())
        EXPECT_EQ(v.at(m.address), "accept") << m.address;
}

TEST_F(AToolFix, UfwPrependMakesEveryBlockedMasterReachable)
{
    if (!ufwInstalled())
        GTEST_SKIP() << "ufw is not installed (scripts/install-deps installs it)";
    Ufw ufw(*s_lab);
    // Default deny, a limit rule for everyone and one master denied ahead of
    // it: `ufw allow` would land behind both.
    ufw("ufw --force enable");
    ufw("ufw deny from 198.51.100.130 to any port 22 proto tcp");
    ufw("ufw deny from 2001:db8:1::2 to any port 22 proto tcp");
    ufw("ufw limit 22/tcp");
    auto report = check();
    auto v = verdicts(report);
    EXPECT_EQ(v.at("198.51.100.2"), "accept");
    for (const std::string m : {"198.51.100.130", "2001:db8:1::2"}) {
        ASSERT_EQ(v.at(m), "drop") << m;
        const auto* f = blockedFinding(report, m);
        ASSERT_NE(f, nullptr) << m;
        // The deny for exactly this master goes, then the allow goes first.
        EXPECT_EQ(f->fix, "ufw delete deny from " + m + " to any port 22 proto tcp\nufw prepend allow from " + m +
                              " to any port 22 proto tcp");
        std::printf("    %-14s fix: %s\n", m.c_str(), f->fix.c_str());
        ufwLines(ufw, f->fix);
    }
    s_lab->flushNeighbours();
    v = verdicts(check());
    for (const auto& m : s_lab->masters())
        EXPECT_EQ(v.at(m.address), "accept") << m.address << " after ufw's own fix";
}

TEST_F(AToolFix, UfwWithoutAnSshRuleIsFixedByPrependForBothFamilies)
{
    if (!ufwInstalled())
        GTEST_SKIP() << "ufw is not installed (scripts/install-deps installs it)";
    Ufw ufw(*s_lab);
    ufw("ufw --force enable");
    auto report = check();
    auto v = verdicts(report);
    for (const auto& m : s_lab->masters()) {
        ASSERT_EQ(v.at(m.address), "drop") << m.address;
        const auto* f = blockedFinding(report, m.address);
        ASSERT_NE(f, nullptr) << m.address;
        EXPECT_EQ(f->fix, "ufw prepend allow from " + m.address + " to any port 22 proto tcp");
        ufwLines(ufw, f->fix);
    }
    s_lab->flushNeighbours();
    v = verdicts(check());
    for (const auto& m : s_lab->masters())
        EXPECT_EQ(v.at(m.address), "accept") << m.address << " after ufw's own fix";
}

// firewalld 1.3's nftables layout (public zone, ssh service removed;
// 198.51.100.2 bound to the trusted zone by source).
const char* kFirewalld = R"(table inet firewalld {
  chain filter_INPUT {
    type filter hook input priority filter + 10; policy accept;
    ct state { established, related } accept
    ct status dnat accept
    iifname "lo" accept
    jump filter_INPUT_ZONES
    ct state invalid drop
    reject with icmpx admin-prohibited
  }
  chain filter_INPUT_ZONES {
    ip saddr 198.51.100.2 goto filter_IN_trusted
    iifname "fwn1" goto filter_IN_public
    iifname "fwn2" goto filter_IN_public
    goto filter_IN_public
  }
  chain filter_IN_trusted {
    accept
  }
  chain filter_IN_public {
    jump filter_IN_public_pre
    jump filter_IN_public_log
    jump filter_IN_public_deny
    jump filter_IN_public_allow
    jump filter_IN_public_post
    meta l4proto { icmp, ipv6-icmp } accept
  }
  chain filter_IN_public_pre {
  }
  chain filter_IN_public_log {
  }
  chain filter_IN_public_deny {
  }
  chain filter_IN_public_allow {
    ip6 daddr fe80::/64 udp dport 546 ct state { new, untracked } accept
  }
  chain filter_IN_public_post {
  }
}
)";

TEST_F(AToolFix, FirewallCmdRichRuleMakesTheMasterReachable)
{
    s_lab->inNode({"nft", "-f", "-"}, kFirewalld);
    auto report = check();
    auto v = verdicts(report);
    EXPECT_EQ(v.at("198.51.100.2"), "accept");
    const std::regex richRule(R"re(^firewall-cmd --permanent --zone=(\w+) --add-rich-rule='rule priority="-32768" family="(ipv4|ipv6)" source address="([0-9a-f:.]+)" port port="(\d+)" protocol="tcp" accept'\nfirewall-cmd --reload$)re");
    for (const std::string m : {"198.51.100.130", "2001:db8:1::2"}) {
        ASSERT_EQ(v.at(m), "reject") << m;
        const auto* f = blockedFinding(report, m);
        ASSERT_NE(f, nullptr) << m;
        std::smatch parts;
        ASSERT_TRUE(std::regex_match(f->fix, parts, richRule)) << f->fix;
        EXPECT_EQ(parts[1], "public");
        EXPECT_EQ(parts[3], m);
        // What firewalld writes for a rich rule of negative priority: a rule
        // in the zone's _pre chain, ahead of its deny and allow chains.
        const std::string ip = parts[2] == "ipv4" ? "ip" : "ip6";
        s_lab->inNode({"nft", "insert", "rule", "inet", "firewalld", "filter_IN_" + parts[1].str() + "_pre", ip, "saddr", m,
                       "tcp", "dport", parts[4].str(), "ct", "state", "{", "new,", "untracked", "}", "accept"});
    }
    s_lab->flushNeighbours();
    v = verdicts(check());
    for (const auto& m : s_lab->masters())
        EXPECT_EQ(v.at(m.address), "accept") << m.address << " after the rich rule";
}

TEST_F(AToolFix, Fail2banUnbanMakesABannedMasterReachableWithEitherAction)
{
    // fail2ban's iptables-multiport action: its chain, then a ban.
    s_lab->inNode({"sh", "-c",
                   "iptables -N f2b-sshd && iptables -A f2b-sshd -j RETURN && "
                   "iptables -I INPUT -p tcp -m multiport --dports 22 -j f2b-sshd && "
                   "iptables -I f2b-sshd 1 -s 198.51.100.130 -j REJECT --reject-with icmp-port-unreachable"});
    // Its nftables action for IPv6 (fail2ban 1.0's nftables.conf layout).
    s_lab->inNode({"nft", "-f", "-"},
                  "table inet f2b-table {\n"
                  "  set addr6-set-sshd { type ipv6_addr; elements = { 2001:db8:1::2 } }\n"
                  "  chain f2b-chain { type filter hook input priority filter - 1; policy accept;\n"
                  "    meta l4proto { tcp } th dport { 22 } ip6 saddr @addr6-set-sshd reject\n  }\n}\n");
    auto report = check();
    auto v = verdicts(report);
    EXPECT_EQ(v.at("198.51.100.2"), "accept");
    for (const std::string m : {"198.51.100.130", "2001:db8:1::2"}) {
        ASSERT_EQ(v.at(m), "reject") << m;
        const auto* f = blockedFinding(report, m);
        ASSERT_NE(f, nullptr) << m;
        EXPECT_EQ(f->fix.substr(0, f->fix.find('\n')), "fail2ban-client unban " + m) << f->fix;
        EXPECT_NE(f->fix.find("jail sshd"), std::string::npos) << f->fix;
    }
    // What fail2ban's unban runs for each action.
    s_lab->inNode({"iptables", "-D", "f2b-sshd", "-s", "198.51.100.130", "-j", "REJECT", "--reject-with",
                   "icmp-port-unreachable"});
    s_lab->inNode({"nft", "delete", "element", "inet", "f2b-table", "addr6-set-sshd", "{", "2001:db8:1::2", "}"});
    s_lab->flushNeighbours();
    v = verdicts(check());
    for (const auto& m : s_lab->masters())
        EXPECT_EQ(v.at(m.address), "accept") << m.address << " after unbanning";
}

} // namespace
