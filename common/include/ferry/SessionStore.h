#pragma once
// What a data session needs from the master's store, whichever backend holds
// it: SQLite (MasterStore, one master) or PostgreSQL (PgStore, several
// masters sharing one database). runMasterSession (Session.h) talks to this
// interface only, so both transports behave the same on either backend.
//
// The epoch rules (which epoch of a node is stored, which is held) are
// decided once, by decideEpoch below, and applied by each backend in one
// transaction.

#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "ferry/Epoch.h"
#include "ferry/Wire.h"

namespace ferry {

struct EpochInfo {
    std::string node;
    std::string epoch;  // hex
    std::int64_t firstSeenMs = 0;
    std::int64_t lastSeenMs = 0;
    std::string fromAddress;
    std::string state;  // active | retired | suspect
    std::int64_t decidedMs = 0;
    std::uint64_t recordsStored = 0;
    std::uint64_t lastSeq = 0;
};

// What the store decided about a session's epoch.
struct EpochAdmission {
    bool held = false;
    std::string reason;       // why held, for the peer and the log
    bool newEpoch = false;    // first session of this epoch
    std::string previous;     // the epoch it replaced (hex), on a reinstall
};

// One of the master's own counters (master_counters): exported by metricsd
// as ferry_<name>_total{<labels>}. labels is the exposition text of the
// label set, made by counterLabels, so that every backend stores the same
// key for the same set.
struct CounterDelta {
    std::string name;   // without the ferry_ prefix and the _total suffix
    std::string labels; // e.g. outcome="ok",transport="push"
    std::int64_t delta = 1;
};
struct CounterValue {
    std::string name;
    std::string labels;
    std::int64_t value = 0;
};
// `a="x",b="y"`, sorted by name, values escaped as the text format asks.
std::string counterLabels(std::vector<std::pair<std::string, std::string>> labels);
// records_stored{via} and duplicates_refused{via} of one stored batch.
std::vector<CounterDelta> batchCounters(const AckMessage& ack, const std::string& via);

// The changes a backend applies for one admission, in one transaction.
struct EpochDecision {
    EpochAdmission admission;
    std::optional<std::string> insertState;  // a new epoch row in this state
    std::vector<std::pair<std::string, std::string>> setStates;  // (epoch hex, state)
    // epochs_new{kind=first|reinstall|suspect_node}, epochs_suspect (epochs
    // this decision made suspect), added in the same transaction.
    std::vector<CounterDelta> counters;
};

// Which lane of a session a batch travels in (Session.h). Backlog batches
// follow each other from the pull cursor, so a pull's cursor moves with
// them; a head batch (the newest records, sent first after an outage) jumps
// ahead and leaves the cursor where it is.
enum class BatchLane { Backlog, Head };

// One batch of a group stored in one transaction (storeBatches).
struct BatchToStore {
    const std::vector<Record>* records = nullptr; // not empty
    BatchLane lane = BatchLane::Backlog;
    // Pull, a backlog batch that ends right below the session's head lane,
    // which is stored already: the last record of the head. The cursor
    // moves past the head in the batch's transaction instead of in one of
    // its own at Bye. 0: the batch's last record.
    std::uint64_t cursorAfter = 0;
};

// What a session stores in the transaction of a group of batches
// (storeBatches) instead of in a transaction of its own.
struct WithBatches {
    // Policy first (Session.h): the node's health report, which came in the
    // write of its first batch, and where the session came from. Stored as
    // storeReport stores it.
    const HealthReport* report = nullptr;
    std::string address;
};

// The epoch state machine (see MasterStore.h). known: every epoch the store
// has for the node. Logs what an operator must hear about (first epoch,
// reinstall, suspect), with untrusted text escaped.
EpochDecision decideEpoch(const std::string& node, const Epoch& epoch, const std::string& address,
                          const std::vector<EpochInfo>& known);

// The period floor, enforced by the master (issue 15). A push that comes
// sooner than the node's floor after its last on-time push is not refused:
// its records are stored as usual, and the Policy answer tells the node when
// to come back. Only on-time pushes move the clock, so a node that pushes too
// often is told the same time again rather than being pushed ever later.
//
// What the store knows of one node for this decision:
struct PushPacing {
    std::optional<std::uint32_t> minPushPeriodS; // the node's own floor (node_policy); nullopt: the default
    std::optional<std::uint32_t> minPullIntervalS;
    std::int64_t lastPacedPushMs = 0; // when its last on-time push began; 0: none yet
};

struct PacingDecision {
    std::uint32_t minPushPeriodS = 0; // the floor that applies (0: none)
    std::uint32_t minPullIntervalS = 0;
    bool early = false;
    std::int64_t comeBackAtMs = 0; // early only: the first moment an on-time push may begin
};

// A push is early when it begins more than a tenth of the floor before the
// floor has passed: a node's timer is allowed its jitter (RandomizedDelaySec,
// the SSH connect before the session) without being scolded.
PacingDecision decidePushPacing(const PushPacing& known, std::uint32_t defaultMinPushPeriodS,
                                std::uint32_t defaultMinPullIntervalS, std::int64_t nowMs);

// What a session asks of the store when it starts (admitSession), all
// decided in one transaction.
struct SessionStart {
    std::string node;
    Epoch epoch;
    std::string address;
    std::string via = "push";
    // The node's health report, when it came before the Policy.
    const HealthReport* report = nullptr;
    // Push: the period floor (decidePushPacing) with the master's defaults,
    // for a session that began at nowMs; an on-time push is noted
    // (notePacedPush) unless its epoch is held.
    bool pacing = false;
    std::uint32_t defaultMinPushPeriodS = 0;
    std::uint32_t defaultMinPullIntervalS = 0;
    std::int64_t nowMs = 0;
    // Pull: the (node, epoch) cursor.
    bool cursor = false;
};

struct SessionAdmission {
    EpochAdmission epoch;
    PacingDecision pacing;    // pacing only
    std::uint64_t cursor = 0; // cursor only
};

class SessionStore {
public:
    virtual ~SessionStore() = default;

    // The secret of an accepted node; nullopt for any other name.
    virtual std::optional<std::string> nodeSecret(const std::string& name) = 0;
    // Notes a session of (node, epoch) from address; decides whether its
    // data may be stored. With a report, the node's health report is stored
    // in the same transaction. The commit does not wait for the disk: losing
    // it to a power cut costs nothing (nothing was acknowledged on it; the
    // next session decides the same again), and the first batch's durable
    // commit makes it durable too (docs/durability.md).
    // (admitSession without the floor and the cursor.)
    EpochAdmission admitEpoch(const std::string& node, const Epoch& epoch, const std::string& address,
                              const HealthReport* report = nullptr, const std::string& via = "push")
    {
        SessionStart start;
        start.node = node;
        start.epoch = epoch;
        start.address = address;
        start.via = via;
        start.report = report;
        return admitSession(start).epoch;
    }
    // A session's start: admitEpoch, and the period floor (pushPacing,
    // decidePushPacing, notePacedPush) or the pull cursor, in ONE
    // transaction, committed without waiting for the disk as admitEpoch.
    virtual SessionAdmission admitSession(const SessionStart& start) = 0;
    // The node's health report alone (a session whose Report came after its
    // Policy, Session.h), committed without waiting for the disk, as
    // admitEpoch: the first batch's durable commit makes it durable.
    virtual void storeReport(const std::string& node, const Epoch& epoch, const std::string& via,
                             const std::string& address, const HealthReport& report) = 0;
    // Stores a batch durably before returning; duplicates are counted, not
    // stored. via is "push" or "pull"; on pull a backlog batch moves the
    // (node, epoch) cursor to its last sequence in the same transaction.
    // Each stored record gets the next store order of its (node, epoch)
    // (records.stored_order), so that remote-write can follow what was
    // stored in the order it was stored, whichever lane brought it. The
    // counters records_stored{via} and duplicates_refused{via} move in the
    // same transaction.
    virtual AckMessage storeBatch(const std::string& node, const Epoch& epoch, const std::vector<Record>& records,
                                  const std::string& via, BatchLane lane = BatchLane::Backlog) = 0;
    // Group commit: several batches of one session, each stored as
    // storeBatch stores it and in the order given, all in ONE transaction
    // with one sync, together with what `with` names. Returns one Ack per
    // batch, in order; none of them may be sent before this returns (then
    // all of them are durable). A failure stores none of them.
    virtual std::vector<AckMessage> storeBatches(const std::string& node, const Epoch& epoch,
                                                 const std::vector<BatchToStore>& batches, const std::string& via,
                                                 const WithBatches& with) = 0;
    std::vector<AckMessage> storeBatches(const std::string& node, const Epoch& epoch,
                                         const std::vector<BatchToStore>& batches, const std::string& via)
    {
        return storeBatches(node, epoch, batches, via, WithBatches{});
    }
    // Pull cursors: every record of (node, epoch) ≤ cursor is stored.
    virtual std::uint64_t pullCursor(const std::string& node, const Epoch& epoch) = 0;
    virtual void setPullCursor(const std::string& node, const Epoch& epoch, std::uint64_t cursor) = 0;
    // The period floor: what decidePushPacing needs to know of node.
    virtual PushPacing pushPacing(const std::string& node) = 0;
    // Records that an on-time push of node began at startMs. Not synced
    // either: a pacing time lost to a power cut only judges the next push
    // against the one before.
    virtual void notePacedPush(const std::string& node, std::int64_t startMs) = 0;

    // The master's own counters, kept across restarts (master_counters):
    // collectord, pulld and registryd add, metricsd reads. Outside a
    // transaction, master.db commits them without a sync (a metric: a power
    // cut may lose the last increments).
    virtual void addCounters(const std::vector<CounterDelta>& deltas) = 0;
    // The same, for increments no one waits for (a session's outcome once it
    // ended): a store may keep them in memory and write them with its next
    // transaction that writes anyway (MasterStore: the next session's
    // admission or batch, at the latest its flushPending() or its close).
    // By default written at once.
    virtual void addCountersLater(const std::vector<CounterDelta>& deltas) { addCounters(deltas); }
    virtual std::vector<CounterValue> counters() = 0;

protected:
    // The rest of admitSession on every backend, in the caller's
    // transaction once the epoch is admitted: the period floor (push),
    // decided from what the store knows of the node, an on-time push whose
    // epoch is not held noted by notePacedPush (notePacedPush's write); or
    // the cursor (pull).
    SessionAdmission completeAdmission(const SessionStart& start, const EpochAdmission& epoch,
                                       const std::function<void()>& notePacedPush);
};

} // namespace ferry
