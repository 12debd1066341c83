#include "Firewall.h"

#include <algorithm>
#include <set>
#include <sstream>

#include "IptablesRuleset.h"
#include "NftRuleset.h"

namespace fwcheck {

void Firewall::addIptables(const std::string& backend, Family family, const std::string& saveText)
{
    IptablesRuleset rs(backend, family, saveText);
    for (const auto& p : rs.problems())
        m_findings.push_back({"firewall.unreadable", severity::kWarning,
                              backend + (family == Family::V4 ? "" : " (IPv6)") + " rules: " + p, ""});
    m_rules += rs.ruleCount();
    for (auto& s : rs.stages())
        m_stages.push_back(std::move(s));
}

void Firewall::addNft(const std::string& jsonText, const std::set<std::string>& skipTables,
                      const std::map<std::string, std::vector<std::string>>& devices)
{
    NftRuleset rs(jsonText, skipTables, devices);
    for (const auto& p : rs.problems())
        m_findings.push_back({"firewall.unreadable", severity::kWarning, "nft rules: " + p, ""});
    m_rules += rs.ruleCount();
    for (auto family : {Family::V4, Family::V6})
        for (auto& s : rs.stages(family))
            m_stages.push_back(std::move(s));
}

namespace {
// Tables iptables-nft-save printed: those we read from its text instead of
// from nft's JSON, where their xt matches are opaque.
std::set<std::string> iptablesNftTables(const std::string& text, const std::string& family)
{
    std::set<std::string> out;
    std::istringstream in(text);
    std::string line;
    while (std::getline(in, line))
        if (!line.empty() && line[0] == '*')
            out.insert(family + " " + line.substr(1));
    return out;
}
} // namespace

Firewall Firewall::load(SystemReader& reader)
{
    Firewall fw;
    bool anyTool = false;
    std::set<std::string> skip;
    struct Source {
        const char* tool;
        const char* backend;
        Family family;
    };
    static const Source kSources[] = {
        {"iptables-legacy-save", "iptables-legacy", Family::V4},
        {"ip6tables-legacy-save", "iptables-legacy", Family::V6},
        {"iptables-nft-save", "iptables-nft", Family::V4},
        {"ip6tables-nft-save", "iptables-nft", Family::V6},
    };
    for (const auto& s : kSources) {
        const auto out = reader.iptablesSave(s.tool);
        if (!out.ran)
            continue;
        anyTool = true;
        if (out.exitCode != 0) {
            fw.m_findings.push_back({"firewall.unreadable", severity::kUndecided,
                                     std::string("Cannot read the rules with ") + s.tool + ": " + out.describe(),
                                     "Run the check as root or with CAP_NET_ADMIN (systemctl start ferry-fwcheckd)"});
            continue;
        }
        if (std::string(s.backend) == "iptables-nft")
            for (const auto& t : iptablesNftTables(out.out, s.family == Family::V4 ? "ip" : "ip6"))
                skip.insert(t);
        fw.addIptables(s.backend, s.family, out.out);
    }
    const auto nft = reader.nftRuleset();
    if (nft.ran) {
        anyTool = true;
        if (nft.exitCode != 0)
            fw.m_findings.push_back({"firewall.unreadable", severity::kUndecided,
                                     "Cannot read the nftables rules: " + nft.describe(),
                                     "Run the check as root or with CAP_NET_ADMIN (systemctl start ferry-fwcheckd)"});
        else if (!nft.out.empty()) {
            std::map<std::string, std::vector<std::string>> devices;
            if (nft.out.find("\"netdev\"") != std::string::npos) {
                const auto text = reader.nftRulesetText();
                if (text.ran && text.exitCode == 0)
                    devices = parseIngressDevices(text.out);
            }
            fw.addNft(nft.out, skip, devices);
        }
    }
    if (!anyTool)
        fw.m_findings.push_back({"firewall.no-tools", severity::kUndecided,
                                 "Neither iptables-save nor nft could be run, so the firewall rules are unknown",
                                 "apt install iptables nftables"});
    return fw;
}

FirewallVerdict Firewall::verdict(const Packet& p) const
{
    std::vector<const Stage*> order;
    for (const auto& s : m_stages)
        if (s.family == p.source.family())
            order.push_back(&s);
    std::stable_sort(order.begin(), order.end(), [](const Stage* a, const Stage* b) {
        return a->hookOrder != b->hookOrder ? a->hookOrder < b->hookOrder : a->priority < b->priority;
    });
    FirewallVerdict v;
    v.rule = "no firewall rule applies";
    bool undecided = false;
    for (const Stage* s : order) {
        const auto out = traceChain(*s->chains, s->chain, p);
        if (out.decision == Decision::Accept) {
            // Name the rule that let it through, unless a later stage has a
            // more telling one than its default policy.
            const bool policy = out.rule.rfind("policy ", 0) == 0;
            if (!policy || v.rule == "no firewall rule applies")
                v.rule = policy && s->chains->at(s->chain).rules.empty() ? v.rule : out.rule;
            continue;
        }
        if (out.decision == Decision::Undecided) {
            undecided = true;
            for (const auto& r : out.reasons)
                v.reasons.push_back(r);
            if (v.stage == nullptr)
                v.stage = s;
            continue;
        }
        // A certain drop blocks whatever an earlier undecided stage did.
        v.decision = out.decision;
        v.rule = out.rule;
        v.stage = s;
        v.reasons.clear();
        return v;
    }
    if (undecided) {
        v.decision = Decision::Undecided;
        v.rule.clear();
    }
    return v;
}

Tool Firewall::toolFor(Family f) const
{
    Tool t = Tool::Iptables;
    for (const auto& s : m_stages) {
        if (s.family != f)
            continue;
        if (s.tool == Tool::Ufw || s.tool == Tool::Firewalld)
            return s.tool;
        if (s.tool == Tool::Nft)
            t = Tool::Nft;
    }
    return t;
}

std::string fixCommands(const Stage& stage, Tool tool, const std::string& master, std::uint16_t port)
{
    const bool v4 = stage.family == Family::V4;
    const std::string p = std::to_string(port);
    switch (tool) {
    case Tool::Ufw:
        if (stage.backend != "nft" && (stage.table == "filter"))
            return "ufw allow from " + master + " to any port " + p + " proto tcp";
        break;
    case Tool::Firewalld:
        return "firewall-cmd --permanent --add-rich-rule='rule family=\"" + std::string(v4 ? "ipv4" : "ipv6") +
               "\" source address=\"" + master + "\" port port=\"" + p +
               "\" protocol=\"tcp\" accept'\nfirewall-cmd --reload";
    default: break;
    }
    if (stage.backend == "nft") {
        return "nft insert rule " + stage.table + " " + stage.chain + " " + (v4 ? "ip" : "ip6") + " saddr " + master +
               " tcp dport " + p + " accept\n# and add the same rule to /etc/nftables.conf so that it survives a reboot";
    }
    std::string cmd = v4 ? "iptables" : "ip6tables";
    if (stage.backend == "iptables-legacy")
        cmd += "-legacy";
    const std::string table = stage.table == "filter" ? "" : " -t " + stage.table;
    return cmd + table + " -I " + stage.chain + " -p tcp -s " + master + " --dport " + p + " -j ACCEPT\n" + cmd +
           "-save > /etc/iptables/rules." + (v4 ? "v4" : "v6") +
           "   # keeps it across reboots (iptables-persistent), or add it to your firewall script";
}

} // namespace fwcheck
