#pragma once
// SSH key files, apart from the session: create the node's key pair, read a
// key file's public line, fingerprint a key line. They use libssh's key
// functions but open no connection, so registration code that only handles
// keys need not know about sessions.

#include <string>
#include <vector>

struct ssh_key_struct;

namespace ferry {

// Creates an ed25519 key pair at privateKeyFile (+ ".pub"), 0600, unless it
// exists. Returns true when it created one.
bool ensureKeyPair(const std::string& privateKeyFile);
// "ssh-ed25519 AAAA…" of a private or public key file.
std::string publicKeyLine(const std::string& keyFile);
// "SHA256:…" fingerprint of a key line ("ssh-ed25519 AAAA…").
std::string fingerprintOf(const std::string& publicKeyLine);
// "SHA256:…" fingerprint of a libssh key (a server's host key, say);
// "unknown" when libssh cannot hash it.
std::string fingerprintOf(ssh_key_struct* key);
// The sshd host keys in dir (ssh_host_*_key.pub, sorted, at most
// kMaxHostKeys, normalized "type base64"); unreadable ones are logged and
// skipped.
std::vector<std::string> readSshdHostKeys(const std::string& dir);
// Their fingerprints, as SshSession::hostKeyFingerprint prints them: what a
// session binding must name on this host (Session.h).
std::vector<std::string> sshdHostKeyFingerprints(const std::string& dir);

} // namespace ferry
