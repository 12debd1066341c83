#pragma once
// The pull protocol between the master's puller (ferry-pulld) and a node's
// restricted login shell (ferry-login).
//
// The master opens an SSH session to the node as user `ferry` and runs one
// command from a fixed table; the command line is all the shell ever gets
// from the client besides the framed protocol on stdin:
//
//   fetch <cursor>   the master has stored every record ≤ cursor: the node
//                    deletes those, then streams the records after cursor in
//                    bounded batches; each batch is answered by an Ack, and
//                    only an Ack deletes records. Ends with Bye.
//   status           the node's spool figures (a Response frame).
//
// <cursor> is a decimal number without sign or leading zeros. Anything else
// (other words, other characters, extra arguments, more than
// kMaxPullCommand bytes) is refused before it is looked at further.
//
// Every command starts with the same mutual proof of the node's install
// secret (Crypto.h, protocol "pull"):
//   node → master   Hello   {challenge: node nonce, server: node name}
//   master → node   Auth    {node, nonce: master nonce, mac: proof "master"}
//   node → master   AuthOk  {mac: proof "node"}
// The master proves first, so a client holding only the SSH key learns
// nothing that would let it pose as the node.

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace ferry {

constexpr const char* kPullProtocol = "pull";
constexpr const char* kPullMasterLabel = "master";
constexpr const char* kPullNodeLabel = "node";
// Longest command line the shell looks at ("fetch " + 20 digits fits easily).
constexpr std::size_t kMaxPullCommand = 64;
// Error codes the shell sends in an Error frame.
constexpr const char* kPullErrorAuth = "auth-failed";
constexpr const char* kPullErrorCursorAhead = "cursor-ahead";
constexpr const char* kPullErrorProtocol = "bad-message";
constexpr const char* kPullErrorInternal = "internal";

enum class PullVerb { Fetch, Status };

struct PullCommand {
    PullVerb verb = PullVerb::Status;
    std::uint64_t cursor = 0;  // fetch only
};

// A parsed command, or the reason it was refused (for the log, never for the
// client: the client only ever sees one fixed message).
struct PullCommandParse {
    std::optional<PullCommand> command;
    std::string reason;
};

PullCommandParse parsePullCommand(std::string_view text);
std::string formatPullCommand(const PullCommand& command);

// Makes untrusted bytes safe for one log line: printable ASCII is kept,
// everything else becomes \xHH, and the result is cut at maxChars with the
// original length noted.
std::string escapeForLog(std::string_view bytes, std::size_t maxChars = 120);

// The answer to `status`.
struct PullStatus {
    std::string node;
    std::uint64_t records = 0;
    std::uint64_t bytes = 0;
    std::uint64_t lastSeq = 0;
    std::int64_t oldestMs = 0;
    std::uint64_t droppedRecords = 0;
    std::uint64_t droppedBytes = 0;
};

std::string encode(const PullStatus& status);
PullStatus decodePullStatus(std::string_view payload, const std::string& peer);

} // namespace ferry
