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
// only from a master that knows its secret. A "pending" answer to a node the
// master has no secret for cannot carry a MAC; the node never pins anything
// from it.
//
// Version 2 (request kind 2) appends, inside the signed request, the node's
// own sshd host keys (u32 count, then each key line), which the master pins
// for its pulls; a master answering a kind-2 request appends, inside the
// signed response, its period policy (u32 minimum push period in seconds,
// u32 minimum pull interval in seconds; 0 = no floor) and the node's SSH
// certificate (bytes, empty when the master issues none), then the master's
// pull public key (bytes; the key pulld logs in to nodes with, made on the
// master at install, so no package can ship it: the node trusts it for pulls
// only because it came under that MAC; empty when the master has none; may
// be absent altogether from masters that predate it). A kind-1 request gets
// a kind-1 response, so nodes and masters of either version interoperate.
//
// Version 3 (request kind 3; issue 12 item 8) appends, inside the signed
// request after the host keys, the master id (bytes, 1–255 printable) the
// node derived its key for, and both MACs are made with that per-master key
// (Crypto.h: deriveMasterKey) instead of the node secret. The response
// layout is version 2's. A master verifies a kind-3 request with the key it
// holds for that id (or derives it from a legacy secret, which it then
// replaces with the derived key); kind-1 and kind-2 requests verify only
// against a legacy secret, so a master holding derived keys treats an older
// node as unproven. Current nodes send only kind 3.

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "ferry/Limits.h"

namespace ferry {

constexpr std::uint16_t kRegistryPort = 50010;
// A registration frame is small: a name, one key line, a nonce and a MAC.
constexpr std::uint32_t kMaxRegistryFrame = 16 * 1024;
constexpr std::size_t kMaxKeyLine = 4096;
constexpr std::size_t kMaxHostKeys = 8;
constexpr std::size_t kMaxReason = 512;
constexpr std::size_t kMaxCertificate = 8192;
constexpr std::uint8_t kRegisterRequestKind = 1;
constexpr std::uint8_t kRegisterRequestKindV2 = 2;
constexpr std::uint8_t kRegisterRequestKindV3 = 3;

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
    // The node's sshd host keys ("type base64"), for the master's pulls.
    // Sent only when version2 (request kind 2).
    std::vector<std::string> hostKeys;
    bool version2 = true;
    // Version 3 (implies version 2): the master id the MAC's key is derived for.
    bool version3 = true;
    std::string masterId = {};
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
    // Version 2 only: the master's floor for this node (0: none).
    bool version2 = false;
    std::uint32_t minPushPeriodS = 0;
    std::uint32_t minPullIntervalS = 0;
    // Version 2, accepted only, when the master has a CA: the node's OpenSSH
    // user certificate ("…-cert-v01@openssh.com AAAA…"); empty otherwise.
    std::string certificate = {};
    // Version 2, accepted only: the master's pull public key, or empty when
    // the master has none.
    std::string pullKey;                // "ssh-ed25519 AAAA…"
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
// The key a request's MAC must be made with, given the master's stored
// credential for its node (parseNodeCredential): for kind 3 the key for the
// request's master id, for older kinds the legacy secret; nullopt when the
// credential cannot verify this request (or cannot be parsed).
std::optional<std::string> registrationKey(std::string_view credential, const RegistrationRequest& request);

// Builds the Response payload; an empty secret leaves the MAC empty.
std::string encodeRegistrationResponse(const RegistrationResponse& response, std::string_view secret);
SignedResponse decodeRegistrationResponse(std::string_view payload, const std::string& peer);
bool verifyRegistrationResponse(const SignedResponse& response, std::string_view secret);

// Strict base64 (RFC 4648 with padding, as OpenSSH writes key lines):
// length a multiple of four, '=' only as the last one or two characters,
// unused bits zero. Throws ProtocolError.
std::string decodeBase64Strict(std::string_view in);

// "type base64" from an OpenSSH public key line (drops a comment); throws
// ProtocolError when the line is not "<known type> <base64>" or when the
// decoded key blob is not a well-formed key of that type.
std::string normalizeKeyLine(std::string_view line);

// "SHA256:<base64 without padding>" of a public key line, as `ssh-keygen -l`
// prints it. Parsed here with strict bounds (the line at most kMaxKeyLine,
// the blob checked field by field for its type) and hashed with OpenSSL:
// registryd holds every node secret, so key text from the network never
// reaches a general-purpose key parser in its process. Throws ProtocolError.
std::string keyFingerprint(std::string_view line);
// As keyFingerprint, "(none)" for an empty line and "(unparsable key)"
// instead of throwing.
std::string keyFingerprintOrNote(std::string_view line);

// The strictest period floor of the masters that accepted this node, as
// keyregd stores it (<state dir>/period-floor) for ferry-push-generator:
//   # comment
//   min_push_period=240
//   min_pull_interval=600
//   master=192.0.2.1:50010      (the master that set the push floor)
struct PeriodFloor {
    std::uint32_t minPushPeriodS = 0;
    std::uint32_t minPullIntervalS = 0;
    std::string master;
    bool operator==(const PeriodFloor&) const = default;
};
std::string formatPeriodFloor(const PeriodFloor& floor);
// Throws ConfigError naming file and line for anything else than the above.
PeriodFloor parsePeriodFloor(const std::string& name, std::string_view text);
std::string periodFloorFile(const std::string& stateDir);

// A node name is 1–64 characters of [A-Za-z0-9._-], not starting with '.' or '-'.
bool isValidNodeName(std::string_view name);

} // namespace ferry
