// The tracers on captured text: iptables-save and nft JSON lowered into
// chains and walked for one packet, plus a whole check through a reader
// whose edges return fixed text (the real edges are covered in the netns
// tests).

#include <gtest/gtest.h>

#include "Checker.h"
#include "Firewall.h"
#include "IptablesRuleset.h"
#include "SystemReader.h"
#include "ferry/Error.h"

namespace {

using namespace fwcheck;

Packet packetFrom(const std::string& src, const std::string& dst = "192.0.2.1", const std::string& iface = "eth0")
{
    return {*Address::parse(src), *Address::parse(dst), iface, 22};
}

FirewallVerdict legacyVerdict(const std::string& text, const std::string& src)
{
    Firewall fw;
    fw.addIptables("iptables-legacy", Address::parse(src)->family(), text);
    return fw.verdict(packetFrom(src, Address::parse(src)->isV4() ? "192.0.2.1" : "2001:db8::1"));
}

std::string filter(const std::string& policy, const std::string& rules, const std::string& chains = {})
{
    return "*filter\n:INPUT " + policy + " [0:0]\n:FORWARD ACCEPT [0:0]\n:OUTPUT ACCEPT [0:0]\n" + chains + rules + "COMMIT\n";
}

TEST(AnIptablesTrace, FallsToThePolicyWhenNoRuleMatches)
{
    const auto v = legacyVerdict(filter("DROP", "-A INPUT -s 198.51.100.0/24 -j ACCEPT\n"), "192.0.2.10");
    EXPECT_EQ(v.decision, Decision::Drop);
    EXPECT_EQ(v.rule, "policy drop of chain INPUT");
}

TEST(AnIptablesTrace, NamesTheRuleThatRejects)
{
    const auto v = legacyVerdict(filter("ACCEPT", "-A INPUT -p tcp -m tcp --dport 22 -j REJECT\n"), "192.0.2.10");
    EXPECT_EQ(v.decision, Decision::Reject);
    EXPECT_NE(v.rule.find("--dport 22 -j REJECT"), std::string::npos) << v.rule;
}

TEST(AnIptablesTrace, ReturnsFromAGotoToTheCallerOfTheChainThatWent)
{
    const auto text = filter("ACCEPT", "-A INPUT -g g\n-A INPUT -j DROP\n", ":g - [0:0]\n");
    EXPECT_EQ(legacyVerdict(text, "192.0.2.10").decision, Decision::Accept);
    const auto jump = filter("ACCEPT", "-A INPUT -j g\n-A INPUT -j DROP\n", ":g - [0:0]\n");
    EXPECT_EQ(legacyVerdict(jump, "192.0.2.10").decision, Decision::Drop);
}

TEST(AnIptablesTrace, IsUndecidedAndNamesTheRuleForAnUnknownMatchThatMatters)
{
    const auto v = legacyVerdict(filter("ACCEPT", "-A INPUT -m hashlimit --hashlimit-above 5/sec -j DROP\n"), "192.0.2.10");
    EXPECT_EQ(v.decision, Decision::Undecided);
    ASSERT_EQ(v.reasons.size(), 1u);
    EXPECT_NE(v.reasons[0].find("hashlimit"), std::string::npos) << v.reasons[0];
}

TEST(AnIptablesTrace, StaysDecidedWhenBothBranchesOfAnUnknownMatchAgree)
{
    const auto v = legacyVerdict(filter("DROP", "-A INPUT -m limit --limit 1/s -j DROP\n"), "192.0.2.10");
    EXPECT_EQ(v.decision, Decision::Drop);
}

TEST(AnIptablesTrace, KeepsFamiliesApart)
{
    Firewall fw;
    fw.addIptables("iptables-legacy", Family::V4, filter("DROP", ""));
    EXPECT_EQ(fw.verdict(packetFrom("2001:db8::5", "2001:db8::1")).decision, Decision::Accept);
    EXPECT_EQ(fw.verdict(packetFrom("192.0.2.5")).decision, Decision::Drop);
}

TEST(AnIptablesTrace, TreatsGarbageAsUndecidedAndReportsTheLine)
{
    Firewall fw;
    fw.addIptables("iptables-legacy", Family::V4,
                   filter("ACCEPT", "-A INPUT -s not-an-address -j DROP\n-A INPUT --frobnicate -j DROP\n") +
                       "this is not iptables-save output\n*filter\n:INPUT ACCEPT");
    const auto v = fw.verdict(packetFrom("192.0.2.10"));
    EXPECT_EQ(v.decision, Decision::Undecided);
    ASSERT_GE(fw.findings().size(), 3u);
    EXPECT_NE(fw.findings()[0].message.find("line 5"), std::string::npos) << fw.findings()[0].message;
}

TEST(AnIptablesTrace, UnderstandsCountersAndQuotedComments)
{
    const auto text = "*filter\n:INPUT DROP [5:300]\n[3:180] -A INPUT -s 192.0.2.0/24 -p tcp -m comment --comment \"let the "
                      "masters in\" -m tcp --dport 22 -j ACCEPT\nCOMMIT\n";
    EXPECT_EQ(legacyVerdict(text, "192.0.2.10").decision, Decision::Accept);
}

TEST(AnNftTrace, ReportsJsonThatCannotBeParsed)
{
    Firewall fw;
    fw.addNft("{\"nftables\": [ {\"table\": ");
    ASSERT_EQ(fw.findings().size(), 1u);
    EXPECT_NE(fw.findings()[0].message.find("cannot be parsed"), std::string::npos);
}

TEST(AnNftTrace, IsUndecidedWhenARuleNamesAMissingSet)
{
    Firewall fw;
    fw.addNft(R"({"nftables": [{"table": {"family": "inet", "name": "t"}},
      {"chain": {"family": "inet", "table": "t", "name": "in", "type": "filter", "hook": "input", "prio": 0, "policy": "accept"}},
      {"rule": {"family": "inet", "table": "t", "chain": "in", "handle": 4, "expr": [
        {"match": {"op": "==", "left": {"payload": {"protocol": "ip", "field": "saddr"}}, "right": "@nosuchset"}}, {"drop": null}]}}]})");
    const auto v = fw.verdict(packetFrom("192.0.2.10"));
    EXPECT_EQ(v.decision, Decision::Undecided);
    ASSERT_FALSE(v.reasons.empty());
    EXPECT_NE(v.reasons[0].find("handle 4"), std::string::npos) << v.reasons[0];
}

TEST(AFix, FitsTheToolThatManagesTheRules)
{
    Stage s;
    s.backend = "iptables-legacy";
    s.table = "filter";
    s.chain = "INPUT";
    EXPECT_EQ(fixCommands(s, Tool::Ufw, "192.0.2.7", 2222), "ufw allow from 192.0.2.7 to any port 2222 proto tcp");
    EXPECT_NE(fixCommands(s, Tool::Iptables, "192.0.2.7", 22).find("iptables-legacy -I INPUT -p tcp -s 192.0.2.7 --dport 22 -j ACCEPT"),
              std::string::npos);
    EXPECT_NE(fixCommands(s, Tool::Firewalld, "192.0.2.7", 22).find("firewall-cmd --permanent --add-rich-rule"), std::string::npos);
    s.backend = "nft";
    s.table = "inet filter";
    s.chain = "input";
    EXPECT_EQ(fixCommands(s, Tool::Nft, "192.0.2.7", 22).substr(0, 63),
              "nft insert rule inet filter input ip saddr 192.0.2.7 tcp dport ");
}

// A reader whose edges return fixed text: the Checker's logic on its own.
class TextReader : public SystemReader {
public:
    std::map<std::string, CommandOutput> saves;
    CommandOutput nft;
    CommandOutput sshd{true, 0, "listenaddress 0.0.0.0:22\nallowusers alice\n", ""};
    std::optional<Account> user = Account{"ferry", "/usr/sbin/ferry-login", {"ferry"}};
    std::map<std::string, std::string> files;
    std::string unreadable;

    CommandOutput iptablesSave(const std::string& tool) override
    {
        auto it = saves.find(tool);
        return it == saves.end() ? CommandOutput{} : it->second;
    }
    CommandOutput nftRuleset() override { return nft; }
    CommandOutput sshdEffective(const std::string&, const std::string&, const std::string&) override { return sshd; }
    std::optional<std::string> readFile(const std::string& path) override
    {
        if (path == unreadable)
            throw ferry::Error("Failed to read " + path + ": Permission denied");
        auto it = files.find(path);
        if (it == files.end())
            return std::nullopt;
        return it->second;
    }
    std::optional<Account> account(const std::string&) override { return user; }
    Route route(const std::string&) override { return {"eth0", "192.0.2.1"}; }
    std::vector<std::string> resolve(const std::string& host) override { return {host}; }
    CommandOutput listeningSockets() override { return {true, 0, "LISTEN 0 128 0.0.0.0:22 0.0.0.0:*\n", ""}; }
};

TEST(ACheck, CombinesFirewallSshdAndHostsFindingsWithTheirFixes)
{
    TextReader r;
    r.saves["iptables-legacy-save"] = {true, 0, filter("DROP", ""), ""};
    r.files["/etc/hosts.deny"] = "sshd: 192.0.2.\n";
    CheckSettings s;
    s.masters = {{"192.0.2.50", 22, 50010}};
    const auto report = Checker(r, s).run();
    EXPECT_EQ(report.verdict, "blocked");
    std::set<std::string> ids;
    for (const auto& f : report.findings)
        ids.insert(f.id);
    EXPECT_TRUE(ids.count("firewall.blocked"));
    EXPECT_TRUE(ids.count("sshd.allow-users"));
    EXPECT_TRUE(ids.count("hosts.denied"));
    for (const auto& f : report.findings) {
        if (f.id == "hosts.denied") {
            EXPECT_NE(f.fix.find("sshd: 192.0.2.50"), std::string::npos);
        } else if (f.id == "sshd.allow-users") {
            EXPECT_NE(f.fix.find("AllowUsers alice ferry"), std::string::npos);
        }
    }
}

TEST(ACheck, SaysUndecidedWhenTheRulesCannotBeRead)
{
    TextReader r;
    r.saves["iptables-legacy-save"] = {true, 1, "", "iptables-legacy-save: Permission denied (you must be root)"};
    r.sshd.out = "listenaddress 0.0.0.0:22\n";
    CheckSettings s;
    s.masters = {{"192.0.2.50", 22, 50010}};
    const auto report = Checker(r, s).run();
    EXPECT_EQ(report.verdict, "undecided");
    ASSERT_FALSE(report.findings.empty());
    EXPECT_EQ(report.findings[0].id, "firewall.unreadable");
    EXPECT_NE(report.findings[0].message.find("Permission denied"), std::string::npos);
}

TEST(ACheck, IsReachableWhenNothingStandsInTheWay)
{
    TextReader r;
    r.sshd.out = "listenaddress 0.0.0.0:22\nlistenaddress [::]:22\n";
    r.nft = {true, 0, R"({"nftables": [{"metainfo": {"version": "1.0.6"}}]})", ""};
    CheckSettings s;
    s.masters = {{"192.0.2.50", 22, 50010}, {"192.0.2.51", 22, 50010}};
    const auto report = Checker(r, s).run();
    EXPECT_EQ(report.verdict, "reachable");
    EXPECT_TRUE(report.findings.empty()) << report.findings[0].message;
    ASSERT_EQ(report.masters.size(), 2u);
    EXPECT_EQ(report.masters[1].firewall, "accept");
}

TEST(ACheck, ReportsAnUnreadableHostsFileAsUndecided)
{
    TextReader r;
    r.sshd.out = "listenaddress 0.0.0.0:22\n";
    r.unreadable = "/etc/hosts.deny";
    r.nft = {true, 0, R"({"nftables": []})", ""};
    CheckSettings s;
    s.masters = {{"192.0.2.50", 22, 50010}};
    const auto report = Checker(r, s).run();
    EXPECT_EQ(report.verdict, "undecided");
    ASSERT_EQ(report.findings.size(), 1u) << report.findings[0].id << ": " << report.findings[0].message;
    EXPECT_EQ(report.findings[0].id, "hosts.unreadable");
    EXPECT_NE(report.findings[0].message.find("Permission denied"), std::string::npos);
}

TEST(ACheck, SaysUndecidedWithoutMasters)
{
    TextReader r;
    const auto report = Checker(r, CheckSettings{}).run();
    EXPECT_EQ(report.verdict, "undecided");
    ASSERT_FALSE(report.findings.empty());
    EXPECT_EQ(report.findings[0].id, "config.no-masters");
}

TEST(ACheck, SaysWhichMasterAddressItCannotCheck)
{
    TextReader r;
    r.nft = {true, 0, R"({"nftables": []})", ""};
    r.sshd.out = "listenaddress 0.0.0.0:22\n";
    CheckSettings s;
    s.masters = {{"fe80::1%eth0", 22, 50010}};
    const auto report = Checker(r, s).run();
    EXPECT_EQ(report.verdict, "undecided");
    ASSERT_EQ(report.findings.size(), 1u);
    EXPECT_EQ(report.findings[0].id, "master.unsupported-address");
    ASSERT_EQ(report.masters.size(), 1u);
    EXPECT_EQ(report.masters[0].verdict, "undecided");
}

TEST(ACheck, BlamesDockerWhenAContainerPublishesTheSshPort)
{
    TextReader r;
    r.saves["iptables-legacy-save"] = {true, 0,
                                       "*nat\n:PREROUTING ACCEPT [0:0]\n:INPUT ACCEPT [0:0]\n:OUTPUT ACCEPT [0:0]\n"
                                       ":POSTROUTING ACCEPT [0:0]\n:DOCKER - [0:0]\n"
                                       "-A PREROUTING -m addrtype --dst-type LOCAL -j DOCKER\n"
                                       "-A DOCKER -i docker0 -j RETURN\n"
                                       "-A DOCKER ! -i docker0 -p tcp -m tcp --dport 22 -j DNAT --to-destination 172.17.0.2:22\n"
                                       "COMMIT\n",
                                       ""};
    r.sshd.out = "listenaddress 0.0.0.0:22\n";
    CheckSettings s;
    s.masters = {{"192.0.2.50", 22, 50010}};
    const auto report = Checker(r, s).run();
    EXPECT_EQ(report.verdict, "undecided");
    ASSERT_FALSE(report.findings.empty());
    EXPECT_EQ(report.findings[0].id, "firewall.undecided");
    EXPECT_NE(report.findings[0].message.find("172.17.0.2:22 instead of sshd"), std::string::npos) << report.findings[0].message;
    EXPECT_NE(report.findings[0].fix.find("Docker's DOCKER chain"), std::string::npos) << report.findings[0].fix;
    EXPECT_NE(report.findings[0].fix.find("iptables-legacy -t nat -I PREROUTING -p tcp -s 192.0.2.50 --dport 22 -j ACCEPT"),
              std::string::npos)
        << report.findings[0].fix;
}

TEST(AReport, SurvivesAJsonRoundTripAndRefusesDamage)
{
    Report r;
    r.verdict = "blocked";
    r.lastCheck = 1234;
    r.findings = {{"a.b", "error", "msg", "fix"}};
    r.masters = {{"m", "192.0.2.1", "blocked", "drop", "policy"}};
    const auto back = reportFromJson(toJson(r));
    EXPECT_EQ(back.findings, r.findings);
    EXPECT_EQ(back.masters[0].decidedBy, "policy");
    EXPECT_THROW(reportFromJson(nlohmann::json{{"verdict", "maybe"}}), ferry::Error);
}

} // namespace
