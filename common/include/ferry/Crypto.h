#pragma once
// The node secret and the HMAC challenge/response built on it. The secret is
// generated on the node at install time and never crosses the wire: each
// side proves knowledge of it with HMAC-SHA256 over both sides' nonces, with
// a label that differs per direction so one proof cannot be replayed as the
// other.

#include <cstdint>
#include <string>
#include <string_view>

namespace ferry {

std::string randomBytes(std::size_t n);
std::string hmacSha256(std::string_view key, std::string_view data);
// SHA-256 of data (32 raw bytes), e.g. for key fingerprints.
std::string sha256(std::string_view data);
bool constantTimeEqual(std::string_view a, std::string_view b);
std::string toHex(std::string_view bytes);
// Throws Error on anything but an even number of hex digits.
std::string fromHex(std::string_view hex);

// 32 random bytes as 64 hex characters.
std::string generateSecret();
// Reads a secret file (hex, one line). Refuses a file readable by group or
// others, or one that is not 32–128 hex characters, naming the file.
std::string loadSecret(const std::string& path);
// Creates the secret file (0600) unless it exists; never overwrites.
// Returns true when it created one.
bool ensureSecret(const std::string& path);

// Proof for a data session: the client (node) proves with label "node", the
// server (collector, node shell) with label "server". challenge is the
// server's nonce, nonce the client's, name the node.
std::string sessionProof(std::string_view secret, std::string_view label, std::string_view protocol,
                         std::string_view challenge, std::string_view nonce, std::string_view name);

// Proof for a session of version 2 (Session.h): everything either side
// decided in the handshake is inside the HMAC — the role label, the
// transport, the version and capabilities, both nonces, the node name and
// the node's spool epoch — so that nobody without the secret can change
// one of them (swap the epoch, downgrade the version) unnoticed.
// epoch is empty in the one proof made before the master learns it (the
// master's proof on pull).
std::string sessionProofV2(std::string_view secret, std::string_view label, std::string_view protocol,
                           std::uint8_t version, std::uint32_t capabilities, std::string_view challenge,
                           std::string_view nonce, std::string_view node, std::string_view epoch);

} // namespace ferry
