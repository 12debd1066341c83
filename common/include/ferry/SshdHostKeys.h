#pragma once
// This host's sshd host keys, read from their .pub files, and their
// fingerprints: what a session binding must name on this host (Session.h).
// Without libssh (the fingerprint is SHA-256 over the key blob, as
// keyFingerprint computes it), so that ferry-login, which needs nothing else
// of libssh, does not load it and the Kerberos libraries it brings at every
// pull (bench/pull: ferry-login's start).

#include <string>
#include <vector>

namespace ferry {

// The sshd host keys in dir (ssh_host_*_key.pub, sorted, at most
// kMaxHostKeys, normalized "type base64"); unreadable ones are logged and
// skipped.
std::vector<std::string> readSshdHostKeys(const std::string& dir);
// Their fingerprints, as SshSession::hostKeyFingerprint prints them.
std::vector<std::string> sshdHostKeyFingerprints(const std::string& dir);

} // namespace ferry
