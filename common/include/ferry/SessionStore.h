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

// The changes a backend applies for one admission, in one transaction.
struct EpochDecision {
    EpochAdmission admission;
    std::optional<std::string> insertState;  // a new epoch row in this state
    std::vector<std::pair<std::string, std::string>> setStates;  // (epoch hex, state)
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

class SessionStore {
public:
    virtual ~SessionStore() = default;

    // The secret of an accepted node; nullopt for any other name.
    virtual std::optional<std::string> nodeSecret(const std::string& name) = 0;
    // Notes a session of (node, epoch) from address; decides whether its
    // data may be stored. With a report, the node's health report is stored
    // in the same transaction (one sync).
    virtual EpochAdmission admitEpoch(const std::string& node, const Epoch& epoch, const std::string& address,
                                      const HealthReport* report = nullptr, const std::string& via = "push") = 0;
    virtual void storeReport(const std::string& node, const Epoch& epoch, const std::string& via,
                             const std::string& address, const HealthReport& report) = 0;
    // Stores a batch durably before returning; duplicates are counted, not
    // stored. via is "push" or "pull"; on pull the (node, epoch) cursor
    // moves to the batch's last sequence in the same transaction.
    virtual AckMessage storeBatch(const std::string& node, const Epoch& epoch, const std::vector<Record>& records,
                                  const std::string& via) = 0;
    // Pull cursors: every record of (node, epoch) ≤ cursor is stored.
    virtual std::uint64_t pullCursor(const std::string& node, const Epoch& epoch) = 0;
    virtual void setPullCursor(const std::string& node, const Epoch& epoch, std::uint64_t cursor) = 0;
    // The period floor: what decidePushPacing needs to know of node.
    virtual PushPacing pushPacing(const std::string& node) = 0;
    // Records that an on-time push of node began at startMs.
    virtual void notePacedPush(const std::string& node, std::int64_t startMs) = 0;
};

} // namespace ferry
