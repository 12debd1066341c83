#include "SshdCheck.h"

#include <fnmatch.h>

#include <algorithm>
#include <sstream>

#include "Address.h"

namespace fwcheck {

std::map<std::string, std::vector<std::string>> parseSshdT(const std::string& text)
{
    std::map<std::string, std::vector<std::string>> out;
    std::istringstream in(text);
    std::string line;
    while (std::getline(in, line)) {
        const auto sp = line.find(' ');
        if (sp == std::string::npos || sp == 0)
            continue;
        out[line.substr(0, sp)].push_back(line.substr(sp + 1));
    }
    return out;
}

bool sshWildcard(const std::string& pattern, const std::string& text)
{
    return ::fnmatch(pattern.c_str(), text.c_str(), FNM_NOESCAPE) == 0;
}

namespace {

// One host list entry: a wildcard or a CIDR block, compared with the name and address.
bool hostItemMatches(const std::string& item, const std::string& host, const std::string& address)
{
    if (item.find('/') != std::string::npos) {
        auto spec = AddressSpec::parse(item);
        auto a = Address::parse(address);
        return spec && a && spec->mask == std::nullopt && spec->matches(*a);
    }
    return sshWildcard(item, host) || sshWildcard(item, address);
}

// A comma-separated host list with "!" negations: a negated match wins.
bool hostListMatches(const std::string& list, const std::string& host, const std::string& address)
{
    std::istringstream in(list);
    std::string item;
    bool positive = false;
    while (std::getline(in, item, ',')) {
        const bool neg = !item.empty() && item[0] == '!';
        if (hostItemMatches(neg ? item.substr(1) : item, host, address)) {
            if (neg)
                return false;
            positive = true;
        }
    }
    return positive;
}

std::string join(const std::vector<std::string>& v, const std::string& sep = " ")
{
    std::string s;
    for (const auto& x : v)
        s += (s.empty() ? "" : sep) + x;
    return s;
}

struct Listen {
    std::string address;
    unsigned port = 0;
};

std::optional<Listen> parseListen(const std::string& v)
{
    // "0.0.0.0:22", "[::]:22", and on newer sshd "0.0.0.0:22 rdomain x".
    std::string s = v.substr(0, v.find(' '));
    const auto colon = s.rfind(':');
    if (colon == std::string::npos)
        return std::nullopt;
    std::string addr = s.substr(0, colon);
    if (addr.size() >= 2 && addr.front() == '[' && addr.back() == ']')
        addr = addr.substr(1, addr.size() - 2);
    const std::string port = s.substr(colon + 1);
    if (port.empty() || port.find_first_not_of("0123456789") != std::string::npos || port.size() > 5)
        return std::nullopt;
    return Listen{addr, static_cast<unsigned>(std::stoul(port))};
}

const std::string kReload = "sshd -t && systemctl reload ssh";

} // namespace

bool sshUserMatches(const std::string& pattern, const std::string& user, const std::string& host,
                    const std::string& address)
{
    const auto at = pattern.find('@');
    if (at == std::string::npos)
        return sshWildcard(pattern, user);
    return sshWildcard(pattern.substr(0, at), user) && hostListMatches(pattern.substr(at + 1), host, address);
}

std::vector<Finding> checkSshd(const std::map<std::string, std::vector<std::string>>& eff, const SshdQuestion& q,
                               const std::string& configPath)
{
    std::vector<Finding> out;
    auto values = [&](const std::string& key) {
        auto it = eff.find(key);
        return it == eff.end() ? std::vector<std::string>{} : it->second;
    };
    const std::string where = " (master " + q.masterAddress + ")";

    // Listening address and port.
    std::vector<Listen> listens;
    for (const auto& v : values("listenaddress"))
        if (auto l = parseListen(v))
            listens.push_back(*l);
    auto dst = Address::parse(q.listenAddress);
    bool portSeen = false, reachable = false;
    std::vector<std::string> shown;
    for (const auto& l : listens) {
        shown.push_back((l.address.find(':') != std::string::npos ? "[" + l.address + "]" : l.address) + ":" +
                        std::to_string(l.port));
        if (l.port != q.port)
            continue;
        portSeen = true;
        auto la = Address::parse(l.address);
        if (!la || !dst)
            continue;
        const bool wildcard = (la->isV4() && l.address == "0.0.0.0") || (!la->isV4() && l.address == "::");
        if (la->family() == dst->family() && (wildcard || *la == *dst))
            reachable = true;
    }
    if (!listens.empty() && !portSeen) {
        std::vector<std::string> ports;
        for (const auto& l : listens)
            if (std::find(ports.begin(), ports.end(), std::to_string(l.port)) == ports.end())
                ports.push_back(std::to_string(l.port));
        out.push_back({"sshd.port", severity::kError,
                       "sshd listens on port " + join(ports, ", ") + " but ferry.yml says the master connects to port " +
                           std::to_string(q.port),
                       "Add 'Port " + std::to_string(q.port) + "' to " + configPath + " and run: " + kReload +
                           "\nor set 'node: ssh_port: " + ports.front() + "' in /etc/ferry/ferry.yml"});
    } else if (!listens.empty() && !reachable && dst) {
        out.push_back({"sshd.listen-address", severity::kError,
                       "sshd listens only on " + join(shown, ", ") + ", not on " + q.listenAddress + " port " +
                           std::to_string(q.port) + " where the master connects" + where,
                       "Add 'ListenAddress " + (dst->isV4() ? q.listenAddress : "[" + q.listenAddress + "]") + ":" +
                           std::to_string(q.port) + "' to " + configPath + " and run: " + kReload});
    }

    // Who may log in from this master.
    for (const auto& p : values("denyusers"))
        if (sshUserMatches(p, q.user, q.masterHost, q.masterAddress))
            out.push_back({"sshd.deny-users", severity::kError,
                           "DenyUsers pattern '" + p + "' refuses user " + q.user + where,
                           "Remove '" + p + "' from the DenyUsers line (or the Match block setting it) in " +
                               configPath + " and run: " + kReload});
    const auto allowUsers = values("allowusers");
    if (!allowUsers.empty()) {
        const bool ok = std::any_of(allowUsers.begin(), allowUsers.end(), [&](const std::string& p) {
            return sshUserMatches(p, q.user, q.masterHost, q.masterAddress);
        });
        if (!ok)
            out.push_back({"sshd.allow-users", severity::kError,
                           "AllowUsers (" + join(allowUsers) + ") does not include user " + q.user + where,
                           "Change the AllowUsers line (or the Match block setting it) in " + configPath +
                               " to: AllowUsers " + join(allowUsers) + " " + q.user + "\nthen run: " + kReload});
    }
    const auto denyGroups = values("denygroups");
    const auto allowGroups = values("allowgroups");
    if ((!denyGroups.empty() || !allowGroups.empty()) && q.account) {
        for (const auto& p : denyGroups)
            for (const auto& g : q.account->groups)
                if (sshWildcard(p, g))
                    out.push_back({"sshd.deny-groups", severity::kError,
                                   "DenyGroups pattern '" + p + "' refuses group " + g + " of user " + q.user + where,
                                   "Remove '" + p + "' from DenyGroups in " + configPath + " and run: " + kReload +
                                       "\nor take the user out of the group: gpasswd -d " + q.user + " " + g});
        if (!allowGroups.empty()) {
            const bool ok = std::any_of(allowGroups.begin(), allowGroups.end(), [&](const std::string& p) {
                return std::any_of(q.account->groups.begin(), q.account->groups.end(),
                                   [&](const std::string& g) { return sshWildcard(p, g); });
            });
            if (!ok)
                out.push_back({"sshd.allow-groups", severity::kError,
                               "AllowGroups (" + join(allowGroups) + ") includes none of user " + q.user +
                                   "'s groups (" + join(q.account->groups, ", ") + ")" + where,
                               "Change the AllowGroups line in " + configPath + " to: AllowGroups " +
                                   join(allowGroups) + " " + q.user + "\nthen run: " + kReload});
        }
    }
    for (const auto& v : values("pubkeyauthentication"))
        if (v == "no")
            out.push_back({"sshd.pubkey", severity::kError,
                           "PubkeyAuthentication is off, and the master logs in with its key" + where,
                           "Set 'PubkeyAuthentication yes' in " + configPath + " and run: " + kReload});
    return out;
}

} // namespace fwcheck
