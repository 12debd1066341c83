#include "Firewall.h"

#include <algorithm>
#include <future>
#include <iterator>
#include <regex>
#include <set>
#include <sstream>

#include "IptablesRuleset.h"
#include "NftRuleset.h"
#include "ferry/Error.h"

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
    // The listing tools are processes of their own, tens of milliseconds
    // each (iptables-nft-save hundreds on a large rule set): they run at
    // once, each on a thread, and their outputs are read below in the fixed
    // order of kSources. The legacy ones need nothing from nftables, so they
    // start before it is read.
    std::future<CommandOutput> saves[std::size(kSources)];
    auto start = [&](std::size_t i) {
        saves[i] = std::async(std::launch::async,
                              [&reader, tool = std::string(kSources[i].tool)] { return reader.iptablesSave(tool); });
    };
    start(0);
    start(1);

    // Tables with xt expressions are read through iptables-nft-save below;
    // with an inventory, libnftables lists only the others.
    const auto inventory = reader.nftTables();
    std::set<std::string> xtTables;
    CommandOutput nft;
    if (inventory) {
        std::vector<std::string> others;
        for (const auto& [name, info] : *inventory) {
            if (info.xt)
                xtTables.insert(name);
            else
                others.push_back(name);
        }
        nft = others.empty() ? CommandOutput{true, 0, R"({"nftables": []})", ""} : reader.nftRulesetOf(others);
    } else {
        nft = reader.nftRuleset();
    }
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
    if (parsed && !inventory)
        xtTables = tablesWithXt(doc);

    // Without the JSON, iptables-nft-save is the only view of those tables;
    // with it, only a family that has tables with xt expressions needs it
    // (the others' tables are all in the JSON).
    auto familyNeedsSave = [&](Family family) {
        if (!parsed)
            return true;
        const std::string prefix = family == Family::V4 ? "ip " : "ip6 ";
        return std::any_of(xtTables.begin(), xtTables.end(),
                           [&](const std::string& t) { return t.rfind(prefix, 0) == 0; });
    };
    for (std::size_t i = 2; i < std::size(kSources); ++i)
        if (familyNeedsSave(kSources[i].family))
            start(i);
    std::set<std::string> readAsIptables;
    for (std::size_t i = 0; i < std::size(kSources); ++i) {
        const Source& s = kSources[i];
        const bool nftBackend = std::string(s.backend) == "iptables-nft";
        if (!saves[i].valid())
            continue;
        const auto out = saves[i].get();
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
    if (parsed && inventory) {
        // xt tables iptables-nft-save did not show (another family, or it
        // refused them) were not listed yet: list them now, so that they
        // stay with the JSON reader, where their xt expressions make them
        // undecided rather than missing.
        std::vector<std::string> unread;
        for (const auto& t : xtTables)
            if (!readAsIptables.count(t))
                unread.push_back(t);
        if (!unread.empty()) {
            const auto more = reader.nftRulesetOf(unread);
            try {
                if (!more.ran || more.exitCode != 0)
                    throw ferry::Error(more.describe());
                for (auto& item : nlohmann::json::parse(more.out).at("nftables"))
                    doc["nftables"].push_back(std::move(item));
            } catch (const std::exception& e) {
                fw.m_findings.push_back({"firewall.unreadable", severity::kUndecided,
                                         std::string("Cannot list nftables tables with xt expressions: ") + e.what(),
                                         ""});
            }
        }
    }
    if (parsed) {
        std::map<std::string, std::vector<std::string>> devices;
        std::vector<std::string> netdevTables;
        if (inventory)
            for (const auto& [name, info] : *inventory)
                if (name.rfind("netdev ", 0) == 0)
                    netdevTables.push_back(name);
        if (nft.out.find("\"netdev\"") != std::string::npos && (!inventory || !netdevTables.empty())) {
            const auto text = reader.nftRulesetText(netdevTables);
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
            if (v.stage == nullptr) {
                v.stage = s;
                v.chain = out.chain;
            }
            continue;
        }
        // A certain drop blocks whatever an earlier undecided stage did.
        v.decision = out.decision;
        v.rule = out.rule;
        v.chain = out.chain;
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

namespace {

bool startsWith(const std::string& s, const char* prefix)
{
    return s.rfind(prefix, 0) == 0;
}

// The firewalld zone the master's packets land in: the first rule of the
// zone dispatch chain that surely matches and goes to IN_<zone>.
std::string firewalldZone(const Stage& stage, const Packet& p)
{
    for (const char* dispatch : {"filter_INPUT_ZONES", "INPUT_ZONES"}) {
        const auto it = stage.chains->find(dispatch);
        if (it == stage.chains->end())
            continue;
        for (const auto& rule : it->second.rules) {
            const RuleEval ev = rule.evaluate(p);
            if (ev.match == Tri::No)
                continue;
            if (ev.match == Tri::Unknown)
                return "";
            if (ev.action.kind != Action::Kind::Goto && ev.action.kind != Action::Kind::Jump)
                return "";
            std::string zone = ev.action.target;
            for (const char* prefix : {"filter_IN_", "IN_"})
                if (startsWith(zone, prefix))
                    return zone.substr(std::string(prefix).size());
            return "";
        }
    }
    return "";
}

// fail2ban's nftables action names its sets addr-set-<jail> / addr6-set-<jail>.
std::string fail2banJail(const std::string& chain, const std::string& rule)
{
    if (startsWith(chain, "f2b-") && chain != "f2b-chain")
        return chain.substr(4);
    for (const char* marker : {"@addr-set-", "@addr6-set-"}) {
        const auto at = rule.find(marker);
        if (at == std::string::npos)
            continue;
        const auto from = at + std::string(marker).size();
        const auto to = rule.find_first_of(" ,}", from);
        return rule.substr(from, to == std::string::npos ? std::string::npos : to - from);
    }
    return "";
}

// ufw's own before-chains (from /etc/ufw/before*.rules) run ahead of the
// user rules, so a user rule cannot outrank what they decide.
bool ufwBeforeChain(const std::string& chain)
{
    for (const char* prefix : {"ufw-before", "ufw6-before", "ufw-not-local", "ufw6-not-local", "ufw-logging",
                               "ufw6-logging"})
        if (startsWith(chain, prefix))
            return true;
    return false;
}

bool ufwUserChain(const std::string& chain)
{
    return chain == "ufw-user-input" || chain == "ufw6-user-input";
}

std::string iptablesInsert(const Stage& stage, const std::string& master, const std::string& port)
{
    const bool v4 = stage.family == Family::V4;
    std::string cmd = v4 ? "iptables" : "ip6tables";
    if (stage.backend == "iptables-legacy")
        cmd += "-legacy";
    const std::string table = stage.table == "filter" ? "" : " -t " + stage.table;
    // Every line must run on the host as it is: stock Debian has no
    // /etc/iptables, so the rule is saved only where iptables-persistent
    // (netfilter-persistent) keeps rules across reboots.
    return cmd + table + " -I " + stage.chain + " -p tcp -s " + master + " --dport " + port + " -j ACCEPT\n" +
           "[ ! -x /usr/sbin/netfilter-persistent ] || netfilter-persistent save"
           "   # keeps it across reboots (without iptables-persistent, add the rule to your firewall script)";
}

} // namespace

std::string fixCommands(const Stage& stage, const std::string& chain, const std::string& rule, const Packet& p)
{
    const bool v4 = stage.family == Family::V4;
    const std::string master = p.source.toString();
    const std::string port = std::to_string(p.destinationPort);
    const bool fail2banTable = stage.backend == "nft" && stage.table.find(" f2b") != std::string::npos;
    if ((startsWith(chain, "f2b-") || fail2banTable)) {
        const std::string jail = fail2banJail(chain, rule);
        return "fail2ban-client unban " + master + "\n# and so that it is not banned again: add " + master +
               " to ignoreip under [DEFAULT] in /etc/fail2ban/jail.local, then: fail2ban-client reload" +
               (jail.empty() ? std::string() : "   # jail " + jail);
    }
    switch (stage.tool) {
    case Tool::Ufw:
        if (stage.backend == "nft")
            break;
        if (ufwBeforeChain(chain)) {
            const std::string file = v4 ? "/etc/ufw/before.rules" : "/etc/ufw/before6.rules";
            const std::string ch = v4 ? "ufw-before-input" : "ufw6-before-input";
            return "Add this line to " + file + " right after the ':" + ch + " - [0:0]' line of its *filter section " +
                   "(ufw's own rules there run before user rules):\n-A " + ch + " -p tcp -s " + master + " --dport " +
                   port + " -j ACCEPT\nufw reload";
        }
        {
            const std::string allow = "ufw prepend allow from " + master + " to any port " + port + " proto tcp";
            // ufw counts "deny from M to any port P proto tcp" as the same
            // rule as our allow and skips the prepend ("Skipping inserting
            // existing rule"): that deny has to go first.
            const std::regex ownDeny("-A ufw6?-user-input -s ([0-9a-fA-F:.]+)/(32|128) -p tcp -m tcp --dport " + port +
                                     " -j (DROP|REJECT)( .*)?$");
            std::smatch m;
            if (ufwUserChain(chain) && std::regex_search(rule, m, ownDeny) && Address::parse(m[1].str()) &&
                *Address::parse(m[1].str()) == p.source)
                return "ufw delete " + std::string(m[3] == "DROP" ? "deny" : "reject") + " from " + master +
                       " to any port " + port + " proto tcp\n" + allow;
            return allow;
        }
    case Tool::Firewalld: {
        const std::string zone = firewalldZone(stage, p);
        return "firewall-cmd --permanent" + (zone.empty() ? std::string() : " --zone=" + zone) +
               " --add-rich-rule='rule priority=\"-32768\" family=\"" + std::string(v4 ? "ipv4" : "ipv6") +
               "\" source address=\"" + master + "\" port port=\"" + port +
               "\" protocol=\"tcp\" accept'\nfirewall-cmd --reload";
    }
    default: break;
    }
    if (stage.backend == "nft")
        return "nft insert rule " + stage.table + " " + stage.chain + " " + (v4 ? "ip" : "ip6") + " saddr " + master +
               " tcp dport " + port + " accept\n# and add the same rule to /etc/nftables.conf so that it survives a reboot";
    return iptablesInsert(stage, master, port);
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
