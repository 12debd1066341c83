#include "NftRuleset.h"

#include <algorithm>
#include <functional>
#include <sstream>

namespace fwcheck {

using nlohmann::json;

namespace {

struct Unreadable {
    std::string why;
};

// What a left-hand expression evaluates to for our packet.
struct Value {
    enum class Kind { Address, Number, Name, CtState, CtStatus, TcpFlags, FibOif, FibType, NotApplicable, Unknown } kind;
    Address address;
    unsigned number = 0;
    std::string name;
    std::string why;  // for Unknown / NotApplicable
};

Value unknownValue(std::string why) { return {Value::Kind::Unknown, {}, 0, {}, std::move(why)}; }

// Rule text for people. Both functions bound their depth: `nft -j` is
// outside input, and a nested expression must not run the stack out.
constexpr int kMaxRenderDepth = 32;

std::string render(const json& j, int depth = 0);

std::string renderExpr(const json& e, int depth)
{
    if (depth > kMaxRenderDepth)
        return "...";
    if (e.is_object() && e.size() == 1) {
        const auto kv = e.items().begin();
        const std::string k = kv.key();
        const json& v = kv.value();
        if (k == "payload" && v.is_object() && v.contains("protocol"))
            return v.value("protocol", "") + " " + v.value("field", "");
        if (k == "meta" && v.is_object())
            return "meta " + v.value("key", "");
        if (k == "ct" && v.is_object())
            return "ct " + v.value("key", "");
        if (k == "prefix" && v.is_object())
            return render(v.value("addr", json()), depth + 1) + "/" + std::to_string(v.value("len", 0));
        if (k == "range" && v.is_array() && v.size() == 2)
            return render(v[0], depth + 1) + "-" + render(v[1], depth + 1);
        if (k == "set") {
            std::string s = "{ ";
            bool first = true;
            for (const auto& x : v) {
                s += (first ? "" : ", ") + render(x, depth + 1);
                first = false;
            }
            return s + " }";
        }
        if (k == "fib")
            return "fib";
        // One of the expression keys in a shape not known above: as JSON.
        // (render would hand it back here: an endless recursion.)
        if (k == "payload" || k == "meta" || k == "ct" || k == "prefix" || k == "range")
            return e.dump();
    }
    return render(e, depth + 1);
}

std::string render(const json& j, int depth)
{
    if (depth > kMaxRenderDepth)
        return "...";
    if (j.is_string())
        return j.get<std::string>();
    if (j.is_number() || j.is_boolean())
        return j.dump();
    if (j.is_array()) {
        std::string s;
        for (const auto& x : j)
            s += (s.empty() ? "" : ",") + render(x, depth + 1);
        return s;
    }
    if (j.is_object() && j.size() == 1) {
        const auto kv = j.items().begin();
        const std::string k = kv.key();
        const json& v = kv.value();
        if (k == "prefix" || k == "range" || k == "set" || k == "payload" || k == "meta" || k == "ct")
            return renderExpr(j, depth + 1);
        if (v.is_null())
            return k;
        if (k == "match" && v.is_object())
            return renderExpr(v.value("left", json()), depth + 1) + " " + v.value("op", "") + " " +
                   renderExpr(v.value("right", json()), depth + 1);
        if ((k == "jump" || k == "goto") && v.is_object())
            return k + " " + v.value("target", "");
        if (k == "counter" || k == "comment")
            return "";
        return k;
    }
    return j.dump();
}

std::string renderRule(const json& expr)
{
    std::string s;
    for (const auto& e : expr) {
        auto r = render(e);
        if (!r.empty())
            s += (s.empty() ? "" : " ") + r;
    }
    return s;
}

Value leftValue(const json& left, const Packet& p)
{
    const bool v4 = p.source.isV4();
    if (!left.is_object() || left.size() != 1)
        return unknownValue("expression " + left.dump() + " cannot be evaluated");
    const auto kv = left.items().begin();
        const std::string k = kv.key();
        const json& v = kv.value();
    if (k == "payload") {
        if (!v.contains("protocol"))
            return unknownValue("raw payload expression cannot be evaluated");
        const std::string proto = v.value("protocol", ""), field = v.value("field", "");
        if (proto == "ip" || proto == "ip6") {
            if ((proto == "ip") != v4)
                return {Value::Kind::NotApplicable, {}, 0, {}, {}};
            if (field == "saddr")
                return {Value::Kind::Address, p.source, 0, {}, {}};
            if (field == "daddr")
                return {Value::Kind::Address, p.destination, 0, {}, {}};
            if (field == "protocol" || field == "nexthdr")
                return p.isTcp() ? Value{Value::Kind::Name, {}, 6, "tcp", {}} : Value{Value::Kind::Name, {}, 58, "icmpv6", {}};
            if (field == "version")
                return {Value::Kind::Number, {}, v4 ? 4u : 6u, {}, {}};
            return unknownValue(proto + " " + field + " cannot be evaluated");
        }
        if (proto == "icmpv6" && !p.isTcp()) {
            if (field == "type")
                return {Value::Kind::Name, {}, p.icmpType, p.icmpType == 135 ? "nd-neighbor-solicit" : "nd-neighbor-advert", {}};
            return unknownValue("icmpv6 " + field + " cannot be evaluated");
        }
        if ((proto == "tcp" || proto == "th") && !p.isTcp())
            return {Value::Kind::NotApplicable, {}, 0, {}, {}};
        if (proto == "tcp" || proto == "th") {
            if (field == "dport")
                return {Value::Kind::Number, {}, p.destinationPort, {}, {}};
            if (field == "sport")
                return unknownValue("it matches the source port, which the master picks at random");
            if (field == "flags" && proto == "tcp")
                return {Value::Kind::TcpFlags, {}, 2, {}, {}};
            return unknownValue(proto + " " + field + " cannot be evaluated");
        }
        if (proto == "udp" || proto == "udplite" || proto == "icmp" || proto == "icmpv6" || proto == "sctp" ||
            proto == "dccp" || proto == "esp" || proto == "ah" || proto == "comp" || proto == "igmp")
            return {Value::Kind::NotApplicable, {}, 0, {}, {}};
        return unknownValue(proto + " " + field + " cannot be evaluated");
    }
    if (k == "meta") {
        const std::string key = v.value("key", "");
        if (key == "iifname" || key == "iif") {
            if (p.inInterface.empty())
                return unknownValue("the interface the master's packets arrive on is unknown");
            return {Value::Kind::Name, {}, 0, p.inInterface, {}};
        }
        if (key == "l4proto")
            return p.isTcp() ? Value{Value::Kind::Name, {}, 6, "tcp", {}} : Value{Value::Kind::Name, {}, 58, "icmpv6", {}};
        if (key == "nfproto")
            return {Value::Kind::Name, {}, v4 ? 2u : 10u, v4 ? "ipv4" : "ipv6", {}};
        if (key == "protocol")
            return {Value::Kind::Name, {}, v4 ? 0x0800u : 0x86ddu, v4 ? "ip" : "ip6", {}};
        if (key == "pkttype")
            return {Value::Kind::Name, {}, 0, "host", {}};
        return unknownValue("meta " + key + " cannot be evaluated");
    }
    if (k == "ct") {
        const std::string key = v.value("key", "");
        if (key == "state")
            return {Value::Kind::CtState, {}, 0, p.isTcp() ? "new" : "untracked", {}};
        if (key == "status")
            return {Value::Kind::CtStatus, {}, 0, {}, {}};
        if (key == "direction")
            return {Value::Kind::Name, {}, 0, "original", {}};
        return unknownValue("ct " + key + " cannot be evaluated");
    }
    if (k == "fib") {
        const std::string result = v.value("result", "");
        std::vector<std::string> flags;
        if (v.contains("flags")) {
            if (v["flags"].is_array())
                flags = v["flags"].get<std::vector<std::string>>();
            else if (v["flags"].is_string())
                flags.push_back(v["flags"].get<std::string>());
        }
        const bool saddr = std::find(flags.begin(), flags.end(), "saddr") != flags.end();
        const bool daddr = std::find(flags.begin(), flags.end(), "daddr") != flags.end();
        if ((result == "oif" || result == "oifname") && saddr)
            return {Value::Kind::FibOif, {}, 0, {}, {}};
        if (result == "type" && daddr)
            return {Value::Kind::FibType, {}, 0, "local", {}};
        return unknownValue("fib expression cannot be evaluated");
    }
    if (k == "&") {
        // tcp flags & (syn | ack) == syn
        if (v.is_array() && v.size() == 2) {
            auto inner = leftValue(v[0], p);
            if (inner.kind == Value::Kind::TcpFlags) {
                unsigned mask = 0;
                const json& m = v[1];
                auto bit = [](const std::string& f) -> unsigned {
                    static const std::map<std::string, unsigned> kBits = {
                        {"fin", 1}, {"syn", 2}, {"rst", 4}, {"psh", 8}, {"ack", 16}, {"urg", 32}, {"ecn", 64}, {"cwr", 128}};
                    auto it = kBits.find(f);
                    if (it == kBits.end())
                        throw Unreadable{"unknown tcp flag '" + f + "'"};
                    return it->second;
                };
                if (m.is_string())
                    mask = bit(m.get<std::string>());
                else if (m.is_array())
                    for (const auto& f : m)
                        mask |= f.is_string() ? bit(f.get<std::string>()) : f.get<unsigned>();
                else if (m.is_number_unsigned())
                    mask = m.get<unsigned>();
                if (mask & (64 | 128))
                    return unknownValue("it tests the ECN flags of the SYN, which depend on the master");
                return {Value::Kind::TcpFlags, {}, 2u & mask, {}, {}};
            }
            if (inner.kind == Value::Kind::NotApplicable)
                return inner;
        }
        return unknownValue("bitwise expression cannot be evaluated");
    }
    return unknownValue(k + " expression cannot be evaluated");
}

const std::map<std::string, unsigned> kCtStates = {
    {"invalid", 1}, {"established", 2}, {"related", 4}, {"new", 8}, {"untracked", 64}};

// Does one right-hand element equal (or contain) the value?
Tri elementMatches(const Value& v, const json& r, const std::map<std::string, json>& sets, int depth);

Tri setMatches(const Value& v, const json& elems, const std::map<std::string, json>& sets, int depth)
{
    Tri result = Tri::No;
    for (const auto& e : elems) {
        const json& item = e.is_object() && e.contains("elem") ? e["elem"].value("val", json()) : e;
        const Tri t = elementMatches(v, item, sets, depth + 1);
        if (t == Tri::Yes)
            return t;
        if (t == Tri::Unknown)
            result = Tri::Unknown;
    }
    return result;
}

unsigned portNumber(const json& r)
{
    if (r.is_number_unsigned())
        return r.get<unsigned>();
    if (r.is_number_integer())
        return static_cast<unsigned>(r.get<int>());
    if (r.is_string()) {
        static const std::map<std::string, unsigned> kServices = {{"ssh", 22}, {"http", 80}, {"https", 443}};
        auto it = kServices.find(r.get<std::string>());
        if (it != kServices.end())
            return it->second;
        const std::string s = r.get<std::string>();
        if (!s.empty() && s.find_first_not_of("0123456789") == std::string::npos && s.size() < 6)
            return static_cast<unsigned>(std::stoul(s));
    }
    throw Unreadable{"'" + r.dump() + "' is not a port"};
}

Tri elementMatches(const Value& v, const json& r, const std::map<std::string, json>& sets, int depth)
{
    if (depth > 8)
        throw Unreadable{"sets nested too deeply"};
    if (r.is_string() && !r.get<std::string>().empty() && r.get<std::string>()[0] == '@') {
        auto it = sets.find(r.get<std::string>().substr(1));
        if (it == sets.end())
            throw Unreadable{"set " + r.get<std::string>() + " does not exist"};
        return setMatches(v, it->second, sets, depth);
    }
    if (r.is_object() && r.contains("set"))
        return setMatches(v, r["set"], sets, depth);
    if (r.is_array() && v.kind == Value::Kind::CtState)
        return setMatches(v, r, sets, depth);
    switch (v.kind) {
    case Value::Kind::Address: {
        if (r.is_string()) {
            auto a = Address::parse(r.get<std::string>());
            if (!a)
                throw Unreadable{"'" + r.get<std::string>() + "' is not an address"};
            return tri(*a == v.address);
        }
        if (r.is_object() && r.contains("prefix")) {
            auto a = Address::parse(r["prefix"].value("addr", ""));
            if (!a)
                throw Unreadable{"bad prefix " + r.dump()};
            return tri(v.address.inPrefix(*a, r["prefix"].value("len", 0u)));
        }
        if (r.is_object() && r.contains("range") && r["range"].size() == 2) {
            auto lo = Address::parse(r["range"][0].get<std::string>());
            auto hi = Address::parse(r["range"][1].get<std::string>());
            if (!lo || !hi)
                throw Unreadable{"bad range " + r.dump()};
            return tri(v.address.inRange(*lo, *hi));
        }
        break;
    }
    case Value::Kind::Number: {
        if (r.is_object() && r.contains("range") && r["range"].size() == 2)
            return tri(v.number >= portNumber(r["range"][0]) && v.number <= portNumber(r["range"][1]));
        return tri(portNumber(r) == v.number);
    }
    case Value::Kind::Name: {
        if (r.is_number())
            return tri(r.get<unsigned>() == v.number);
        if (r.is_string()) {
            std::string s = r.get<std::string>();
            if (!s.empty() && s.back() == '*')
                return tri(v.name.compare(0, s.size() - 1, s, 0, s.size() - 1) == 0);
            // Protocol numbers and names are both printed.
            if (s == "ipv6-icmp")
                s = "icmpv6";
            return tri(s == v.name);
        }
        break;
    }
    case Value::Kind::CtState: {
        if (r.is_string()) {
            if (!kCtStates.count(r.get<std::string>()))
                throw Unreadable{"unknown ct state '" + r.get<std::string>() + "'"};
            return tri(r.get<std::string>() == v.name);
        }
        break;
    }
    case Value::Kind::TcpFlags: {
        if (r.is_string()) {
            const std::string f = r.get<std::string>();
            const unsigned bit = f == "syn" ? 2 : f == "ack" ? 16 : f == "fin" ? 1 : f == "rst" ? 4 : f == "psh" ? 8 : f == "urg" ? 32 : 1000;
            if (bit == 1000)
                throw Unreadable{"unknown tcp flag '" + f + "'"};
            return tri(bit == v.number);
        }
        if (r.is_number())
            return tri(r.get<unsigned>() == v.number);
        if (r.is_array()) {
            unsigned bits = 0;
            for (const auto& f : r) {
                const std::string s = f.get<std::string>();
                bits |= s == "syn" ? 2 : s == "ack" ? 16 : s == "fin" ? 1 : s == "rst" ? 4 : s == "psh" ? 8 : 32;
            }
            return tri(bits == v.number);
        }
        break;
    }
    case Value::Kind::CtStatus:
        // A connection's first packet has none of the status bits (no
        // NAT unless a nat rule matched, which is reported on its own).
        if (r.is_string() || r.is_array())
            return Tri::No;
        break;
    case Value::Kind::FibOif:
        // "missing" is false in JSON; the master's address has a route.
        if (r.is_boolean())
            return tri(r.get<bool>());
        return Tri::Unknown;
    case Value::Kind::FibType:
        if (r.is_string())
            return tri(r.get<std::string>() == "local");
        break;
    default: break;
    }
    return Tri::Unknown;
}

Tri evaluateMatch(const json& m, const Packet& p, const std::map<std::string, json>& sets, std::string& why)
{
    const std::string op = m.value("op", "==");
    const Value v = leftValue(m.value("left", json()), p);
    if (v.kind == Value::Kind::NotApplicable)
        return Tri::No;  // the implicit protocol dependency fails
    if (v.kind == Value::Kind::Unknown) {
        why = v.why;
        return Tri::Unknown;
    }
    const json& right = m.value("right", json());
    if (op == "==" || op == "in") {
        // ct state "in" and tcp flags "in" are bit tests: any listed bit.
        if (v.kind == Value::Kind::TcpFlags && op == "in" && !right.is_array() && right.is_string())
            return elementMatches(v, right, sets, 0);
        const Tri t = elementMatches(v, right, sets, 0);
        if (t == Tri::Unknown)
            why = "comparison with " + right.dump() + " cannot be evaluated";
        return t;
    }
    if (op == "!=") {
        const Tri t = triNot(elementMatches(v, right, sets, 0));
        if (t == Tri::Unknown)
            why = "comparison with " + right.dump() + " cannot be evaluated";
        return t;
    }
    if ((op == "<" || op == ">" || op == "<=" || op == ">=") && v.kind == Value::Kind::Number) {
        const unsigned n = portNumber(right);
        return tri(op == "<" ? v.number < n : op == ">" ? v.number > n : op == "<=" ? v.number <= n : v.number >= n);
    }
    why = "operator '" + op + "' cannot be evaluated";
    return Tri::Unknown;
}

Action verdictAction(const json& stmt)
{
    if (!stmt.is_object() || stmt.size() != 1)
        return {Action::Kind::Undecided, "statement cannot be evaluated"};
    const auto kv = stmt.items().begin();
        const std::string k = kv.key();
        const json& v = kv.value();
    if (k == "accept")
        return {Action::Kind::Accept, {}};
    if (k == "drop")
        return {Action::Kind::Drop, {}};
    if (k == "reject")
        return {Action::Kind::Reject, {}};
    if (k == "return")
        return {Action::Kind::Return, {}};
    if (k == "continue")
        return {Action::Kind::None, {}};
    if (k == "jump")
        return {Action::Kind::Jump, v.value("target", "")};
    if (k == "goto")
        return {Action::Kind::Goto, v.value("target", "")};
    return {Action::Kind::Undecided, "verdict '" + k + "' cannot be evaluated"};
}

} // namespace

std::map<std::string, std::vector<std::string>> parseIngressDevices(const std::string& text)
{
    std::map<std::string, std::vector<std::string>> out;
    std::istringstream in(text);
    std::string line, table, chain;
    while (std::getline(in, line)) {
        std::istringstream ws(line);
        std::vector<std::string> w;
        for (std::string x; ws >> x;)
            w.push_back(x);
        if (w.size() >= 3 && w[0] == "table") {
            table = w[1] == "netdev" ? w[2] : "";
            continue;
        }
        if (w.size() >= 2 && w[0] == "chain") {
            chain = w[1];
            continue;
        }
        if (table.empty())
            continue;
        auto strip = [](std::string d) {
            while (!d.empty() && (d.back() == ',' || d.back() == ';'))
                d.pop_back();
            if (d.size() >= 2 && d.front() == '"' && d.back() == '"')
                d = d.substr(1, d.size() - 2);
            return d;
        };
        for (std::size_t i = 0; i + 1 < w.size(); ++i) {
            if (w[i] == "device") {
                out[table + " " + chain] = {strip(w[i + 1])};
            } else if (w[i] == "devices" && i + 2 < w.size() && w[i + 1] == "=" && w[i + 2] == "{") {
                std::vector<std::string> devs;
                for (std::size_t j = i + 3; j < w.size() && w[j] != "}"; ++j)
                    devs.push_back(strip(w[j]));
                out[table + " " + chain] = devs;
            }
        }
    }
    return out;
}

namespace {

// A member of an unexpected type (a number where nft writes a string) makes
// nlohmann's value()/get() throw while reading; that is a problem of the
// listing, reported like a JSON that cannot be parsed, not an exception out
// of the constructor (fuzz-nft found one: an object whose "family" or
// "table" is no string).
std::string typeProblem(const json::exception& e)
{
    return std::string("the nft JSON has a member of an unexpected type: ") + e.what();
}

} // namespace

NftRuleset::NftRuleset(const std::string& jsonText, const std::set<std::string>& skipTables,
                       const std::map<std::string, std::vector<std::string>>& devices)
{
    json doc;
    try {
        doc = json::parse(jsonText);
    } catch (const std::exception& e) {
        m_problems.push_back(std::string("the nft JSON cannot be parsed: ") + e.what());
        return;
    }
    try {
        read(doc, skipTables, devices);
    } catch (const json::exception& e) {
        m_problems.push_back(typeProblem(e));
    }
}

NftRuleset::NftRuleset(const json& doc, const std::set<std::string>& skipTables,
                       const std::map<std::string, std::vector<std::string>>& devices)
{
    try {
        read(doc, skipTables, devices);
    } catch (const json::exception& e) {
        m_problems.push_back(typeProblem(e));
    }
}

void NftRuleset::read(const json& doc, const std::set<std::string>& skipTables,
                      const std::map<std::string, std::vector<std::string>>& devices)
{
    if (!doc.is_object() || !doc.contains("nftables") || !doc["nftables"].is_array()) {
        m_problems.push_back("the nft JSON has no \"nftables\" array");
        return;
    }
    auto findTable = [&](const json& o) -> Table* {
        const std::string fam = o.value("family", ""), name = o.value("table", "");
        for (auto& t : m_tables)
            if (t.family == fam && t.name == name)
                return &t;
        return nullptr;
    };
    // Objects come tables first, then sets and chains, then rules; take two
    // passes anyway so that order does not matter.
    for (const auto& item : doc["nftables"]) {
        if (!item.is_object())
            continue;
        try {
            if (item.contains("table")) {
                const auto& t = item["table"];
                Table tbl;
                tbl.family = t.value("family", "");
                tbl.name = t.value("name", "");
                if (skipTables.count(tbl.family + " " + tbl.name))
                    continue;
                tbl.firewalld = tbl.name == "firewalld";
                m_tables.push_back(std::move(tbl));
            }
        } catch (const std::exception& e) {
            m_problems.push_back(std::string("a table cannot be read: ") + e.what());
        }
    }
    for (const auto& item : doc["nftables"]) {
        if (!item.is_object())
            continue;
        try {
            if (item.contains("chain")) {
                const auto& c = item["chain"];
                Table* t = findTable(c);
                if (!t)
                    continue;
                TraceChain chain;
                chain.name = c.value("name", "");
                const std::string policy = c.value("policy", "accept");
                chain.policy = policy == "drop" ? Action::Kind::Drop : Action::Kind::Accept;
                if (c.contains("hook")) {
                    Table::Base b;
                    b.chain = chain.name;
                    b.hook = c.value("hook", "");
                    b.type = c.value("type", "filter");
                    if (t->family == "netdev") {
                        if (c.contains("dev") && c["dev"].is_string())
                            b.devices = std::vector<std::string>{c["dev"].get<std::string>()};
                        else if (c.contains("dev") && c["dev"].is_array())
                            b.devices = c["dev"].get<std::vector<std::string>>();
                        else if (auto d = devices.find(t->name + " " + chain.name); d != devices.end())
                            b.devices = d->second;
                    }
                    if (c.contains("prio") && c["prio"].is_number_integer())
                        b.priority = c["prio"].get<int>();
                    t->bases.push_back(b);
                }
                (*t->chains)[chain.name] = std::move(chain);
            } else if (item.contains("set") || item.contains("map")) {
                const auto& s = item.contains("set") ? item["set"] : item["map"];
                Table* t = findTable(s);
                if (!t)
                    continue;
                t->sets[s.value("name", "")] = s.contains("elem") ? s["elem"] : json::array();
            }
        } catch (const std::exception& e) {
            m_problems.push_back(std::string("a chain or set cannot be read: ") + e.what());
        }
    }
    for (auto& t : m_tables)
        t.sharedSets = std::make_shared<const std::map<std::string, json>>(t.sets);
    for (const auto& item : doc["nftables"]) {
        if (!item.is_object() || !item.contains("rule"))
            continue;
        Table* t = findTable(item["rule"]);
        if (!t)
            continue;
        addRule(*t, item["rule"]);
    }
}

void NftRuleset::addRule(Table& table, const json& rule)
{
    const std::string chainName = rule.value("chain", "");
    auto it = table.chains->find(chainName);
    if (it == table.chains->end()) {
        m_problems.push_back("rule for unknown chain " + chainName + " in table " + table.family + " " + table.name);
        return;
    }
    ++m_ruleCount;
    const json expr = rule.contains("expr") && rule["expr"].is_array() ? rule["expr"] : json::array();
    std::string text = "nft " + table.family + " " + table.name + " chain " + chainName;
    if (rule.contains("handle"))
        text += " handle " + rule["handle"].dump();
    text += ": " + renderRule(expr);
    const std::shared_ptr<ChainMap> chains = table.chains;
    // The closure outlives the parse: it shares the table's sets.
    const auto sets = table.sharedSets;

    TraceRule tr;
    tr.text = text;
    tr.evaluate = [expr, sets](const Packet& p) {
        RuleEval ev;
        ev.match = Tri::Yes;
        try {
            for (const auto& e : expr) {
                if (!e.is_object() || e.size() != 1)
                    throw Unreadable{"expression " + e.dump() + " is not an object"};
                const auto kv = e.items().begin();
        const std::string k = kv.key();
        const json& v = kv.value();
                if (k == "match") {
                    std::string why;
                    const Tri t = evaluateMatch(v, p, *sets, why);
                    if (t == Tri::Unknown && ev.unknownWhy.empty())
                        ev.unknownWhy = why;
                    ev.match = triAnd(ev.match, t);
                    if (ev.match == Tri::No)
                        return ev;
                } else if (k == "counter" || k == "log" || k == "comment" || k == "mangle" ||
                           k == "meta" || k == "ct" || k == "set" || k == "snat" || k == "masquerade") {
                    // Side effects only.
                } else if (k == "limit" || k == "quota" || k == "meter" || k == "xt" || k == "numgen" ||
                           k == "connlimit" || k == "synproxy") {
                    if (ev.unknownWhy.empty())
                        ev.unknownWhy = "statement '" + k + "' cannot be evaluated";
                    ev.match = triAnd(ev.match, Tri::Unknown);
                } else if (k == "vmap") {
                    const Value key = leftValue(v.value("key", json()), p);
                    if (key.kind == Value::Kind::NotApplicable) {
                        ev.match = Tri::No;
                        return ev;
                    }
                    json data = v.value("data", json());
                    if (data.is_string() && !data.get<std::string>().empty() && data.get<std::string>()[0] == '@') {
                        auto s = sets->find(data.get<std::string>().substr(1));
                        if (s == sets->end())
                            throw Unreadable{"map " + data.get<std::string>() + " does not exist"};
                        data = json{{"set", s->second}};
                    }
                    if (!data.is_object() || !data.contains("set"))
                        throw Unreadable{"verdict map cannot be read"};
                    Tri seen = Tri::No;
                    for (const auto& pair : data["set"]) {
                        const json& entry = pair.is_array() ? pair : pair.value("elem", json());
                        if (!entry.is_array() || entry.size() != 2)
                            throw Unreadable{"verdict map entry cannot be read"};
                        Tri t = Tri::Unknown;
                        if (key.kind != Value::Kind::Unknown)
                            t = elementMatches(key, entry[0], *sets, 0);
                        if (t == Tri::No)
                            continue;
                        if (t == Tri::Unknown && ev.unknownWhy.empty())
                            ev.unknownWhy = key.kind == Value::Kind::Unknown ? key.why : "verdict map key cannot be evaluated";
                        ev.action = verdictAction(entry[1]);
                        seen = t;
                        break;
                    }
                    ev.match = triAnd(ev.match, seen);
                    return ev;
                } else if (k == "dnat" || k == "redirect" || k == "tproxy") {
                    ev.action = {Action::Kind::Undecided, "statement '" + k + "' sends the connection elsewhere instead of sshd"};
                    return ev;
                } else if (k == "notrack") {
                    ev.action = {Action::Kind::Undecided, "statement 'notrack' turns connection tracking off, so state matches see untracked"};
                    return ev;
                } else if (k == "queue") {
                    ev.action = {Action::Kind::Undecided, "statement 'queue' hands the packet to a user-space program"};
                    return ev;
                } else {
                    ev.action = verdictAction(e);
                    return ev;
                }
            }
        } catch (const Unreadable& u) {
            ev.match = Tri::Unknown;
            ev.unknownWhy = u.why;
            ev.action = {Action::Kind::Undecided, "the rule cannot be read: " + u.why};
        } catch (const std::exception& x) {
            ev.match = Tri::Unknown;
            ev.unknownWhy = std::string("the rule cannot be read: ") + x.what();
            ev.action = {Action::Kind::Undecided, ev.unknownWhy};
        }
        return ev;
    };
    it->second.rules.push_back(std::move(tr));
}

std::vector<Stage> NftRuleset::stages(Family family) const
{
    std::vector<Stage> out;
    for (const auto& t : m_tables) {
        const bool applies = t.family == "inet" || t.family == "netdev" || (t.family == "ip" && family == Family::V4) ||
                             (t.family == "ip6" && family == Family::V6);
        if (!applies)
            continue;
        for (const auto& b : t.bases) {
            int order;
            if (b.hook == "ingress")
                order = 0;
            else if (b.hook == "prerouting")
                order = 1;
            else if (b.hook == "input")
                order = 2;
            else
                continue;
            Stage s;
            s.backend = "nft";
            s.family = family;
            s.table = t.family + " " + t.name;
            s.chain = b.chain;
            s.hookOrder = order;
            s.priority = b.priority;
            s.tool = t.firewalld ? Tool::Firewalld : Tool::Nft;
            // A table iptables-nft made (iptables' names, no xt matches left
            // it to this reader): the operator's tool is iptables.
            static const std::set<std::string> kIptablesTables = {"filter", "raw", "mangle", "nat", "security"};
            if ((t.family == "ip" || t.family == "ip6") && kIptablesTables.count(t.name) &&
                (b.chain == "INPUT" || b.chain == "PREROUTING")) {
                s.backend = "iptables-nft";
                s.table = t.name;
                s.tool = Tool::Iptables;
                for (const auto& [name, c] : *t.chains) {
                    if (name.rfind("ufw", 0) == 0)
                        s.tool = Tool::Ufw;
                    else if ((name == "INPUT_ZONES" || name.rfind("IN_", 0) == 0) && s.tool != Tool::Ufw)
                        s.tool = Tool::Firewalld;
                }
            }
            if (t.family == "netdev") {
                // A netdev chain sees only its devices' packets: model that
                // as a first rule that returns for other interfaces.
                auto chains = std::make_shared<ChainMap>(*t.chains);
                TraceRule guard;
                guard.text = "nft " + s.table + " chain " + b.chain + " (ingress device list)";
                const auto devs = b.devices;
                guard.evaluate = [devs](const Packet& p) {
                    RuleEval ev;
                    ev.action = {Action::Kind::Return, {}};
                    if (!devs) {
                        ev.match = Tri::Unknown;
                        ev.unknownWhy = "the devices of this ingress chain are unknown";
                    } else if (p.inInterface.empty()) {
                        ev.match = Tri::Unknown;
                        ev.unknownWhy = "the interface the master's packets arrive on is unknown";
                    } else {
                        ev.match = tri(std::find(devs->begin(), devs->end(), p.inInterface) == devs->end());
                    }
                    return ev;
                };
                auto& rules = (*chains)[b.chain].rules;
                rules.insert(rules.begin(), std::move(guard));
                s.chains = chains;
            } else {
                s.chains = t.chains;
            }
            out.push_back(std::move(s));
        }
    }
    return out;
}

} // namespace fwcheck
