#include "Firewall.h"

#include <algorithm>
#include <set>
#include <sstream>

#include "IptablesRuleset.h"
#include "NftRuleset.h"

#include <nlohmann/json.hpp>

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
    addNftRuleset(rs);
}

void Firewall::addNftRuleset(const NftRuleset& rs)
{
    for (const auto& p : rs.problems())
        m_findings.push_back({"firewall.unreadable", severity::kWarning, "nft rules: " + p, ""});
    m_rules += rs.ruleCount();
    for (auto family : {Family::V4, Family::V6})
        for (auto& s : rs.stages(family))
            m_stages.push_back(std::move(s));
}


namespace {

// Tables ("ip filter") whose rules use xt compat expressions: iptables-nft
// wrote them, and only iptables-nft-save can show what those expressions
// test. Every other table is read from the JSON, which is exact (where
// iptables-nft-save would silently drop what it cannot express, such as
// an anonymous address set).
std::set<std::string> tablesWithXt(const nlohmann::json& doc)
{
    std::set<std::string> out;
    try {
        for (const auto& item : doc.at("nftables")) {
            if (!item.is_object() || !item.contains("rule"))
                continue;
            const auto& rule = item["rule"];
            if (!rule.contains("expr") || !rule["expr"].is_array())
                continue;
            for (const auto& e : rule["expr"])
                if (e.is_object() && e.contains("xt")) {
                    out.insert(rule.value("family", "") + " " + rule.value("table", ""));
                    break;
                }
        }
    } catch (const std::exception&) {
        // NftRuleset reports unreadable JSON.
    }
    return out;
}

// The sections of iptables-save text for the given tables only.
std::string keepTables(const std::string& text, const std::string& family, const std::set<std::string>& keep)
{
    std::istringstream in(text);
    std::string line, out;
    bool on = false;
    while (std::getline(in, line)) {
        if (!line.empty() && line[0] == '*')
            on = keep.count(family + " " + line.substr(1)) != 0;
        if (on)
            out += line + "\n";
        if (line == "COMMIT")
            on = false;
    }
    return out;
}

} // namespace

Firewall Firewall::load(SystemReader& reader)
{
    Firewall fw;
    bool anyTool = false;
    auto unreadable = [&](const std::string& tool, const CommandOutput& out) {
        fw.m_findings.push_back({"firewall.unreadable", severity::kUndecided,
                                 "Cannot read the rules with " + tool + ": " + out.describe(),
                                 "Run the check as root or with CAP_NET_ADMIN (systemctl start ferry-fwcheckd)"});
    };

    const auto nft = reader.nftRuleset();
    const bool haveJson = nft.ran && nft.exitCode == 0 && !nft.out.empty();
    if (nft.ran) {
        anyTool = true;
        if (nft.exitCode != 0)
            unreadable("nft", nft);
    }
    nlohmann::json doc;
    bool parsed = false;
    if (haveJson) {
        try {
            doc = nlohmann::json::parse(nft.out);
            parsed = true;
        } catch (const std::exception& e) {
            fw.m_findings.push_back({"firewall.unreadable", severity::kUndecided,
                                     std::string("The nft JSON cannot be parsed: ") + e.what(), ""});
        }
    }
    const std::set<std::string> xtTables = parsed ? tablesWithXt(doc) : std::set<std::string>{};

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
    std::set<std::string> readAsIptables;
    for (const auto& s : kSources) {
        const bool nftBackend = std::string(s.backend) == "iptables-nft";
        // Without the JSON, iptables-nft-save is the only view of those tables.
        if (nftBackend && parsed && xtTables.empty())
            continue;
        const auto out = reader.iptablesSave(s.tool);
        if (!out.ran)
            continue;
        anyTool = true;
        if (out.exitCode != 0) {
            unreadable(s.tool, out);
            continue;
        }
        std::string text = out.out;
        if (nftBackend && parsed) {
            const std::string family = s.family == Family::V4 ? "ip" : "ip6";
            text = keepTables(text, family, xtTables);
            for (const auto& t : xtTables) {
                const std::string name = t.substr(t.find(' ') + 1);
                // A table iptables-nft-save did not print stays with the
                // JSON reader, where its xt expressions make it undecided.
                if (t.rfind(family + " ", 0) == 0 && ("\n" + text).find("\n*" + name + "\n") != std::string::npos)
                    readAsIptables.insert(t);
            }
        }
        fw.addIptables(s.backend, s.family, text);
    }
    if (parsed) {
        std::map<std::string, std::vector<std::string>> devices;
        if (nft.out.find("\"netdev\"") != std::string::npos) {
            const auto text = reader.nftRulesetText();
            if (text.ran && text.exitCode == 0)
                devices = parseIngressDevices(text.out);
        }
        NftRuleset rs(doc, readAsIptables, devices);
        fw.addNftRuleset(rs);
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

std::string neighbourDiscoveryFix(const Stage& stage, int icmpType)
{
    if (stage.backend == "nft")
        return "nft insert rule " + stage.table + " " + stage.chain +
               " icmpv6 type { nd-neighbor-solicit, nd-neighbor-advert } accept";
    const std::string cmd = stage.backend == "iptables-legacy" ? "ip6tables-legacy" : "ip6tables";
    const std::string table = stage.table == "filter" ? "" : " -t " + stage.table;
    return cmd + table + " -I " + stage.chain + " -p ipv6-icmp --icmpv6-type " +
           (icmpType == 135 ? "neighbour-solicitation" : "neighbour-advertisement") + " -j ACCEPT";
}

} // namespace fwcheck
