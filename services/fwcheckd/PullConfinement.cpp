#include "PullConfinement.h"

#include <algorithm>
#include <cctype>
#include <sstream>

namespace fwcheck {

namespace {

std::string first(const SshdEffective& e, const std::string& key)
{
    const auto it = e.find(key);
    if (it == e.end() || it->second.empty())
        return "";
    std::string v = it->second.front();
    std::transform(v.begin(), v.end(), v.begin(), [](unsigned char c) { return std::tolower(c); });
    return v;
}

bool shellIsPullShell(const PullLogin& login)
{
    return login.account && login.account->shell == login.shell;
}

// The key options of an authorized_keys line (before the key type), split
// at commas outside double quotes; empty when the line starts with the type.
std::vector<std::string> keyOptions(const std::string& line, std::string& rest)
{
    static const char* kTypes[] = {"ssh-", "ecdsa-", "sk-ssh-", "sk-ecdsa-"};
    for (const char* t : kTypes)
        if (line.rfind(t, 0) == 0) {
            rest = line;
            return {};
        }
    std::vector<std::string> out;
    std::string cur;
    bool quoted = false;
    std::size_t i = 0;
    for (; i < line.size(); ++i) {
        const char c = line[i];
        if (c == '\\' && quoted && i + 1 < line.size()) {
            cur += c;
            cur += line[++i];
        } else if (c == '"') {
            quoted = !quoted;
            cur += c;
        } else if (!quoted && c == ',') {
            out.push_back(cur);
            cur.clear();
        } else if (!quoted && (c == ' ' || c == '\t')) {
            break;
        } else {
            cur += c;
        }
    }
    if (!cur.empty())
        out.push_back(cur);
    rest = line.substr(std::min(line.size(), i + 1));
    return out;
}

std::string lower(std::string s)
{
    std::transform(s.begin(), s.end(), s.begin(), [](unsigned char c) { return std::tolower(c); });
    return s;
}

} // namespace

bool sshdConfines(const SshdEffective& e)
{
    return first(e, "disableforwarding") == "yes" && first(e, "permittty") == "no" && first(e, "permituserrc") == "no";
}

std::vector<Finding> checkSshdConfinement(const SshdEffective& e, const PullLogin& login)
{
    std::vector<std::string> missing;
    if (first(e, "disableforwarding") != "yes")
        missing.push_back("DisableForwarding yes");
    if (first(e, "permittty") != "no")
        missing.push_back("PermitTTY no");
    if (first(e, "permituserrc") != "no")
        missing.push_back("PermitUserRC no");
    const std::string force = first(e, "forcecommand");
    if ((force.empty() || force == "none") && !shellIsPullShell(login))
        missing.push_back("ForceCommand " + login.shell + " (or the login shell " + login.shell + ")");
    if (first(e, "authenticationmethods") != "publickey")
        missing.push_back("AuthenticationMethods publickey");
    if (missing.empty())
        return {};
    std::string list;
    for (const auto& m : missing)
        list += (list.empty() ? "" : ", ") + m;
    std::string block = "Match User " + login.user + "\n    AuthenticationMethods publickey\n    DisableForwarding yes\n"
                        "    PermitTTY no\n    PermitUserRC no\n";
    if (!shellIsPullShell(login))
        block += "    ForceCommand " + login.shell + "\n";
    const std::string dir = login.sshdConfigPath + ".d";
    return {{"sshd.pull-not-confined", severity::kWarning,
             "sshd does not confine the pull user " + login.user + " (no Match User " + login.user +
                 " block setting " + list + "): a master's key could forward ports, get a terminal or run ~/.ssh/rc",
             "Write this block to " + dir + "/ferry-pull.conf (Match blocks belong at the end; a drop-in keeps it "
             "there), then: systemctl reload ssh\n" + block}};
}

std::vector<std::string> authorizedKeysFiles(const SshdEffective& e, const Account& account)
{
    std::vector<std::string> out;
    const auto it = e.find("authorizedkeysfile");
    if (it == e.end())
        return out;
    for (const auto& value : it->second) {
        std::istringstream words(value);
        for (std::string w; words >> w;) {
            if (w == "none")
                continue;
            std::string path;
            for (std::size_t i = 0; i < w.size(); ++i) {
                if (w[i] == '%' && i + 1 < w.size()) {
                    const char t = w[++i];
                    if (t == 'h')
                        path += account.home;
                    else if (t == 'u')
                        path += account.name;
                    else if (t == '%')
                        path += '%';
                    else
                        path += std::string("%") + t;  // other tokens stay as they are
                } else {
                    path += w[i];
                }
            }
            if (!path.empty() && path[0] != '/')
                path = account.home + "/" + path;
            if (std::find(out.begin(), out.end(), path) == out.end())
                out.push_back(path);
        }
    }
    return out;
}

std::vector<Finding> checkAuthorizedKeys(const std::string& path, const std::string& text, const PullLogin& login,
                                         bool confinedBySshd)
{
    std::vector<Finding> out;
    if (confinedBySshd)
        return out;
    std::istringstream in(text);
    std::string line;
    int lineNo = 0;
    while (std::getline(in, line)) {
        ++lineNo;
        const auto start = line.find_first_not_of(" \t");
        if (start == std::string::npos || line[start] == '#')
            continue;
        line = line.substr(start);
        std::string rest;
        const auto options = keyOptions(line, rest);
        bool restrict = false, forced = false, givenBack = false;
        int noOptions = 0;
        for (const auto& o : options) {
            const std::string name = lower(o.substr(0, o.find('=')));
            if (name == "restrict")
                restrict = true;
            else if (name == "command")
                forced = true;
            else if (name == "no-pty" || name == "no-port-forwarding" || name == "no-agent-forwarding" ||
                     name == "no-x11-forwarding" || name == "no-user-rc")
                ++noOptions;
            else if (name == "pty" || name == "port-forwarding" || name == "agent-forwarding" ||
                     name == "x11-forwarding" || name == "user-rc")
                givenBack = true;  // restrict, then one thing allowed again
        }
        const bool closed = (restrict || noOptions >= 5) && !givenBack;
        const bool commandForced = forced || shellIsPullShell(login);
        if (closed && commandForced)
            continue;
        std::string lacks;
        if (!closed)
            lacks = "restrict (no port, agent or X11 forwarding, no pty, no ~/.ssh/rc)";
        if (!commandForced)
            lacks += std::string(lacks.empty() ? "" : " and ") + "a forced command";
        // Show the line as it should read, with the key itself shortened.
        std::string keyPart = rest.empty() ? line : rest;
        std::string fixed = "restrict";
        if (!commandForced)
            fixed += ",command=\"" + login.shell + "\"";
        for (const auto& o : options) {
            const std::string name = lower(o.substr(0, o.find('=')));
            if (name != "restrict" && name != "pty" && name != "port-forwarding" && name != "agent-forwarding" &&
                name != "x11-forwarding" && name != "user-rc")
                fixed += "," + o;
        }
        out.push_back({"sshd.pull-key-not-confined", severity::kWarning,
                       path + ":" + std::to_string(lineNo) + ": the pull user's key '" + keyPart.substr(0, 40) +
                           (keyPart.size() > 40 ? "…" : "") + "' lacks " + lacks +
                           ", and sshd does not confine the user either",
                       "Make line " + std::to_string(lineNo) + " of " + path + " begin with these options:\n" + fixed +
                           "\nor confine the user in sshd (see sshd.pull-not-confined)"});
    }
    return out;
}

} // namespace fwcheck
