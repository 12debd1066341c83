#include "IptablesRuleset.h"

#include <algorithm>
#include <functional>
#include <map>
#include <optional>
#include <set>
#include <sstream>

namespace fwcheck {

const char* toString(Tool t)
{
    switch (t) {
    case Tool::Iptables: return "iptables";
    case Tool::Ufw: return "ufw";
    case Tool::Firewalld: return "firewalld";
    case Tool::Docker: return "docker";
    case Tool::Nft: return "nft";
    }
    return "iptables";
}

std::vector<std::string> splitSaveLine(const std::string& line)
{
    std::vector<std::string> out;
    std::string cur;
    bool inWord = false, quoted = false;
    for (std::size_t i = 0; i < line.size(); ++i) {
        const char c = line[i];
        if (quoted) {
            if (c == '\\' && i + 1 < line.size()) {
                cur += line[++i];
            } else if (c == '"') {
                quoted = false;
            } else {
                cur += c;
            }
        } else if (c == '"') {
            quoted = true;
            inWord = true;
        } else if (c == ' ' || c == '\t') {
            if (inWord)
                out.push_back(cur);
            cur.clear();
            inWord = false;
        } else {
            cur += c;
            inWord = true;
        }
    }
    if (inWord)
        out.push_back(cur);
    return out;
}

namespace {

using Cond = std::function<Tri(const Packet&, std::string& why)>;

struct ParseFailure {
    std::string message;
};

std::optional<std::pair<unsigned, unsigned>> parsePortRange(const std::string& s)
{
    auto num = [](const std::string& t) -> std::optional<unsigned> {
        if (t.empty() || t.size() > 5 || t.find_first_not_of("0123456789") != std::string::npos)
            return std::nullopt;
        const unsigned v = static_cast<unsigned>(std::stoul(t));
        if (v > 65535)
            return std::nullopt;
        return v;
    };
    const auto colon = s.find(':');
    if (colon == std::string::npos) {
        auto v = num(s);
        if (!v)
            return std::nullopt;
        return std::make_pair(*v, *v);
    }
    auto lo = colon == 0 ? std::optional<unsigned>(0) : num(s.substr(0, colon));
    auto hi = colon + 1 == s.size() ? std::optional<unsigned>(65535) : num(s.substr(colon + 1));
    if (!lo || !hi || *lo > *hi)
        return std::nullopt;
    return std::make_pair(*lo, *hi);
}

std::vector<std::string> splitComma(const std::string& s)
{
    std::vector<std::string> out;
    std::stringstream ss(s);
    std::string item;
    while (std::getline(ss, item, ','))
        out.push_back(item);
    return out;
}

Cond negate(bool neg, Cond c)
{
    if (!neg)
        return c;
    return [c](const Packet& p, std::string& why) { return triNot(c(p, why)); };
}

Cond unknown(std::string why)
{
    return [why](const Packet&, std::string& w) {
        w = why;
        return Tri::Unknown;
    };
}

Cond always(Tri t)
{
    return [t](const Packet&, std::string&) { return t; };
}

Cond addressCond(const std::string& arg, bool source, Family family)
{
    std::vector<AddressSpec> specs;
    for (const auto& part : splitComma(arg)) {
        auto spec = AddressSpec::parse(part);
        if (!spec || spec->network.family() != family)
            throw ParseFailure{"'" + part + "' is not an address of this family"};
        specs.push_back(*spec);
    }
    return [specs, source](const Packet& p, std::string&) {
        const Address& a = source ? p.source : p.destination;
        for (const auto& s : specs)
            if (s.matches(a))
                return Tri::Yes;
        return Tri::No;
    };
}

Cond interfaceCond(const std::string& name)
{
    return [name](const Packet& p, std::string& why) {
        if (p.inInterface.empty()) {
            why = "the interface the master's packets arrive on is unknown";
            return Tri::Unknown;
        }
        if (!name.empty() && name.back() == '+')
            return tri(p.inInterface.compare(0, name.size() - 1, name, 0, name.size() - 1) == 0);
        return tri(p.inInterface == name);
    };
}

Cond portCond(const std::string& list, const std::string& what)
{
    std::vector<std::pair<unsigned, unsigned>> ranges;
    for (const auto& part : splitComma(list)) {
        auto r = parsePortRange(part);
        if (!r)
            throw ParseFailure{"'" + part + "' is not a port or port range in " + what};
        ranges.push_back(*r);
    }
    return [ranges](const Packet& p, std::string&) {
        if (!p.isTcp())
            return Tri::No;
        for (const auto& [lo, hi] : ranges)
            if (p.destinationPort >= lo && p.destinationPort <= hi)
                return Tri::Yes;
        return Tri::No;
    };
}

// Source ports are ephemeral and unknown, unless the match covers all of them.
Cond sourcePortCond(const std::string& list)
{
    for (const auto& part : splitComma(list)) {
        auto r = parsePortRange(part);
        if (!r)
            throw ParseFailure{"'" + part + "' is not a port or port range"};
        if (r->first <= 1024 && r->second == 65535)
            return always(Tri::Yes);
    }
    return unknown("it matches the source port, which the master picks at random");
}

Cond stateCond(const std::string& list)
{
    bool known = true;
    bool hasNew = false, hasUntracked = false;
    for (const auto& s : splitComma(list)) {
        if (s == "NEW")
            hasNew = true;
        else if (s == "UNTRACKED")
            hasUntracked = true;
        else if (s != "ESTABLISHED" && s != "RELATED" && s != "INVALID" && s != "UNTRACKED" && s != "SNAT" &&
                 s != "DNAT")
            known = false;
    }
    if (!known)
        throw ParseFailure{"unknown connection state in '" + list + "'"};
    return [hasNew, hasUntracked](const Packet& p, std::string&) { return tri(p.isTcp() ? hasNew : hasUntracked); };
}

// --tcp-flags mask comp against a plain SYN.
Cond tcpFlagsCond(const std::string& mask, const std::string& comp)
{
    auto bits = [](const std::string& s) {
        unsigned v = 0;
        for (const auto& f : splitComma(s)) {
            if (f == "SYN") v |= 2;
            else if (f == "ACK") v |= 16;
            else if (f == "FIN") v |= 1;
            else if (f == "RST") v |= 4;
            else if (f == "PSH") v |= 8;
            else if (f == "URG") v |= 32;
            else if (f == "ECE") v |= 64;
            else if (f == "CWR") v |= 128;
            else if (f == "ALL") v |= 255;
            else if (f == "NONE") v |= 0;
            else throw ParseFailure{"unknown TCP flag '" + f + "'"};
        }
        return v;
    };
    const unsigned m = bits(mask), c = bits(comp);
    // A connecting SYN may also carry ECE|CWR (ECN); only SYN is certain.
    const unsigned syn = 2;
    if ((m & (64 | 128)) != 0 && ((m & c & (64 | 128)) != 0 || (m & ~c & (64 | 128)) != 0))
        return unknown("it tests the ECN flags of the SYN, which depend on the master");
    const bool match = (syn & m) == c;
    return [match](const Packet& p, std::string&) { return tri(p.isTcp() && match); };
}

struct ModuleOption {
    bool negated = false;
    std::string name;
    std::vector<std::string> args;
};

// The master pulls every 5 to 10 minutes: never two pull connections from
// it closer together than this.
constexpr unsigned kPullIntervalSeconds = 300;

unsigned smallNumber(const ModuleOption& o, const std::string& module)
{
    if (o.args.size() != 1 || o.args[0].empty() || o.args[0].size() > 9 ||
        o.args[0].find_first_not_of("0123456789") != std::string::npos)
        throw ParseFailure{"option " + o.name + " of -m " + module + " expects a number"};
    return static_cast<unsigned>(std::stoul(o.args[0]));
}

// -m recent: --set always matches (it records the source); --rcheck and
// --update match a source seen before, with --hitcount N within --seconds S
// only when N connections came that close together. One pull connection
// every kPullIntervalSeconds puts at most 1 + S / interval hits in any S
// seconds, so a burst limit such as ufw's `limit` (6 in 30 s) never matches
// it. Anything else depends on the master's history: unknown.
Cond recentCond(const std::vector<ModuleOption>& opts)
{
    enum class Mode { None, Set, Check, Remove } mode = Mode::None;
    bool negated = false;
    std::optional<unsigned> seconds, hitcount;
    for (const auto& o : opts) {
        if (o.name == "--set") {
            mode = Mode::Set;
            negated = o.negated;
        } else if (o.name == "--rcheck" || o.name == "--update") {
            mode = Mode::Check;
            negated = o.negated;
        } else if (o.name == "--remove") {
            mode = Mode::Remove;
            negated = o.negated;
        } else if (o.name == "--seconds") {
            seconds = smallNumber(o, "recent");
        } else if (o.name == "--hitcount") {
            hitcount = smallNumber(o, "recent");
        } else if (o.name != "--name" && o.name != "--mask" && o.name != "--rsource" && o.name != "--rdest" &&
                   o.name != "--reap" && o.name != "--rttl") {
            throw ParseFailure{"unknown recent option " + o.name};
        }
    }
    if (mode == Mode::Set)
        return always(tri(!negated));
    if (mode == Mode::Check && seconds && hitcount && *hitcount >= 2 &&
        1 + *seconds / kPullIntervalSeconds < *hitcount)
        return always(tri(negated));
    return unknown("match -m recent depends on the master's earlier connections");
}

// -m hl / -m ttl: neighbour discovery is sent with hop limit 255 (RFC 4861,
// and the kernel drops it otherwise); a SYN's depends on the path.
Cond hopLimitCond(const std::string& module, const std::vector<ModuleOption>& opts)
{
    std::vector<Cond> conds;
    for (const auto& o : opts) {
        const unsigned n = smallNumber(o, module);
        const std::string op = o.name.substr(o.name.size() - 2);
        if (op != "eq" && op != "lt" && op != "gt")
            throw ParseFailure{"unknown " + module + " option " + o.name};
        const bool neg = o.negated;
        conds.push_back([n, op, neg, module](const Packet& p, std::string& why) {
            if (p.isTcp() || module == "ttl") {
                why = "it tests the hop limit of the master's packets, which depends on the path";
                return Tri::Unknown;
            }
            const unsigned hl = 255;
            const bool r = op == "eq" ? hl == n : op == "lt" ? hl < n : hl > n;
            return tri(r != neg);
        });
    }
    if (conds.empty())
        throw ParseFailure{"-m " + module + " without a test"};
    return [conds](const Packet& p, std::string& why) {
        Tri t = Tri::Yes;
        for (const auto& c : conds)
            t = triAnd(t, c(p, why));
        return t;
    };
}

Cond moduleCond(const std::string& module, const std::vector<ModuleOption>& opts, bool isTcp)
{
    (void)isTcp;
    // IPv6 extension-header matches fail when the header is absent, whatever
    // they test and however negated (the match returns false before it looks
    // at the options): a SYN or a neighbour solicitation carries none. This
    // is ufw's stock `-m rt --rt-type 0 -j DROP`.
    if (module == "rt" || module == "frag" || module == "hbh" || module == "dst")
        return always(Tri::No);
    if (module == "recent")
        return recentCond(opts);
    if (module == "hl" || module == "ttl")
        return hopLimitCond(module, opts);
    std::vector<Cond> conds;
    auto need = [&](const ModuleOption& o, std::size_t n) {
        if (o.args.size() != n)
            throw ParseFailure{"option " + o.name + " of -m " + module + " expects " + std::to_string(n) +
                               " argument(s)"};
    };
    for (const auto& o : opts) {
        if (module == "tcp") {
            if (o.name == "--dport" || o.name == "--destination-port") {
                need(o, 1);
                conds.push_back(negate(o.negated, portCond(o.args[0], "--dport")));
            } else if (o.name == "--sport" || o.name == "--source-port") {
                need(o, 1);
                conds.push_back(negate(o.negated, sourcePortCond(o.args[0])));
            } else if (o.name == "--syn") {
                conds.push_back(negate(o.negated, [](const Packet& p, std::string&) { return tri(p.isTcp()); }));
            } else if (o.name == "--tcp-flags") {
                need(o, 2);
                conds.push_back(negate(o.negated, tcpFlagsCond(o.args[0], o.args[1])));
            } else {
                conds.push_back(unknown("tcp option " + o.name + " cannot be evaluated"));
            }
        } else if (module == "icmp6" || module == "icmpv6") {
            need(o, 1);
            std::string t = o.args[0];
            static const std::map<std::string, int> kTypes = {
                {"neighbour-solicitation", 135}, {"neighbor-solicitation", 135}, {"neighbour-advertisement", 136},
                {"neighbor-advertisement", 136}, {"router-solicitation", 133}, {"router-advertisement", 134},
                {"echo-request", 128}, {"echo-reply", 129}, {"destination-unreachable", 1},
                {"packet-too-big", 2}, {"time-exceeded", 3}, {"parameter-problem", 4}, {"redirect", 137}};
            int type = -1;
            if (auto it = kTypes.find(t); it != kTypes.end())
                type = it->second;
            else if (!t.empty() && t.find_first_not_of("0123456789/") == std::string::npos)
                type = std::stoi(t.substr(0, t.find('/')));
            if (type < 0) {
                conds.push_back(unknown("ICMPv6 type '" + t + "' cannot be evaluated"));
            } else {
                conds.push_back(negate(o.negated, [type](const Packet& p, std::string&) {
                    return tri(!p.isTcp() && p.icmpType == type);
                }));
            }
        } else if (module == "udp" || module == "icmp" ||
                   module == "sctp" || module == "udplite" || module == "dccp" || module == "ah" ||
                   module == "esp") {
            // These only load alongside -p of the same protocol, which is
            // never TCP: the protocol test already says No.
            conds.push_back(always(Tri::No));
            break;
        } else if (module == "multiport") {
            need(o, 1);
            if (o.name == "--dports" || o.name == "--destination-ports")
                conds.push_back(negate(o.negated, portCond(o.args[0], "--dports")));
            else if (o.name == "--sports" || o.name == "--source-ports")
                conds.push_back(negate(o.negated, sourcePortCond(o.args[0])));
            else if (o.name == "--ports") {
                auto dport = portCond(o.args[0], "--ports");
                auto sport = sourcePortCond(o.args[0]);
                conds.push_back(negate(o.negated, [dport, sport](const Packet& p, std::string& why) {
                    if (dport(p, why) == Tri::Yes)
                        return Tri::Yes;
                    return sport(p, why);
                }));
            } else
                conds.push_back(unknown("multiport option " + o.name + " cannot be evaluated"));
        } else if (module == "state" || module == "conntrack") {
            if (o.name == "--state" || o.name == "--ctstate") {
                need(o, 1);
                conds.push_back(negate(o.negated, stateCond(o.args[0])));
            } else if (o.name == "--ctproto") {
                need(o, 1);
                conds.push_back(negate(o.negated, always(tri(o.args[0] == "tcp" || o.args[0] == "6"))));
            } else if (o.name == "--ctdir") {
                need(o, 1);
                conds.push_back(negate(o.negated, always(tri(o.args[0] == "ORIGINAL"))));
            } else {
                conds.push_back(unknown("conntrack option " + o.name + " cannot be evaluated"));
            }
        } else if (module == "comment") {
            // Only a label.
        } else if (module == "iprange") {
            need(o, 1);
            const auto dash = o.args[0].find('-');
            auto lo = Address::parse(o.args[0].substr(0, dash));
            auto hi = dash == std::string::npos ? lo : Address::parse(o.args[0].substr(dash + 1));
            if (!lo || !hi)
                throw ParseFailure{"'" + o.args[0] + "' is not an address range"};
            const bool src = o.name == "--src-range";
            if (!src && o.name != "--dst-range")
                throw ParseFailure{"unknown iprange option " + o.name};
            const Address l = *lo, h = *hi;
            conds.push_back(negate(o.negated, [l, h, src](const Packet& p, std::string&) {
                return tri((src ? p.source : p.destination).inRange(l, h));
            }));
        } else if (module == "addrtype") {
            if (o.name == "--limit-iface-in" || o.name == "--limit-iface-out")
                continue;
            need(o, 1);
            // Our packet goes to a local unicast address from a remote unicast one.
            bool any = false, unsure = false;
            for (const auto& t : splitComma(o.args[0])) {
                if (o.name == "--dst-type") {
                    if (t == "LOCAL" || t == "UNICAST")
                        any = true;
                    else if (t != "BROADCAST" && t != "MULTICAST" && t != "ANYCAST" && t != "BLACKHOLE" &&
                             t != "UNREACHABLE" && t != "PROHIBIT" && t != "NAT" && t != "THROW" &&
                             t != "XRESOLVE" && t != "UNSPEC")
                        unsure = true;
                } else if (o.name == "--src-type") {
                    if (t == "UNICAST")
                        any = true;
                    else if (t == "LOCAL")
                        unsure = true;  // only if a master runs on this host
                    else if (t != "BROADCAST" && t != "MULTICAST" && t != "ANYCAST" && t != "BLACKHOLE" &&
                             t != "UNREACHABLE" && t != "PROHIBIT" && t != "NAT" && t != "THROW" &&
                             t != "XRESOLVE" && t != "UNSPEC")
                        unsure = true;
                } else {
                    throw ParseFailure{"unknown addrtype option " + o.name};
                }
            }
            if (any)
                conds.push_back(always(tri(!o.negated)));
            else if (unsure)
                conds.push_back(unknown("addrtype " + o.args[0] + " cannot be evaluated"));
            else
                conds.push_back(always(tri(o.negated)));
        } else if (module == "pkttype") {
            need(o, 1);
            conds.push_back(negate(o.negated, always(tri(o.args[0] == "unicast" || o.args[0] == "host"))));
        } else if (module == "rpfilter") {
            // The master is reached through the interface its packets come
            // in on, so the reverse-path test passes.
            conds.push_back(always(tri(o.name != "--invert")));
        } else {
            conds.push_back(unknown("match -m " + module + " cannot be evaluated (" + o.name + ")"));
            break;
        }
    }
    if (opts.empty() && module != "comment" && module != "tcp" && module != "state" &&
        module != "conntrack" && module != "multiport" && module != "addrtype" && module != "udp" &&
        module != "icmp" && module != "icmp6" && module != "rpfilter")
        conds.push_back(unknown("match -m " + module + " cannot be evaluated"));
    return [conds](const Packet& p, std::string& why) {
        Tri t = Tri::Yes;
        for (const auto& c : conds) {
            std::string w;
            const Tri r = c(p, w);
            if (r == Tri::Unknown && why.empty())
                why = w;
            t = triAnd(t, r);
            if (t == Tri::No)
                return t;
        }
        return t;
    };
}

bool isGenericOption(const std::string& t)
{
    static const std::set<std::string> kGeneric = {"-s", "--source", "-d", "--destination", "-i", "--in-interface",
                                                   "-o", "--out-interface", "-p", "--protocol", "-m", "--match",
                                                   "-j", "--jump", "-g", "--goto", "-f", "--fragment", "-A",
                                                   "--append", "-c"};
    return kGeneric.count(t) != 0;
}

Action targetAction(const std::string& table, const std::string& target, const std::vector<std::string>& targetArgs,
                    bool isGoto, const std::set<std::string>& chains)
{
    if (isGoto)
        return {Action::Kind::Goto, target};
    if (target == "ACCEPT")
        return {Action::Kind::Accept, {}};
    if (target == "DROP")
        return {Action::Kind::Drop, {}};
    if (target == "REJECT")
        return {Action::Kind::Reject, {}};
    if (target == "RETURN")
        return {Action::Kind::Return, {}};
    if (chains.count(target))
        return {Action::Kind::Jump, target};
    static const std::set<std::string> kNeutral = {
        "LOG", "NFLOG", "ULOG", "MARK", "CONNMARK", "CT", "NOTRACK", "TRACE", "CLASSIFY", "TCPMSS", "DSCP",
        "TOS", "TTL", "HL", "AUDIT", "SET", "SECMARK", "CONNSECMARK", "IDLETIMER", "LED", "CHECKSUM", "SNAT",
        "MASQUERADE", "RATEEST", "HMARK", "TEE", "SYNPROXY"};
    if (target == "NOTRACK" ||
        (target == "CT" && std::find(targetArgs.begin(), targetArgs.end(), "--notrack") != targetArgs.end()))
        return {Action::Kind::Undecided, "target " + target + " turns connection tracking off, so state matches see UNTRACKED"};
    if (kNeutral.count(target)) {
        if (target == "SYNPROXY")
            return {Action::Kind::Undecided, "target SYNPROXY answers the SYN itself"};
        return {Action::Kind::None, {}};
    }
    if ((target == "DNAT" || target == "REDIRECT") && table == "nat") {
        std::string to;
        for (const auto& a : targetArgs)
            if (a != "--to-destination" && a != "--to-ports" && a != "--to")
                to += (to.empty() ? "" : " ") + a;
        return {Action::Kind::Undecided, "target " + target + " sends the connection to " +
                                             (to.empty() ? std::string("another address") : to) +
                                             " instead of sshd"};
    }
    if (target == "NFQUEUE" || target == "QUEUE")
        return {Action::Kind::Undecided, "target " + target + " hands the packet to a user-space program"};
    return {Action::Kind::Undecided, "target " + target + " cannot be evaluated"};
}

} // namespace

IptablesRuleset::IptablesRuleset(std::string backend, Family family, const std::string& saveText)
    : m_backend(std::move(backend)), m_family(family)
{
    std::istringstream in(saveText);
    std::string line;
    int lineNo = 0;
    std::string table;
    std::shared_ptr<ChainMap> chains;
    std::vector<std::pair<std::string, int>> pendingRules;
    std::set<std::string> seenTables;

    auto flush = [&]() {
        if (!chains)
            return;
        for (const auto& [text, no] : pendingRules)
            parseRule(table, text, no);
        pendingRules.clear();
    };

    while (std::getline(in, line)) {
        ++lineNo;
        if (!line.empty() && line.back() == '\r')
            line.pop_back();
        if (line.empty() || line[0] == '#')
            continue;
        if (line[0] == '*') {
            flush();
            table = line.substr(1);
            if (seenTables.count(table)) {
                m_problems.push_back("line " + std::to_string(lineNo) + ": table " + table + " appears twice");
            }
            seenTables.insert(table);
            chains = std::make_shared<ChainMap>();
            m_tables.emplace_back(table, chains);
            continue;
        }
        if (!chains) {
            m_problems.push_back("line " + std::to_string(lineNo) + ": '" + line.substr(0, 80) +
                                 "' is outside any table");
            continue;
        }
        if (line == "COMMIT") {
            flush();
            chains.reset();
            continue;
        }
        if (line[0] == ':') {
            auto words = splitSaveLine(line.substr(1));
            if (words.size() < 2) {
                m_problems.push_back("line " + std::to_string(lineNo) + ": malformed chain line '" + line + "'");
                continue;
            }
            TraceChain c;
            c.name = words[0];
            if (words[1] == "DROP") {
                c.policy = Action::Kind::Drop;
                m_restrictivePolicy = true;
            } else if (words[1] == "ACCEPT" || words[1] == "-") {
                c.policy = Action::Kind::Accept;
            } else {
                m_problems.push_back("line " + std::to_string(lineNo) + ": unknown policy '" + words[1] + "'");
                c.policy = Action::Kind::Undecided;
            }
            if (c.name.rfind("ufw", 0) == 0)
                m_tool = Tool::Ufw;
            else if ((c.name.rfind("IN_", 0) == 0 || c.name == "INPUT_ZONES") && m_tool != Tool::Ufw)
                m_tool = Tool::Firewalld;
            (*chains)[c.name] = std::move(c);
            continue;
        }
        if (line.rfind("-A ", 0) == 0 || line.rfind("[", 0) == 0) {
            // Rules may refer to chains declared later in the table: read them
            // once the table is complete.
            pendingRules.emplace_back(line, lineNo);
            continue;
        }
        m_problems.push_back("line " + std::to_string(lineNo) + ": cannot read '" + line.substr(0, 80) + "'");
    }
    flush();
    if (chains)
        m_problems.push_back("the " + table + " table has no COMMIT line (truncated output?)");
}

void IptablesRuleset::parseRule(const std::string& table, const std::string& line, int lineNo)
{
    auto& chains = *std::find_if(m_tables.begin(), m_tables.end(), [&](const auto& t) {
                        return t.first == table;
                    })->second;
    auto words = splitSaveLine(line);
    std::size_t i = 0;
    if (i < words.size() && words[i].rfind("[", 0) == 0)
        ++i;  // counters from iptables-save -c
    if (i + 1 >= words.size() || (words[i] != "-A" && words[i] != "--append")) {
        m_problems.push_back("line " + std::to_string(lineNo) + ": cannot read '" + line + "'");
        return;
    }
    const std::string chainName = words[i + 1];
    i += 2;
    const std::string text = m_backend + " " + table + " line " + std::to_string(lineNo) + ": " + line;
    auto chainIt = chains.find(chainName);
    if (chainIt == chains.end()) {
        m_problems.push_back("line " + std::to_string(lineNo) + ": rule for undeclared chain " + chainName);
        TraceChain c;
        c.name = chainName;
        chainIt = chains.emplace(chainName, std::move(c)).first;
    }
    ++m_ruleCount;
    std::set<std::string> chainNames;
    for (const auto& [name, c] : chains)
        chainNames.insert(name);
    if (chainName.rfind("DOCKER", 0) == 0 && m_tool == Tool::Iptables)
        m_tool = Tool::Docker;

    std::vector<Cond> conds;
    Action action;
    bool isTcpKnown = false;
    try {
        bool neg = false;
        while (i < words.size()) {
            const std::string w = words[i];
            if (w == "!") {
                neg = true;
                ++i;
                continue;
            }
            auto arg = [&]() -> const std::string& {
                if (i + 1 >= words.size())
                    throw ParseFailure{"option " + w + " needs an argument"};
                return words[i + 1];
            };
            if (w == "-s" || w == "--source" || w == "-d" || w == "--destination") {
                conds.push_back(negate(neg, addressCond(arg(), w == "-s" || w == "--source", m_family)));
                i += 2;
            } else if (w == "-i" || w == "--in-interface") {
                conds.push_back(negate(neg, interfaceCond(arg())));
                i += 2;
            } else if (w == "-o" || w == "--out-interface") {
                conds.push_back(negate(neg, unknown("it tests the outgoing interface")));
                i += 2;
            } else if (w == "-p" || w == "--protocol") {
                const std::string& pr = arg();
                const bool all = pr == "all" || pr == "0";
                const bool tcp = pr == "tcp" || pr == "6";
                const bool icmp6 = pr == "ipv6-icmp" || pr == "icmpv6" || pr == "icmp6" || pr == "58";
                isTcpKnown = tcp || all;
                conds.push_back([all, tcp, icmp6, neg](const Packet& p, std::string&) {
                    return tri((all || (p.isTcp() ? tcp : icmp6)) != neg);
                });
                i += 2;
            } else if (w == "-f" || w == "--fragment") {
                conds.push_back(always(tri(neg)));
                ++i;
            } else if (w == "-m" || w == "--match") {
                const std::string module = arg();
                i += 2;
                std::vector<ModuleOption> opts;
                bool optNeg = false;
                while (i < words.size() && !isGenericOption(words[i])) {
                    if (words[i] == "!") {
                        optNeg = true;
                        ++i;
                        continue;
                    }
                    if (words[i].rfind("--", 0) != 0)
                        throw ParseFailure{"unexpected '" + words[i] + "' after -m " + module};
                    ModuleOption o;
                    o.negated = optNeg;
                    optNeg = false;
                    o.name = words[i++];
                    while (i < words.size() && words[i].rfind("--", 0) != 0 && words[i] != "!" &&
                           !isGenericOption(words[i]))
                        o.args.push_back(words[i++]);
                    opts.push_back(std::move(o));
                }
                conds.push_back(moduleCond(module, opts, isTcpKnown));
            } else if (w == "-j" || w == "--jump" || w == "-g" || w == "--goto") {
                const std::string target = arg();
                std::vector<std::string> targetArgs(words.begin() + static_cast<long>(i) + 2, words.end());
                action = targetAction(table, target, targetArgs, w == "-g" || w == "--goto", chainNames);
                if ((w == "-g" || w == "--goto") && !chainNames.count(target))
                    throw ParseFailure{"goto to undeclared chain " + target};
                i = words.size();
            } else if (w == "-c") {
                i += 3;
            } else {
                throw ParseFailure{"unknown option '" + w + "'"};
            }
            neg = false;
        }
    } catch (const ParseFailure& f) {
        m_problems.push_back("line " + std::to_string(lineNo) + ": " + f.message);
        conds = {unknown("the rule cannot be read: " + f.message)};
        action = {Action::Kind::Undecided, "the rule cannot be read: " + f.message};
    }

    TraceRule rule;
    rule.text = text;
    rule.evaluate = [conds, action](const Packet& p) {
        RuleEval ev;
        ev.action = action;
        ev.match = Tri::Yes;
        for (const auto& c : conds) {
            std::string why;
            const Tri r = c(p, why);
            if (r == Tri::Unknown && ev.unknownWhy.empty())
                ev.unknownWhy = why;
            ev.match = triAnd(ev.match, r);
            if (ev.match == Tri::No)
                break;
        }
        return ev;
    };
    chainIt->second.rules.push_back(std::move(rule));
}

std::vector<std::string> IptablesRuleset::tableNames() const
{
    std::vector<std::string> out;
    for (const auto& t : m_tables)
        out.push_back(t.first);
    return out;
}

std::vector<Stage> IptablesRuleset::stages() const
{
    // The fixed priorities iptables registers its tables at (NF_IP_PRI_*).
    struct Hooked {
        const char* table;
        const char* chain;
        int hookOrder;
        int priority;
    };
    static const Hooked kHooks[] = {
        {"raw", "PREROUTING", 1, -300},  {"mangle", "PREROUTING", 1, -150}, {"nat", "PREROUTING", 1, -100},
        {"mangle", "INPUT", 2, -150},    {"filter", "INPUT", 2, 0},         {"security", "INPUT", 2, 50},
    };
    std::vector<Stage> out;
    for (const auto& h : kHooks)
        for (const auto& [name, chains] : m_tables) {
            if (name != h.table || !chains->count(h.chain))
                continue;
            Stage s;
            s.backend = m_backend;
            s.family = m_family;
            s.table = name;
            s.chain = h.chain;
            s.hookOrder = h.hookOrder;
            s.priority = h.priority;
            s.chains = chains;
            s.tool = m_tool;
            out.push_back(std::move(s));
        }
    return out;
}

} // namespace fwcheck
