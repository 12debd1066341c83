// The tracers on captured text: iptables-save and nft JSON lowered into
// chains and walked for one packet, plus a whole check through a reader
// whose edges return fixed text (the real edges are covered in the netns
// tests).

#include <gtest/gtest.h>

#include <pthread.h>

#include "Checker.h"
#include "Firewall.h"
#include "IptablesRuleset.h"
#include "PullConfinement.h"
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
    s.chains = std::make_shared<ChainMap>();
    Packet p = packetFrom("192.0.2.7");
    p.destinationPort = 2222;
    s.tool = Tool::Ufw;
    EXPECT_EQ(fixCommands(s, "INPUT", "policy drop of chain INPUT", p),
              "ufw prepend allow from 192.0.2.7 to any port 2222 proto tcp");
    // What ufw's own before-chains decide, a user rule cannot outrank.
    EXPECT_NE(fixCommands(s, "ufw-before-input", "", p).find("/etc/ufw/before.rules"), std::string::npos);
    p.destinationPort = 22;
    s.tool = Tool::Iptables;
    EXPECT_NE(fixCommands(s, "INPUT", "", p).find("iptables-legacy -I INPUT -p tcp -s 192.0.2.7 --dport 22 -j ACCEPT"),
              std::string::npos);
    s.tool = Tool::Firewalld;
    EXPECT_NE(fixCommands(s, "INPUT", "", p).find("firewall-cmd --permanent --add-rich-rule='rule priority=\"-32768\""),
              std::string::npos);
    // fail2ban's chain: unban, whatever tool manages the rest.
    s.tool = Tool::Ufw;
    EXPECT_EQ(fixCommands(s, "f2b-sshd", "", p).substr(0, 32), "fail2ban-client unban 192.0.2.7\n");
    s.backend = "nft";
    s.table = "inet filter";
    s.chain = "input";
    s.tool = Tool::Nft;
    EXPECT_EQ(fixCommands(s, "input", "", p).substr(0, 63), "nft insert rule inet filter input ip saddr 192.0.2.7 tcp dport ");
}

// ufw's stock rules as `ufw enable` + `ufw limit 22/tcp` write them
// (iptables-save of /etc/ufw/before6.rules and user6.rules, shortened).
std::string ufwLimit6(const std::string& userRules)
{
    return filter("DROP",
                  "-A INPUT -j ufw6-before-input\n"
                  "-A ufw6-before-input -i lo -j ACCEPT\n"
                  "-A ufw6-before-input -m rt --rt-type 0 -j DROP\n"
                  "-A ufw6-before-input -m conntrack --ctstate RELATED,ESTABLISHED -j ACCEPT\n"
                  "-A ufw6-before-input -m conntrack --ctstate INVALID -j DROP\n"
                  "-A ufw6-before-input -p ipv6-icmp -m icmp6 --icmpv6-type 135 -m hl --hl-eq 255 -j ACCEPT\n"
                  "-A ufw6-before-input -p ipv6-icmp -m icmp6 --icmpv6-type 136 -m hl --hl-eq 255 -j ACCEPT\n"
                  "-A ufw6-before-input -j ufw6-user-input\n" +
                      userRules +
                      "-A ufw6-user-input -p tcp -m tcp --dport 22 -m conntrack --ctstate NEW -m recent --set --name DEFAULT "
                      "--mask ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff --rsource\n"
                      "-A ufw6-user-input -p tcp -m tcp --dport 22 -m conntrack --ctstate NEW -m recent --update --seconds 30 "
                      "--hitcount 6 --name DEFAULT --mask ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff --rsource -j ufw6-user-limit\n"
                      "-A ufw6-user-input -p tcp -m tcp --dport 22 -j ufw6-user-limit-accept\n"
                      "-A ufw6-user-limit -m limit --limit 3/min -j LOG --log-prefix \"[UFW LIMIT BLOCK] \"\n"
                      "-A ufw6-user-limit -j REJECT --reject-with icmp6-port-unreachable\n"
                      "-A ufw6-user-limit-accept -j ACCEPT\n",
                  ":ufw6-before-input - [0:0]\n:ufw6-user-input - [0:0]\n:ufw6-user-limit - [0:0]\n"
                  ":ufw6-user-limit-accept - [0:0]\n");
}

TEST(AUfwLayout, LetsOnePullThroughItsLimitRuleAndIgnoresTheRoutingHeaderRule)
{
    Firewall fw;
    fw.addIptables("iptables-nft", Family::V6, ufwLimit6(""));
    const auto syn = fw.verdict(packetFrom("2001:db8::7", "2001:db8::1"));
    EXPECT_EQ(syn.decision, Decision::Accept) << (syn.reasons.empty() ? syn.rule : syn.reasons[0]) << "\n"
                                              << fw.findings().size()
                                              << (fw.findings().empty() ? "" : fw.findings()[0].message);
    EXPECT_NE(syn.rule.find("ufw6-user-limit-accept -j ACCEPT"), std::string::npos) << syn.rule;
    Packet nd = packetFrom("2001:db8::7", "2001:db8::1");
    nd.protocol = Packet::Protocol::Icmpv6;
    nd.icmpType = 135;
    EXPECT_EQ(fw.verdict(nd).decision, Decision::Accept);
}

TEST(AUfwLayout, StaysUndecidedForARecentListWithoutABurstLimit)
{
    Firewall fw;
    fw.addIptables("iptables-nft", Family::V6,
                   ufwLimit6("-A ufw6-user-input -m recent --rcheck --name blocked -j DROP\n"));
    const auto v = fw.verdict(packetFrom("2001:db8::7", "2001:db8::1"));
    ASSERT_EQ(v.decision, Decision::Undecided);
    EXPECT_EQ(v.chain, "ufw6-user-input");
    EXPECT_EQ(fixCommands(*v.stage, v.chain, "", packetFrom("2001:db8::7", "2001:db8::1")),
              "ufw prepend allow from 2001:db8::7 to any port 22 proto tcp");
}

TEST(AFirewalldFix, NamesTheZoneTheMasterLandsIn)
{
    Firewall fw;
    fw.addIptables("iptables-legacy", Family::V4,
                   filter("ACCEPT",
                          "-A INPUT -j INPUT_ZONES\n-A INPUT -j REJECT --reject-with icmp-host-prohibited\n"
                          "-A INPUT_ZONES -s 192.0.2.0/24 -g IN_internal\n-A INPUT_ZONES -g IN_public\n"
                          "-A IN_internal -j IN_internal_allow\n-A IN_public -j IN_public_allow\n",
                          ":INPUT_ZONES - [0:0]\n:IN_internal - [0:0]\n:IN_internal_allow - [0:0]\n:IN_public - [0:0]\n"
                          ":IN_public_allow - [0:0]\n"));
    const auto p = packetFrom("192.0.2.7");
    const auto v = fw.verdict(p);
    ASSERT_EQ(v.decision, Decision::Reject);
    const auto fix = fixCommands(*v.stage, v.chain, v.rule, p);
    EXPECT_NE(fix.find("firewall-cmd --permanent --zone=internal --add-rich-rule='rule priority=\"-32768\" "
                       "family=\"ipv4\" source address=\"192.0.2.7\" port port=\"22\" protocol=\"tcp\" accept'"),
              std::string::npos)
        << fix;
}

TEST(AFail2banBan, IsUndoneByUnbanningNotByAnotherRule)
{
    Firewall fw;
    fw.addNft(R"({"nftables": [{"table": {"family": "inet", "name": "f2b-table"}},
      {"set": {"family": "inet", "table": "f2b-table", "name": "addr-set-sshd", "type": "ipv4_addr", "elem": ["192.0.2.7"]}},
      {"chain": {"family": "inet", "table": "f2b-table", "name": "f2b-chain", "type": "filter", "hook": "input", "prio": -1, "policy": "accept"}},
      {"rule": {"family": "inet", "table": "f2b-table", "chain": "f2b-chain", "handle": 4, "expr": [
        {"match": {"op": "==", "left": {"meta": {"key": "l4proto"}}, "right": {"set": ["tcp"]}}},
        {"match": {"op": "==", "left": {"payload": {"protocol": "th", "field": "dport"}}, "right": {"set": [22]}}},
        {"match": {"op": "==", "left": {"payload": {"protocol": "ip", "field": "saddr"}}, "right": "@addr-set-sshd"}},
        {"reject": null}]}}]})");
    EXPECT_EQ(fw.verdict(packetFrom("192.0.2.8")).decision, Decision::Accept);
    const auto p = packetFrom("192.0.2.7");
    const auto v = fw.verdict(p);
    ASSERT_EQ(v.decision, Decision::Reject);
    const auto fix = fixCommands(*v.stage, v.chain, v.rule, p);
    EXPECT_EQ(fix.substr(0, 32), "fail2ban-client unban 192.0.2.7\n") << fix;
    EXPECT_NE(fix.find("jail sshd"), std::string::npos) << fix;
}

TEST(TheTracer, WalksTenThousandUnevaluableRulesWithoutDeepRecursion)
{
    // Every rule is unknown and the branches disagree: one verdict, a
    // bounded list of reasons, and a stack that does not grow with the rule
    // count (the recursive walker nested frames per unknown rule).
    std::string rules;
    for (int i = 0; i < 10000; ++i)
        rules += "-A INPUT -m hashlimit --hashlimit-above " + std::to_string(i + 1) + "/sec -j DROP\n";
    Firewall fw;
    fw.addIptables("iptables-legacy", Family::V4, filter("ACCEPT", rules));
    ASSERT_EQ(fw.ruleCount(), 10000u);
    // Run on a thread with a small stack: a walk that recursed per rule would overflow it.
    FirewallVerdict v;
    pthread_attr_t attr;
    pthread_attr_init(&attr);
    pthread_attr_setstacksize(&attr, 256 * 1024);
    struct Job {
        Firewall* fw;
        FirewallVerdict* v;
    } job{&fw, &v};
    pthread_t t;
    ASSERT_EQ(pthread_create(&t, &attr, [](void* arg) -> void* {
        auto* j = static_cast<Job*>(arg);
        *j->v = j->fw->verdict(packetFrom("192.0.2.10"));
        return nullptr;
    }, &job), 0);
    pthread_join(t, nullptr);
    pthread_attr_destroy(&attr);
    EXPECT_EQ(v.decision, Decision::Undecided);
    // The first 20 rules by name, the rest counted.
    ASSERT_EQ(v.reasons.size(), 21u);
    EXPECT_NE(v.reasons[0].find("--hashlimit-above 1/sec"), std::string::npos) << v.reasons[0];
    EXPECT_EQ(v.reasons[20], "… and 9980 more rules that cannot be evaluated");
}

TEST(TheTracer, SaysTooDeepForJumpsNestedPastTheKernelLimit)
{
    std::string chains, rules = "-A INPUT -j c0\n";
    for (int i = 0; i < 70; ++i) {
        chains += ":c" + std::to_string(i) + " - [0:0]\n";
        rules += "-A c" + std::to_string(i) + " -j c" + std::to_string(i + 1) + "\n";
    }
    chains += ":c70 - [0:0]\n";
    rules += "-A c70 -j DROP\n";
    const auto v = legacyVerdict(filter("ACCEPT", rules, chains), "192.0.2.10");
    EXPECT_EQ(v.decision, Decision::Undecided);
    ASSERT_FALSE(v.reasons.empty());
    EXPECT_NE(v.reasons[0].find("undecided: too deep"), std::string::npos) << v.reasons[0];
}

TEST(APullKeyLine, IsReportedWithoutRestrictUnlessSshdConfinesTheUser)
{
    PullLogin login;
    login.account = Account{"ferry", "/usr/sbin/ferry-login", {"ferry"}, "/var/lib/ferry"};
    const std::string keys = "# master pull key\n"
                             "ssh-ed25519 AAAAC3Nza1 master-plain\n"
                             "restrict ssh-ed25519 AAAAC3Nza2 master-restricted\n"
                             "restrict,pty ssh-ed25519 AAAAC3Nza3 master-pty-again\n"
                             "no-pty,no-port-forwarding,no-agent-forwarding,no-X11-forwarding,no-user-rc ssh-ed25519 AAAAC3Nza4 m\n"
                             "command=\"/bin/echo a, b\",no-pty ssh-ed25519 AAAAC3Nza5 master-forced\n";
    auto findings = checkAuthorizedKeys("/var/lib/ferry/.ssh/authorized_keys", keys, login, false);
    ASSERT_EQ(findings.size(), 3u);
    EXPECT_EQ(findings[0].id, "sshd.pull-key-not-confined");
    EXPECT_NE(findings[0].message.find("authorized_keys:2:"), std::string::npos) << findings[0].message;
    EXPECT_NE(findings[0].fix.find("\nrestrict\n"), std::string::npos) << findings[0].fix;
    EXPECT_NE(findings[1].message.find("authorized_keys:4:"), std::string::npos) << findings[1].message;
    EXPECT_NE(findings[2].message.find("authorized_keys:6:"), std::string::npos) << findings[2].message;
    EXPECT_NE(findings[2].fix.find("restrict,command=\"/bin/echo a, b\",no-pty"), std::string::npos) << findings[2].fix;
    // A login shell that is not the pull shell also needs a forced command.
    login.account->shell = "/bin/bash";
    findings = checkAuthorizedKeys("k", "restrict ssh-ed25519 AAAAC3Nza2 m\n", login, false);
    ASSERT_EQ(findings.size(), 1u);
    EXPECT_NE(findings[0].message.find("a forced command"), std::string::npos) << findings[0].message;
    EXPECT_NE(findings[0].fix.find("restrict,command=\"/usr/sbin/ferry-login\""), std::string::npos) << findings[0].fix;
    // sshd confining the user covers every line.
    EXPECT_TRUE(checkAuthorizedKeys("k", keys, login, true).empty());
}

TEST(AuthorizedKeysFiles, FollowSshdsTokensAndTheHomeDirectory)
{
    const Account a{"ferry", "/usr/sbin/ferry-login", {"ferry"}, "/var/lib/ferry"};
    const auto files = authorizedKeysFiles({{"authorizedkeysfile", {".ssh/authorized_keys /etc/ssh/keys/%u %h/k2"}}}, a);
    EXPECT_EQ(files, (std::vector<std::string>{"/var/lib/ferry/.ssh/authorized_keys", "/etc/ssh/keys/ferry",
                                               "/var/lib/ferry/k2"}));
}

// sshd -T lines of a pull user confined by a Match block.
constexpr const char* kConfined =
    "disableforwarding yes\npermittty no\npermituserrc no\nauthenticationmethods publickey\n";

// A reader whose edges return fixed text: the Checker's logic on its own.
class TextReader : public SystemReader {
public:
    std::map<std::string, CommandOutput> saves;
    CommandOutput nft;
    CommandOutput sshd{true, 0, std::string("listenaddress 0.0.0.0:22\nallowusers alice\n") + kConfined, ""};
    std::optional<Account> user = Account{"ferry", "/usr/sbin/ferry-login", {"ferry"}, "/var/lib/ferry"};
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
    r.sshd.out = std::string("listenaddress 0.0.0.0:22\n") + kConfined;
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
    r.sshd.out = std::string("listenaddress 0.0.0.0:22\nlistenaddress [::]:22\n") + kConfined;
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
    r.sshd.out = std::string("listenaddress 0.0.0.0:22\n") + kConfined;
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
    r.sshd.out = std::string("listenaddress 0.0.0.0:22\n") + kConfined;
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
    r.sshd.out = std::string("listenaddress 0.0.0.0:22\n") + kConfined;
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
