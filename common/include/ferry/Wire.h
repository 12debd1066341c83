#pragma once
// Ferry's wire format. Every message is one frame:
//
//   offset 0  'F' 'Y'        magic
//          2  version (u8)   kWireVersion; anything else is refused
//          3  type (u8)      MessageType
//          4  length (u32, big endian), then `length` payload bytes
//
// Payloads are encoded with Encoder/Decoder (big-endian integers, u32-length
// prefixed byte strings). Readers enforce a maximum payload size and a
// deadline on every frame; a violation is a ProtocolError naming the peer.

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "ferry/Limits.h"
#include "ferry/Stream.h"

namespace ferry {

constexpr std::uint8_t kWireVersion = 1;
constexpr std::size_t kFrameHeaderSize = 8;
// kDefaultMaxFrame, kMaxBatchFrame, kMaxBatchBytes (Limits.h): the one
// limit on a Batch frame's payload, for every sender and receiver of both
// transports. `batch_bytes` in the node's config is checked against
// kMaxBatchBytes when loaded, and the sender trims a batch whose encoding
// would still exceed kMaxBatchFrame (Session.h), so a receiver never sees
// a batch it must refuse.
// Every other frame of a session (handshake, report, policy, ack, error).
constexpr std::uint32_t kMaxControlFrame = 64 * 1024;

enum class MessageType : std::uint8_t {
    Hello = 1,      // server → client: challenge
    Auth = 2,       // client → server: name, nonce, proof
    AuthOk = 3,     // server → client: server's proof
    Batch = 4,      // records
    Ack = 5,        // stored up to a sequence
    Error = 6,      // code and message; the sender closes after it
    Bye = 7,        // orderly end
    Request = 8,    // generic request (registration, pull commands)
    Response = 9,   // generic response
    Report = 10,    // node → master: health report (session version 2)
    Policy = 11,    // master → node: verdict, cursor, policy map (session version 2)
    HeadBatch = 12, // node → master: the newest records, ahead of the backlog (capability newest-first)
};
const char* toString(MessageType type);

struct Frame {
    MessageType type{};
    std::string payload;
};

std::string encodeFrame(MessageType type, std::string_view payload);
void writeFrame(ByteStream& stream, MessageType type, std::string_view payload, Deadline deadline);
// Reads one frame; throws ProtocolError (bad magic/version/type, too large),
// ClosedError (truncated), TimeoutError.
Frame readFrame(ByteStream& stream, Deadline deadline, std::uint32_t maxPayload = kDefaultMaxFrame);
// Parses a frame from a buffer (for fuzzing and tests); consumed gets the
// number of bytes used, 0 when more bytes are needed.
bool parseFrame(std::string_view buffer, std::uint32_t maxPayload, Frame& out, std::size_t& consumed);

class Encoder {
public:
    Encoder& u8(std::uint8_t v);
    Encoder& u32(std::uint32_t v);
    Encoder& u64(std::uint64_t v);
    Encoder& i64(std::int64_t v) { return u64(static_cast<std::uint64_t>(v)); }
    Encoder& bytes(std::string_view v);
    const std::string& data() const { return m_data; }
    std::string take() { return std::move(m_data); }

private:
    std::string m_data;
};

class Decoder {
public:
    // what: names the message in errors ("Batch from 127.0.0.1:4321").
    Decoder(std::string_view data, std::string what) : m_data(data), m_what(std::move(what)) {}
    std::uint8_t u8(const char* field);
    std::uint32_t u32(const char* field);
    std::uint64_t u64(const char* field);
    std::int64_t i64(const char* field) { return static_cast<std::int64_t>(u64(field)); }
    std::string bytes(const char* field, std::size_t maxSize);
    // Throws unless every byte was consumed.
    void finish() const;
    std::size_t remaining() const { return m_data.size() - m_pos; }

private:
    void need(std::size_t n, const char* field) const;
    std::string_view m_data;
    std::size_t m_pos = 0;
    std::string m_what;
};

// ---- Messages of the data protocol (push and pull) ----

struct Record {
    std::uint64_t seq = 0;
    std::int64_t timeMs = 0;
    std::string kind;     // "load", "cpu", "plugin:nginx", …
    std::string payload;  // the sample, as text
};

constexpr std::size_t kMaxKind = 128;
constexpr std::size_t kMaxRecordPayload = 256 * 1024;
constexpr std::uint32_t kMaxBatchRecords = 10000;
constexpr std::size_t kNonceSize = 32;
constexpr std::size_t kMacSize = 32;
constexpr std::size_t kMaxName = 64;

struct HelloMessage {
    std::string challenge;  // kNonceSize random bytes
    std::string server;     // server's name, for logs
};
// Auth and AuthOk of session version 2 append version, capabilities and
// the node's epoch after the fields of version 1, so that a version-1 peer's
// message decodes with version = 1 and gets a clear refusal (Session.h).
// Auth of version 3 appends the master id the proofs' key is derived for
// and the session binding (the SSH server host key's fingerprint as the
// initiator verified it; empty without SSH).
constexpr std::size_t kMaxMasterId = 255;
constexpr std::size_t kMaxBinding = 128;
struct AuthMessage {
    std::string node;
    std::string nonce;  // kNonceSize
    std::string mac;    // HMAC(key, transcript)
    std::uint8_t version = 1;
    std::uint32_t capabilities = 0;
    std::string epoch;  // Epoch::kSize bytes when the sender is the node, else empty
    std::string masterId = {}; // version 3
    std::string binding = {};  // version 3
};
struct AuthOkMessage {
    std::string mac;
    std::uint8_t version = 1;
    std::uint32_t capabilities = 0;
    std::string epoch;  // as in AuthMessage
};

// The node's health, sent at the start of every session and kept by the
// master (node_reports). Text fields are bounded; counters are the spool's.
constexpr std::size_t kMaxReportText = 1024;
struct HealthReport {
    std::uint64_t spoolRecords = 0;
    std::uint64_t spoolBytes = 0;
    std::int64_t oldestUnsentMs = 0;  // 0: nothing queued
    std::uint64_t lastSeq = 0;
    std::uint64_t droppedByAge = 0;
    std::uint64_t droppedBySize = 0;
    std::uint64_t droppedBytes = 0;
    std::string transportMode;    // "push", "pull", "auto (push on)", …
    std::string transportReason;  // why that mode
    std::uint64_t spoolResets = 0;
    std::string lastReset;        // why the current spool replaced another, "" if it did not
    std::int64_t lastResetMs = 0;
    std::string fwcheckVerdict;   // opaque, filled by the caller
};

// The master's answer to a report: whether the node may send, how far the
// master has stored this epoch (pull deletes up to it), and a key/value
// policy map (the period floor and, for an early push, when to come back:
// see Session.h) so that a new policy needs no protocol change.
constexpr std::size_t kMaxPolicyEntries = 32;
constexpr std::size_t kMaxPolicyText = 256;
struct PolicyMessage {
    bool held = false;
    std::string reason;  // why held
    std::uint64_t storedUpTo = 0;
    std::vector<std::pair<std::string, std::string>> policy;
};
struct AckMessage {
    std::uint64_t storedUpTo = 0;  // every record ≤ this of the batch is stored
    std::uint32_t newlyStored = 0;
    std::uint32_t duplicates = 0;
};
struct ErrorMessage {
    std::string code;     // "auth-failed", "bad-batch", "not-registered", …
    std::string message;  // for people
};

std::string encode(const HelloMessage& m);
std::string encode(const AuthMessage& m);
std::string encode(const AuthOkMessage& m);
std::string encode(const std::vector<Record>& batch);
std::string encode(const AckMessage& m);
std::string encode(const ErrorMessage& m);
std::string encode(const HealthReport& m);
std::string encode(const PolicyMessage& m);

HelloMessage decodeHello(std::string_view payload, const std::string& peer);
AuthMessage decodeAuth(std::string_view payload, const std::string& peer);
AuthOkMessage decodeAuthOk(std::string_view payload, const std::string& peer);
std::vector<Record> decodeBatch(std::string_view payload, const std::string& peer);
AckMessage decodeAck(std::string_view payload, const std::string& peer);
ErrorMessage decodeError(std::string_view payload, const std::string& peer);
HealthReport decodeReport(std::string_view payload, const std::string& peer);
PolicyMessage decodePolicy(std::string_view payload, const std::string& peer);

// Reads a frame and checks its type; an Error frame from the peer becomes a
// ProtocolError (or AuthError for "auth-failed") carrying its message.
Frame expectFrame(ByteStream& stream, MessageType type, Deadline deadline, std::uint32_t maxPayload = kDefaultMaxFrame);

} // namespace ferry
