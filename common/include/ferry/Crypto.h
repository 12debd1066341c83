#pragma once
// The node secret and the HMAC challenge/response built on it. The secret is
// generated on the node at install time and never crosses the wire: each
// side proves knowledge of it with HMAC-SHA256 over both sides' nonces, with
// a label that differs per direction so one proof cannot be replayed as the
// other.

#include <cstdint>
#include <optional>
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

// ---- per-master keys (issue 12 item 8) ----
//
// A master never holds the node secret. It holds a key derived from it for
// one master id:  key = hex(HMAC-SHA256(secret, "ferry-master-key-v1\0" ‖ id)).
// The id is the name the node knows that master by (the `id:` of its
// masters: entry, by default its host), so a master, or anyone holding its
// database, can prove itself only as that id: it cannot push as the node to
// another master, pull from the node as another master, or sign
// registration answers for another master's address. Masters that share
// one database (PostgreSQL) share one id.
//
// What the master stores per node (the nodes.secret column) is a
// credential: "k1:<id>:<key>" from `ferryctl secret --master ID`, or, from
// before this scheme, the bare secret ("legacy"), which registryd replaces
// with the derived key at the node's first registration of kind 3.
constexpr std::size_t kMaxMasterIdLength = 255;
std::string deriveMasterKey(std::string_view secret, std::string_view masterId);
// 1–255 printable ASCII characters without spaces (a host, an IPv6
// address, a cluster name).
bool isValidMasterId(std::string_view id);

struct NodeCredential {
    std::string masterId; // empty for a legacy credential
    std::string key;      // the derived key, or the legacy node secret
    bool legacy = false;
};
// "k1:<id>:<64 hex>" or a bare secret (32–128 hex). Throws Error naming what
// is wrong, never echoing the value.
NodeCredential parseNodeCredential(std::string_view text);
std::string formatNodeCredential(std::string_view masterId, std::string_view key);
// The key this credential proves with for masterId: the stored key when
// the ids match, derived from a legacy secret for any id, else nullopt.
std::optional<std::string> credentialKeyFor(const NodeCredential& credential, std::string_view masterId);

// Proof for a session of version 3: as version 2, made with the per-master
// key, and covering the master id and the session binding too.
std::string sessionProofV3(std::string_view key, std::string_view label, std::string_view protocol,
                           std::uint8_t version, std::uint32_t capabilities, std::string_view challenge,
                           std::string_view nonce, std::string_view node, std::string_view epoch,
                           std::string_view masterId, std::string_view binding);

} // namespace ferry
