#pragma once
// Is the pull login confined? The master logs in as the pull user to run
// the pull protocol and nothing else. That holds when the node's sshd
// confines the user (a `Match User ferry` block: DisableForwarding,
// PermitTTY no, PermitUserRC no, public keys only, and the pull shell as
// login shell or a ForceCommand) — set by root, not in a file the pull
// user can write — or else when every key line carries the confinement
// itself (restrict or its no-* options, and a forced command unless the
// login shell is the pull shell). Findings here are warnings: the master
// still gets in, but with more than it needs.

#include <map>
#include <optional>
#include <string>
#include <vector>

#include "Finding.h"
#include "SystemReader.h"

namespace fwcheck {

using SshdEffective = std::map<std::string, std::vector<std::string>>;

struct PullLogin {
    std::string user = "ferry";
    std::string shell = "/usr/sbin/ferry-login";   // the pull shell
    std::optional<Account> account;                // nullopt: no such user
    std::string sshdConfigPath = "/etc/ssh/sshd_config";
};

// What the effective configuration (sshd -T -C user=<pull user>,…) lacks,
// as one finding "sshd.pull-not-confined" with the Match block that fixes
// it; nothing when the configuration confines the user.
std::vector<Finding> checkSshdConfinement(const SshdEffective& effective, const PullLogin& login);

// True when sshd itself confines the user (forwarding, tty and user rc off).
bool sshdConfines(const SshdEffective& effective);

// The AuthorizedKeysFile paths of the effective configuration for the
// account (%h, %u, %% expanded; relative paths under the home directory).
std::vector<std::string> authorizedKeysFiles(const SshdEffective& effective, const Account& account);

// Key lines of one authorized_keys file that lack the confinement, one
// finding "sshd.pull-key-not-confined" each (with the line as it should
// read). Lines are judged only when sshd does not confine the user itself.
std::vector<Finding> checkAuthorizedKeys(const std::string& path, const std::string& text, const PullLogin& login,
                                         bool confinedBySshd);

} // namespace fwcheck
