#include "HostsAccess.h"

#include <fnmatch.h>

#include <algorithm>
#include <sstream>

namespace fwcheck {

namespace {

std::string trim(const std::string& s)
{
    const auto b = s.find_first_not_of(" \t");
    if (b == std::string::npos)
        return {};
    return s.substr(b, s.find_last_not_of(" \t") - b + 1);
}

std::string lower(std::string s)
{
    std::transform(s.begin(), s.end(), s.begin(), [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
    return s;
}

std::vector<std::string> words(const std::string& list)
{
    std::vector<std::string> out;
    std::string cur;
    for (char c : list) {
        if (c == ' ' || c == '\t' || c == ',') {
            if (!cur.empty())
                out.push_back(cur);
            cur.clear();
        } else {
            cur += c;
        }
    }
    if (!cur.empty())
        out.push_back(cur);
    return out;
}

// Splits the top-level ':' separators, ignoring those inside [v6] brackets.
std::vector<std::string> fields(const std::string& line)
{
    std::vector<std::string> out;
    std::string cur;
    int bracket = 0;
    for (char c : line) {
        if (c == '[')
            ++bracket;
        else if (c == ']')
            bracket = std::max(0, bracket - 1);
        if (c == ':' && bracket == 0 && out.size() < 2) {
            out.push_back(cur);
            cur.clear();
        } else {
            cur += c;
        }
    }
    out.push_back(cur);
    return out;
}

struct Match {
    Tri result;
    std::string why;
};

Match matchClientPattern(const std::string& pat, const HostsClient& c)
{
    const std::string addr = c.address.toString();
    const std::string upper = pat;
    if (upper == "ALL")
        return {Tri::Yes, {}};
    if (upper == "LOCAL") {
        if (c.name.empty())
            return {Tri::Unknown, "pattern LOCAL depends on the master's host name, which is not known"};
        return {tri(c.name.find('.') == std::string::npos), {}};
    }
    if (upper == "KNOWN" || upper == "UNKNOWN" || upper == "PARANOID")
        return {Tri::Unknown, "pattern " + upper + " depends on name service lookups of the master"};
    if (pat.empty())
        return {Tri::No, {}};
    if (pat[0] == '@')
        return {Tri::Unknown, "netgroup pattern '" + pat + "' cannot be evaluated"};
    if (pat[0] == '/')
        return {Tri::Unknown, "file pattern '" + pat + "' is not evaluated"};
    if (pat.find('@') != std::string::npos)
        return {Tri::Unknown, "user@host pattern '" + pat + "' needs an ident lookup"};
    if (pat[0] == '.') {
        if (c.name.empty())
            return {Tri::Unknown, "pattern '" + pat + "' matches host names, and the master's name is not known"};
        const std::string n = lower(c.name), p = lower(pat);
        return {tri(n.size() > p.size() && n.compare(n.size() - p.size(), p.size(), p) == 0), {}};
    }
    if (pat.back() == '.') {
        // "net." patterns: a textual prefix of a dotted IPv4 address.
        if (!c.address.isV4())
            return {Tri::No, {}};
        return {tri(addr.compare(0, pat.size(), pat) == 0), {}};
    }
    if (pat[0] == '[') {
        const auto close = pat.find(']');
        if (close == std::string::npos)
            return {Tri::Unknown, "pattern '" + pat + "' has no closing ']'"};
        auto net = Address::parse(pat.substr(1, close - 1));
        if (!net || net->isV4())
            return {Tri::Unknown, "pattern '" + pat + "' is not an IPv6 address"};
        unsigned len = 128;
        if (close + 1 < pat.size()) {
            const std::string rest = pat.substr(close + 1);
            if (rest.size() < 2 || rest[0] != '/' || rest.find_first_not_of("0123456789", 1) != std::string::npos ||
                rest.size() > 4)
                return {Tri::Unknown, "pattern '" + pat + "' is not [address]/prefix"};
            len = static_cast<unsigned>(std::stoul(rest.substr(1)));
            if (len > 128)
                return {Tri::Unknown, "pattern '" + pat + "' has a prefix longer than 128"};
        }
        return {tri(c.address.inPrefix(*net, len)), {}};
    }
    if (pat.find('/') != std::string::npos) {
        auto spec = AddressSpec::parse(pat);
        if (!spec || !spec->network.isV4())
            return {Tri::Unknown, "pattern '" + pat + "' is not address/mask or address/prefix"};
        return {tri(spec->matches(c.address)), {}};
    }
    if (pat.find_first_of("*?") != std::string::npos) {
        if (::fnmatch(pat.c_str(), addr.c_str(), 0) == 0)
            return {Tri::Yes, {}};
        if (c.name.empty())
            return {Tri::Unknown, "wildcard pattern '" + pat + "' may match the master's host name, which is not known"};
        return {tri(::fnmatch(lower(pat).c_str(), lower(c.name).c_str(), 0) == 0), {}};
    }
    if (auto a = Address::parse(pat))
        return {tri(*a == c.address), {}};
    if (pat.find_first_not_of("0123456789.") == std::string::npos)
        return {Tri::Unknown, "pattern '" + pat + "' looks like an address but is not one"};
    // A host name.
    if (c.name.empty())
        return {Tri::Unknown, "pattern '" + pat + "' is a host name, and the master's name is not known"};
    return {tri(lower(pat) == lower(c.name)), {}};
}

Match matchDaemonPattern(const std::string& pat, const std::string& daemon, const HostsClient& c)
{
    if (pat == "ALL")
        return {Tri::Yes, {}};
    if (const auto at = pat.find('@'); at != std::string::npos) {
        // daemon@host: host is matched against the server end, the node
        // address the master connects to, with the client pattern forms.
        const Match d = matchDaemonPattern(pat.substr(0, at), daemon, c);
        if (d.result == Tri::No)
            return d;
        if (!c.server)
            return {Tri::Unknown, "daemon pattern '" + pat + "' depends on which local address is used"};
        const Match h = matchClientPattern(pat.substr(at + 1), HostsClient{*c.server, {}, std::nullopt});
        if (h.result == Tri::Unknown)
            return {Tri::Unknown, "daemon pattern '" + pat + "': " + h.why};
        return {triAnd(d.result, h.result), {}};
    }
    if (pat.find_first_of("*?") != std::string::npos)
        return {tri(::fnmatch(pat.c_str(), daemon.c_str(), 0) == 0), {}};
    return {tri(pat == daemon), {}};
}

// "a b EXCEPT c d EXCEPT e": list matches when a or b matches and the rest
// (itself an EXCEPT list) does not.
template <typename F>
Match matchList(const std::vector<std::string>& items, std::size_t from, F&& one)
{
    std::size_t except = items.size();
    for (std::size_t i = from; i < items.size(); ++i)
        if (items[i] == "EXCEPT") {
            except = i;
            break;
        }
    Match head{Tri::No, {}};
    for (std::size_t i = from; i < except; ++i) {
        Match m = one(items[i]);
        if (m.result == Tri::Yes) {
            head = m;
            break;
        }
        if (m.result == Tri::Unknown && head.result == Tri::No)
            head = m;
    }
    if (head.result == Tri::No || except == items.size())
        return head;
    Match rest = matchList(items, except + 1, one);
    if (rest.result == Tri::Yes)
        return {Tri::No, {}};
    if (rest.result == Tri::Unknown)
        return {Tri::Unknown, rest.why};
    return head;
}

} // namespace

HostsAccess::HostsAccess(HostsFile allow, HostsFile deny, std::string daemon)
    : m_daemon(std::move(daemon)), m_allowPath(allow.path), m_denyPath(deny.path)
{
    m_allow = parse(allow);
    m_deny = parse(deny);
}

std::vector<HostsAccess::Rule> HostsAccess::parse(const HostsFile& f)
{
    std::vector<Rule> rules;
    if (!f.content)
        return rules;
    std::istringstream in(*f.content);
    std::string raw, line;
    int lineNo = 0, startLine = 0;
    while (std::getline(in, raw)) {
        ++lineNo;
        if (line.empty())
            startLine = lineNo;
        if (!raw.empty() && raw.back() == '\\') {
            line += raw.substr(0, raw.size() - 1) + " ";
            continue;
        }
        line += raw;
        const std::string t = trim(line);
        line.clear();
        if (t.empty() || t[0] == '#')
            continue;
        auto parts = fields(t);
        if (parts.size() < 2) {
            m_problems.push_back(f.path + ":" + std::to_string(startLine) + ": missing ':' separator, libwrap ignores '" +
                                 t + "'");
            continue;
        }
        Rule r;
        r.line = startLine;
        r.text = t;
        r.daemons = trim(parts[0]);
        r.clients = trim(parts[1]);
        r.options = parts.size() > 2 ? trim(parts[2]) : "";
        if (r.daemons.empty() || r.clients.empty()) {
            m_problems.push_back(f.path + ":" + std::to_string(startLine) + ": empty daemon or client list in '" + t + "'");
            continue;
        }
        rules.push_back(r);
    }
    return rules;
}

HostsDecision HostsAccess::decide(const HostsClient& client) const
{
    auto scan = [&](const std::vector<Rule>& rules, const std::string& path,
                    HostsDecision::Kind onMatch) -> std::optional<HostsDecision> {
        for (const auto& r : rules) {
            const Match d = matchList(words(r.daemons), 0, [&](const std::string& p) { return matchDaemonPattern(p, m_daemon, client); });
            if (d.result == Tri::No)
                continue;
            const Match c = matchList(words(r.clients), 0, [&](const std::string& p) { return matchClientPattern(p, client); });
            if (c.result == Tri::No)
                continue;
            HostsDecision dec;
            dec.file = path;
            dec.line = r.line;
            dec.text = r.text;
            if (d.result == Tri::Unknown || c.result == Tri::Unknown) {
                dec.kind = HostsDecision::Kind::Undecided;
                dec.why = d.result == Tri::Unknown ? d.why : c.why;
                return dec;
            }
            dec.kind = onMatch;
            // Debian's libwrap understands option fields (hosts_options(5)):
            // "allow" and "deny" override the file's meaning; "twist"
            // replaces sshd with another program.
            std::istringstream opts(r.options);
            std::string opt;
            while (std::getline(opts, opt, ':')) {
                const auto w = words(opt);
                if (w.empty())
                    continue;
                const std::string o = lower(w[0]);
                if (o == "allow")
                    dec.kind = HostsDecision::Kind::Allowed;
                else if (o == "deny")
                    dec.kind = HostsDecision::Kind::Denied;
                else if (o == "twist") {
                    dec.kind = HostsDecision::Kind::Denied;
                    break;
                }
            }
            return dec;
        }
        return std::nullopt;
    };
    if (auto d = scan(m_allow, m_allowPath, HostsDecision::Kind::Allowed))
        return *d;
    if (auto d = scan(m_deny, m_denyPath, HostsDecision::Kind::Denied))
        return *d;
    return {};
}

} // namespace fwcheck
