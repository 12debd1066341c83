#pragma once
// The registration protocol between keyregd (node) and registryd (master) on
// TCP 50010. One exchange per connection, in Ferry frames (Wire.h):
//
//   node → master   Request   bytes(signed request) bytes(mac)
//   master → node   Response  bytes(signed response) bytes(mac)
//              or   Error     code, message (then the master closes)
//
// The signed request carries the node name, its public key, its transport
// mode and sshd port (for pulls), the node's clock and a fresh nonce; its MAC is HMAC-SHA256(node secret, label ‖
// signed bytes), so the master knows the key came from the holder of the
// secret, and the nonce plus the time window stop replays. The response
// repeats the request's nonce and carries the master's SSH host keys under a
// MAC with the node secret and a different label, so the node pins host keys
// only from a master that knows its secret. An accepted answer also carries
// the master's pull public key (the key pulld logs in to nodes with; made on
// the master at install, so no package can ship it): the node trusts it for
// pulls only because it came under that MAC. It follows the host keys and
// may be absent (zero bytes left), for masters that have none yet. A "pending" answer to a node the
// master has no secret for cannot carry a MAC; the node never pins anything
// from it.

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace ferry {

constexpr std::uint16_t kRegistryPort = 50010;
// A registration frame is small: a name, one key line, a nonce and a MAC.
constexpr std::uint32_t kMaxRegistryFrame = 16 * 1024;
constexpr std::size_t kMaxKeyLine = 4096;
constexpr std::size_t kMaxHostKeys = 8;
constexpr std::size_t kMaxReason = 512;
constexpr std::uint8_t kRegisterRequestKind = 1;

enum class RegistrationState : std::uint8_t { Accepted = 1, Pending = 2, Declined = 3 };
const char* toString(RegistrationState state);

struct RegistrationRequest {
    std::string node;
    std::string publicKey;  // "ssh-ed25519 AAAA…"
    // How the master should reach this node: its transport mode ("auto",
    // "push", "pull"; pulld pulls auto and pull nodes) and its sshd port.
    std::string mode = "auto";
    std::uint16_t sshPort = 22;
    std::int64_t timeMs = 0;
    std::string nonce;      // kNonceSize random bytes
};

struct SignedRequest {
    RegistrationRequest request;
    std::string signedBytes;  // exactly what the MAC covers (after the label)
    std::string mac;
};

struct RegistrationResponse {
    RegistrationState state = RegistrationState::Pending;
    std::string reason;
    std::string requestNonce;
    std::int64_t serverTimeMs = 0;
    std::vector<std::string> hostKeys;  // "ssh-ed25519 AAAA…" lines
    std::string pullKey;                // "ssh-ed25519 AAAA…", or empty: the master has no pull key
};

struct SignedResponse {
    RegistrationResponse response;
    std::string signedBytes;
    std::string mac;  // empty: the master could not sign (unknown node, pending)
};

// Builds the Request payload, signed with secret.
std::string encodeRegistrationRequest(const RegistrationRequest& request, std::string_view secret);
// Parses a Request payload (structure and field bounds only; no MAC check).
// Throws ProtocolError naming peer and field.
SignedRequest decodeRegistrationRequest(std::string_view payload, const std::string& peer);
std::string registrationRequestMac(std::string_view secret, std::string_view signedBytes);
bool verifyRegistrationRequest(const SignedRequest& request, std::string_view secret);

// Builds the Response payload; an empty secret leaves the MAC empty.
std::string encodeRegistrationResponse(const RegistrationResponse& response, std::string_view secret);
SignedResponse decodeRegistrationResponse(std::string_view payload, const std::string& peer);
bool verifyRegistrationResponse(const SignedResponse& response, std::string_view secret);

// "type base64" from an OpenSSH public key line (drops a comment); throws
// ProtocolError when the line is not "<known type> <base64>".
std::string normalizeKeyLine(std::string_view line);

// A node name is 1–64 characters of [A-Za-z0-9._-], not starting with '.' or '-'.
bool isValidNodeName(std::string_view name);

} // namespace ferry
