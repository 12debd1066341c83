#pragma once
// The one data session of both transports: push (pushd → sshd forward →
// collectord) and pull (pulld → ssh → ferry-login). The node always sends
// records and the master always stores and acknowledges them; the only
// difference between the transports is who speaks first in the handshake.
//
// Handshake (session version 3). The responder sends Hello; the initiator
// proves first. Push: the master (collectord) responds, the node initiates.
// Pull: the node (ferry-login) responds, the master (pulld) initiates.
//
//   responder → Hello   {challenge[32], name}
//   initiator → Auth    {node, nonce[32], mac, version u8, capabilities u32, epoch,
//                        master_id, binding}                      (version 3)
//   responder → AuthOk  {mac, version u8, capabilities u32, epoch}
//
// node is the node's name; epoch (16 bytes) is carried by whichever of
// Auth/AuthOk the node sends, and is empty in the master's. Each mac is
// sessionProofV3(key, label, protocol, version, capabilities, challenge,
// nonce, node, epoch, master_id, binding) with label "node" or "master" for
// its sender and protocol "push" or "pull". key is the per-master key
// (Crypto.h) for master_id: the node derives it from its secret, the
// master holds it. On push the node names the master id it derived for (the
// `id:` of that masters: entry); on pull the master names its own. A
// master's key proves only its own id, so it cannot stand in for another.
//
// binding ties the proofs to the SSH session that carries them: it is the
// "SHA256:…" fingerprint of the SSH server's host key as the initiator (the
// SSH client: pushd on push, pulld on pull) verified it, and empty when no
// SSH carries the session. The responder runs on the SSH server's machine
// and, when it knows that sshd's host keys, refuses a non-empty binding that
// is not one of them: a proof relayed from a session with another sshd (a
// master or node that was not the one the initiator verified) fails.
//
// Changes from version 2: the key (the node secret itself → the key derived
// for the master id), the transcript tag ("ferry-proof-v2" → "-v3"), and
// master_id and binding in Auth and in both proofs. AuthOk is unchanged.
//
// Versions: both sides send kSessionVersion and refuse a peer below it
// with an Error {"unsupported-version", "<who> speaks session version N;
// this side needs 3: upgrade <package>"}. Older messages lack the
// trailing fields, so an older Auth decodes with its own version and gets
// that answer. (An older node or master fails on our Auth itself;
// this side then reports "closed during the handshake, an older peer?".)
// Capabilities are a bit set: the session runs with the intersection, so a
// later capability needs no version bump. Each proof covers the bits its
// message carries (Auth: what its sender offers; AuthOk: the intersection)
// and is checked over those bits as sent, not over what this side knows, so
// a peer that offers a bit this side does not know still authenticates.
// Defined:
//   1  newest-first (kCapNewestFirst), below.
//   2  policy first (kCapEarlyPolicy), below.
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
//   node   → Bye   (in the same write as its last Batch, before the Acks;
//                   the master stores and acks every batch it read before
//                   the Bye, then ends the session. Nodes before this
//                   change sent it after the last Ack; masters of every
//                   version take either.)
// Policy first (capability 2, both sides have it; push only, where the
// master is the responder). One round trip fewer:
//   master → Hello
//   node   → Auth
//   master → AuthOk + Policy          (one write)
//   node   → Report + Batch … + Bye   (one write when it fits the window)
//   master → Ack …
// instead of Hello, Auth, AuthOk, Report, Policy, Batch … + Bye, Ack …. The
// master decides the Policy (the epoch's admission, the pacing) without the
// Report, which it reads as the first frame after the Policy and stores
// before anything else (in a commit of its own, not synced: the first
// batch's synced commit makes it durable). A held node sends Report + Bye.
// The node counts a spool reset as told once a batch was acknowledged (the
// Report was stored before it), not at the Policy. Either side without the
// bit runs the order above; an older peer never sees the new one. On pull
// the bit changes nothing: the node's Report already follows its AuthOk
// without a wait (both in one write), and the master needs the node's epoch
// from that AuthOk before it can answer with the cursor in its Policy.
//
// Group commit: the master stores the batches that have arrived (up to 8
// batches or 8 MiB) in one transaction, with one sync, and then sends their
// Acks in order; a HeadBatch is stored as soon as it can be, alone with
// whatever came before it. The commits run on a thread of the session's own
// (one for all its groups) while the session reads the batches that follow
// (up to one more group; then it stops reading until the commit is done):
// those form the next group. The wire is unchanged: one Ack per batch, each
// after the commit that holds its batch. The node keeps up to
// kSessionWindow (8) batches in flight, so that a week's backlog at 1 MiB
// batches goes out without waiting for an Ack; it reads every Ack that has
// already arrived and deletes what they confirm in one spool transaction
// (each Ack still checked against its own batch).
// The policy map of a push carries the node's period floor
// (kPolicyMinPushPeriod, kPolicyMinPullInterval, seconds, when set) and, when
// the push came too soon after the last one that kept to the floor,
// kPolicyNextPushAt: the Unix time in milliseconds before which the node
// should not push again (decidePushPacing, SessionStore.h). The early push is
// served like any other: its records are stored and acknowledged.
//
// Newest first (capability 1, both sides have it). When more is queued than
// one batch holds — a node back from an outage — the node first sends its
// newest records as one HeadBatch (same payload as Batch), so that the
// master has the node's present within one cycle, then the backlog oldest
// first in Batches up to the record before the head: two lanes in one
// session, one window, Acks in the order sent. The Ack of a HeadBatch
// deletes exactly that batch's records on the node (seq first..last), the
// Ack of a Batch everything ≤ its stored_up_to (which is below the head).
// A HeadBatch does not move the pull cursor; the backlog batches that move
// it never pass the head, and the head is stored once acked, so "every
// record ≤ cursor is stored" holds. A session cut between the lanes leaves
// whatever was not acked queued; the next session sends it again, and the
// master's key (node, epoch, seq) stores every record once.
//
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

constexpr std::uint8_t kSessionVersion = 3;
// Capability bits this code knows.
constexpr std::uint32_t kCapNewestFirst = 1u << 0;
constexpr std::uint32_t kCapEarlyPolicy = 1u << 1;
constexpr std::uint32_t kSessionCapabilities = kCapNewestFirst | kCapEarlyPolicy;
constexpr const char* kSessionErrorAuth = "auth-failed";
constexpr const char* kSessionErrorVersion = "unsupported-version";
constexpr const char* kSessionErrorProtocol = "bad-message";
constexpr const char* kSessionErrorCursorAhead = "cursor-ahead";
// Keys of the Policy answer's map.
constexpr const char* kPolicyMinPushPeriod = "min_push_period";
constexpr const char* kPolicyMinPullInterval = "min_pull_interval";
constexpr const char* kPolicyNextPushAt = "next_push_at_ms";

// Who sends Hello (Responder) and who proves first (Initiator).
enum class SessionSide { Initiator, Responder };

// The peer refused our session version, or spoke an older one.
class VersionError : public ProtocolError {
public:
    using ProtocolError::ProtocolError;
};

// ---- the node's side ----

// What a node session has moved so far, for progress displays: records and
// bytes (payload and kind, as SpoolStats counts them) the master has
// acknowledged, of those queued when the batches began.
struct SessionProgress {
    std::uint64_t recordsDone = 0;
    std::uint64_t recordsTotal = 0;
    std::uint64_t bytesDone = 0;
    std::uint64_t bytesTotal = 0;
};

struct NodeSessionOptions {
    std::string protocol = "push";  // "push" or "pull": part of the proofs
    SessionSide side = SessionSide::Initiator;
    std::string nodeName;
    std::string secret; // the node secret; the session derives the per-master key
    // Push: the id of the master pushed to (its masters: entry) and the
    // binding (the master sshd's host key fingerprint, as pushd verified it).
    std::string masterId;
    std::string binding;
    // Pull: this node's sshd host key fingerprints; a master's binding must
    // be one of them (empty: not checked).
    std::vector<std::string> ownHostKeys;
    std::size_t batchRecords = 2000;
    std::size_t batchBytes = 1024 * 1024; // ≤ kMaxBatchBytes
    // Batches sent ahead of their Ack; hides the round trip per batch and the
    // master's commits.
    unsigned window = kSessionWindow;
    std::chrono::milliseconds ioTimeout{30000};
    // Transport mode and reason, fwcheck verdict: the caller's part of the
    // report. The spool's figures are filled in by the session.
    HealthReport report;
    // Called on the session's thread before the first batch and after each
    // Ack; it must not throw. Unset: the session does not count bytes.
    std::function<void(const SessionProgress&)> onProgress;
    // Capabilities offered (tests turn one off to compare, or to play an
    // older node).
    std::uint32_t capabilities = kSessionCapabilities;
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
    std::uint64_t headRecords = 0;       // sent ahead of the backlog (newest first)
    std::uint32_t capabilities = 0;      // in effect for the session
};

// The node's handshake alone, for one epoch of its spool (pull's `status`
// runs it before its answer); returns the capabilities in effect.
std::uint32_t nodeHandshake(ByteStream& stream, const Epoch& epoch, const NodeSessionOptions& options,
                            std::string& peerName);

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
    // Pull: the node we connected to and its credential (as stored, see
    // parseNodeCredential). Push: empty; the node names itself in Auth and
    // its credential comes from the store.
    std::string expectedNode;
    std::string secret;
    // Pull: the master id to prove as when the credential is a legacy
    // secret (a derived key carries its own id); the binding (the node sshd's
    // host key fingerprint, as pulld verified it).
    std::string masterId;
    std::string binding;
    // Push: this master sshd's host key fingerprints; a node's binding must
    // be one of them (empty: not checked).
    std::vector<std::string> ownHostKeys;
    // Where the session came from, for node_epochs (pull: the node's SSH
    // host; push: the stream's peer).
    std::string address;
    std::chrono::milliseconds ioTimeout{30000};
    // Entries sent in every Policy answer.
    std::vector<std::pair<std::string, std::string>> policy;
    // Push: the master's default period floor (registry.yml), for nodes
    // without their own (0: none).
    std::uint32_t minPushPeriodS = 0;
    std::uint32_t minPullIntervalS = 0;
    // Test hook, documented in docs/durability.md: called after a group of
    // batches was committed and before the first of their Acks is sent.
    std::function<void()> afterCommit;
    // Push: called once the node proved its secret, before AuthOk; false
    // refuses the session with "busy" (the node already runs as many
    // sessions as the collector allows one node).
    std::function<bool(const std::string& node)> onAuthenticated;
    // Capabilities this side takes or offers (tests turn one off to play an
    // older master).
    std::uint32_t capabilities = kSessionCapabilities;
};

struct MasterSessionResult {
    std::string node;  // empty when authentication failed
    Epoch epoch;
    EpochAdmission admission;
    PacingDecision pacing; // push only
    HealthReport report;
    std::uint64_t batches = 0;
    std::uint64_t records = 0;
    std::uint64_t newlyStored = 0;
    std::uint64_t duplicates = 0;
    std::uint64_t cursor = 0;  // pull: every record ≤ this of (node, epoch) is stored
    std::uint64_t headRecords = 0; // of records, in HeadBatches
    bool closedWithoutBye = false;
};

// The master's handshake alone; returns the node's name and epoch.
struct MasterHandshake {
    std::string node;
    std::string key; // the per-master key the session was proven with
    Epoch epoch;
    std::uint32_t capabilities = 0; // in effect for the session
};
MasterHandshake masterHandshake(ByteStream& stream, SessionStore& store, const MasterSessionOptions& options);

// A whole session into store. Throws as runNodeSession; an AuthError's
// message names the (escaped) node and the cause for the master's log.
MasterSessionResult runMasterSession(ByteStream& stream, SessionStore& store, const MasterSessionOptions& options);
// The same with a store that is opened once the session needs it: as the
// responder (push) right after Hello is sent, so that opening it overlaps
// the node's Auth instead of delaying the Hello the node waits for.
// openStore is called at most once; what it returns must outlive the call.
MasterSessionResult runMasterSession(ByteStream& stream, const std::function<SessionStore&()>& openStore,
                                     const MasterSessionOptions& options);

} // namespace ferry
