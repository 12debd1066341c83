#pragma once
// SSH key files, apart from the session: create the node's key pair, read a
// key file's public line, fingerprint a key line. They use libssh's key
// functions but open no connection, so registration code that only handles
// keys need not know about sessions.

#include <string>
#include <vector>

#include "ferry/SshdHostKeys.h"

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

} // namespace ferry
