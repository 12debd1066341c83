#pragma once
// hosts_access(5) as libwrap applies it to sshd: hosts.allow first (first
// match grants), then hosts.deny (first match denies), else access. Name
// based patterns are decided only when the master was configured by name;
// we never do DNS lookups of our own to decide them.

#include <optional>
#include <string>
#include <vector>

#include "Packet.h"

namespace fwcheck {

struct HostsClient {
    Address address;
    std::string name;  // empty when the master was configured by address
    std::optional<Address> server;  // the node address it connects to, for daemon@host patterns
};

struct HostsDecision {
    enum class Kind { Allowed, Denied, Undecided } kind = Kind::Allowed;
    std::string file;  // which file decided ("" when nothing matched)
    int line = 0;
    std::string text;  // the deciding line
    std::string why;   // for Undecided
};

struct HostsFile {
    std::string path;
    std::optional<std::string> content;  // nullopt: the file does not exist
};

class HostsAccess {
public:
    HostsAccess(HostsFile allow, HostsFile deny, std::string daemon = "sshd");
    HostsDecision decide(const HostsClient& client) const;
    // Lines libwrap ignores (with a warning in its log).
    const std::vector<std::string>& problems() const { return m_problems; }

    struct Rule {
        int line = 0;
        std::string text;
        std::string daemons, clients, options;
    };

private:
    std::vector<Rule> parse(const HostsFile& f);

    std::string m_daemon;
    std::string m_allowPath, m_denyPath;
    std::vector<Rule> m_allow, m_deny;
    std::vector<std::string> m_problems;
};

} // namespace fwcheck
