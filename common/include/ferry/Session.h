#pragma once
// The one data session of both transports: push (pushd → sshd forward →
// collectord) and pull (pulld → ssh → ferry-login). The node always sends
// records and the master always stores and acknowledges them; the only
// difference between the transports is who speaks first in the handshake.
//
// Handshake (session version 2). The responder sends Hello; the initiator
// proves first. Push: the master (collectord) responds, the node initiates.
// Pull: the node (ferry-login) responds, the master (pulld) initiates.
//
//   responder → Hello   {challenge[32], name}                   (as in version 1)
//   initiator → Auth    {node, nonce[32], mac, version u8, capabilities u32, epoch}
//   responder → AuthOk  {mac, version u8, capabilities u32, epoch}
//
// node is the node's name; epoch (16 bytes) is carried by whichever of
// Auth/AuthOk the node sends, and is empty in the master's. Each mac is
// sessionProofV2(secret, label, protocol, version, capabilities, challenge,
// nonce, node, epoch) with label "node" or "master" for its sender and
// protocol "push" or "pull": the node's proof always covers its epoch, and
// the master's covers it too on push (on pull the master proves before it
// learns the epoch, so its proof has an empty one). Nobody without the
// secret can swap the epoch, the version or the role.
//
// Versions: both sides send kSessionVersion and refuse a peer below it
// with an Error {"unsupported-version", "<who> speaks session version N;
// this side needs 2: upgrade <package>"}. Version 1 messages lack the
// trailing fields, so a version-1 Auth decodes as version 1 and gets that
// answer. (A version-1 node or master fails on our version-2 Auth itself;
// this side then reports "closed during the handshake, an older peer?".)
// Capabilities are a bit set, none defined yet: the session runs with the
// intersection, so a later capability needs no version bump.
//
// A session carries ONE epoch, the oldest of the node's spool that has
// records queued (Spool::sendingRange): a spool that was copied holds the
// records from before the copy under the old epoch and appends under a new
// one; the old epoch's records go first, each epoch in its own session.
//
// After the handshake, the same for both transports:
//   node   → Report  {HealthReport}            (Wire.h)
//   master → Policy  {held, reason, stored_up_to, policy map}
//   node   → Batch … (up to `window` ahead of their Acks, each ≤ kMaxBatchFrame)
//   master → Ack {stored_up_to = last seq of that batch, newly, duplicates}
//                   (one per Batch, in order, sent only after the commit)
//   node   → Bye
// stored_up_to in Policy: the master has every record of this (node, epoch)
// up to it (pull's per-epoch cursor, which moves in the transaction of each
// batch; 0 on push); the node deletes those before sending. held: the master will not store this epoch (a suspect
// node, or an epoch an operator retired): the node sends Bye and keeps its
// records. An Ack deletes every record ≤ its stored_up_to on the node.
//
// Authentication failures look identical to the peer whatever the cause
// (unknown node, not accepted, wrong proof): Error {"auth-failed",
// "authentication failed"}; the cause goes to this side's log only.

#include <chrono>
#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "ferry/Epoch.h"
#include "ferry/Error.h"
#include "ferry/SessionStore.h"
#include "ferry/Spool.h"
#include "ferry/Stream.h"
#include "ferry/Wire.h"

namespace ferry {

constexpr std::uint8_t kSessionVersion = 2;
// Capability bits this code knows (none yet).
constexpr std::uint32_t kSessionCapabilities = 0;
constexpr const char* kSessionErrorAuth = "auth-failed";
constexpr const char* kSessionErrorVersion = "unsupported-version";
constexpr const char* kSessionErrorProtocol = "bad-message";
constexpr const char* kSessionErrorCursorAhead = "cursor-ahead";

// Who sends Hello (Responder) and who proves first (Initiator).
enum class SessionSide { Initiator, Responder };

// The peer refused our session version, or spoke an older one.
class VersionError : public ProtocolError {
public:
    using ProtocolError::ProtocolError;
};

// ---- the node's side ----

struct NodeSessionOptions {
    std::string protocol = "push";  // "push" or "pull": part of the proofs
    SessionSide side = SessionSide::Initiator;
    std::string nodeName;
    std::string secret;
    std::size_t batchRecords = 500;
    std::size_t batchBytes = 512 * 1024;  // ≤ kMaxBatchBytes
    // Batches sent ahead of their Ack; hides the round trip per batch.
    unsigned window = 4;
    std::chrono::milliseconds ioTimeout{30000};
    // Transport mode and reason, fwcheck verdict: the caller's part of the
    // report. The spool's figures are filled in by the session.
    HealthReport report;
};

struct NodeSessionResult {
    std::string peerName;  // the responder's Hello name (push), for logs
    // The epoch this session carried (Spool::sendingRange), and whether a
    // later epoch of the spool still has records for another session.
    Epoch epoch;
    bool laterEpochQueued = false;
    bool held = false;
    std::string heldReason;
    PolicyMessage policy;
    std::uint64_t recordsSent = 0;
    std::uint64_t batches = 0;
    std::uint64_t newlyStored = 0;
    std::uint64_t duplicates = 0;
    std::uint64_t deleted = 0;           // records deleted by the policy's cursor and by Acks
    std::uint64_t acknowledgedUpTo = 0;  // highest sequence the master confirmed
};

// The node's handshake alone, for one epoch of its spool (pull's `status`
// runs it before its answer).
void nodeHandshake(ByteStream& stream, const Epoch& epoch, const NodeSessionOptions& options, std::string& peerName);

// A whole session: handshake, report, policy, batches. What was
// acknowledged before a failure stays deleted, what was not stays queued.
// Throws AuthError (wrong proof, or the master refused ours), VersionError,
// ProtocolError, TimeoutError, ClosedError.
NodeSessionResult runNodeSession(ByteStream& stream, Spool& spool, const NodeSessionOptions& options);

// ---- the master's side ----

struct MasterSessionOptions {
    std::string protocol = "push";
    SessionSide side = SessionSide::Responder;
    std::string selfName = "ferry-master";  // in Hello, for the node's logs
    std::string via = "push";               // node's last_push or last_pull
    // Pull: the node we connected to and its secret. Push: empty; the node
    // names itself in Auth and its secret comes from the store.
    std::string expectedNode;
    std::string secret;
    // Where the session came from, for node_epochs (pull: the node's SSH
    // host; push: the stream's peer).
    std::string address;
    std::chrono::milliseconds ioTimeout{30000};
    // Entries sent in every Policy answer.
    std::vector<std::pair<std::string, std::string>> policy;
    // Test hook, documented in docs/durability.md: called after a batch was
    // committed and before its Ack is sent.
    std::function<void()> afterCommit;
    // Push: called once the node proved its secret, before AuthOk; false
    // refuses the session with "busy" (the node already runs as many
    // sessions as the collector allows one node).
    std::function<bool(const std::string& node)> onAuthenticated;
};

struct MasterSessionResult {
    std::string node;  // empty when authentication failed
    Epoch epoch;
    EpochAdmission admission;
    HealthReport report;
    std::uint64_t batches = 0;
    std::uint64_t records = 0;
    std::uint64_t newlyStored = 0;
    std::uint64_t duplicates = 0;
    std::uint64_t cursor = 0;  // pull: every record ≤ this of (node, epoch) is stored
    bool closedWithoutBye = false;
};

// The master's handshake alone; returns the node's name and epoch.
struct MasterHandshake {
    std::string node;
    std::string secret;
    Epoch epoch;
};
MasterHandshake masterHandshake(ByteStream& stream, SessionStore& store, const MasterSessionOptions& options);

// A whole session into store. Throws as runNodeSession; an AuthError's
// message names the (escaped) node and the cause for the master's log.
MasterSessionResult runMasterSession(ByteStream& stream, SessionStore& store, const MasterSessionOptions& options);

} // namespace ferry
