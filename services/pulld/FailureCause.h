#pragma once
// Why a pull failed, in the few words an operator acts on: the master
// records the cause of each node's last failed pull beside its pull state
// (table pull_failure of master.db), and `ferryctl master show NODE` prints
// it next to the node's own diagnosis.
//
//   connection refused   nothing listens on the node's SSH port (sshd down, wrong port, REJECT rule)
//   closed before the SSH handshake
//                        sshd accepted and closed without a banner: hosts.deny (libwrap holds the
//                        refused connection silent for 5 s first), MaxStartups, a reset on the way
//   no SSH banner        accepted, but nothing said within the connect timeout (and libwrap's 5 s):
//                        an overloaded or stuck sshd, or not an SSH server on that port
//   timeout              no answer in time: a firewall dropping the master's packets, or a dead host
//   unreachable          no route to the node
//   host key mismatch    the node's sshd offered a key other than the pinned one
//   host key unknown     no key is pinned for the node yet
//   auth refused         sshd refused the pull key (AllowUsers/AllowGroups/DenyUsers, key not installed)
//   shell refused        logged in, but the login shell refused or ended the session before the pull protocol
//   secret mismatch      the node and the master do not share the node's secret
//   other                anything else (the message says)

#include <cstdint>
#include <exception>
#include <string>
#include <string_view>

#include "ferry/SqlConnection.h"

namespace pulld {

enum class FailureCause {
    ConnectionRefused,
    ClosedBeforeHandshake,
    NoBanner,
    Timeout,
    Unreachable,
    HostKeyMismatch,
    HostKeyUnknown,
    AuthRefused,
    ShellRefused,
    SecretMismatch,
    Other,
};

const char* toString(FailureCause cause);

// Classifies the exception that ended a pull (SshSession, SshNodeConnector
// and PullClient errors; see the table above).
FailureCause classifyPullFailure(const std::exception& error);

// Stores node's failure cause (never empty) and the message in master.db;
// throws when it cannot, so that a caller's transaction keeps the attempt
// and its cause together.
void storePullFailure(ferry::SqlConnection& db, const std::string& node, std::int64_t whenMs,
                      const std::exception& error);
// The same, but never throws (a failure to record is logged, "ignoring").
void recordPullFailure(ferry::SqlConnection& db, const std::string& node, std::int64_t whenMs,
                       const std::exception& error);

struct PullFailure {
    std::string node;
    std::int64_t atMs = 0;
    std::string cause;  // toString(FailureCause)
    std::string message;
};

} // namespace pulld
