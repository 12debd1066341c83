#pragma once
// Judges the effective sshd configuration (`sshd -T` output for one master
// address) against what a pull needs: the user may log in from there, sshd
// listens where ferry.yml says, and public keys are accepted.

#include <map>
#include <optional>
#include <string>
#include <vector>

#include "Finding.h"
#include "SystemReader.h"

namespace fwcheck {

struct SshdQuestion {
    std::string user = "ferry";
    std::string masterHost;     // name or address as configured
    std::string masterAddress;
    std::string listenAddress;  // the node address the master connects to
    std::uint16_t port = 22;
    std::optional<Account> account;  // nullopt: the user does not exist
};

// Parses `sshd -T` output: lower-case keyword -> every value it was given.
std::map<std::string, std::vector<std::string>> parseSshdT(const std::string& text);

// Findings that block (severity error) or that we cannot decide.
std::vector<Finding> checkSshd(const std::map<std::string, std::vector<std::string>>& effective,
                               const SshdQuestion& q, const std::string& configPath);

// sshd's wildcard match ('*' and '?') of one pattern.
bool sshWildcard(const std::string& pattern, const std::string& text);
// user[@host] against DenyUsers/AllowUsers semantics.
bool sshUserMatches(const std::string& pattern, const std::string& user, const std::string& host,
                    const std::string& address);

} // namespace fwcheck
