#pragma once
// What operators, pulld and metricsd read from the master's tables — and
// the operator's decisions on them — written once for either backend
// (SqlConnection.h): master.db or a PostgreSQL database shared by several
// masters. MasterStore (SQLite) and PgStore use these too, so every reader
// sees one definition of a node, an epoch and a health report.

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "ferry/SessionStore.h"
#include "ferry/SqlConnection.h"
#include "ferry/Wire.h"

namespace ferry {

struct NodeInfo {
    std::string name;
    std::string state; // accepted | pending | declined | revoked
    std::string mode;  // push | pull | auto
    std::string publicKey;
    std::string sshHost;
    std::uint16_t sshPort = 22;
    std::int64_t firstSeenMs = 0;
    std::int64_t lastSeenMs = 0;
    std::int64_t lastPushMs = 0;
    std::int64_t lastPullMs = 0;
    std::uint64_t recordsStored = 0;
    std::uint64_t lastSeq = 0; // of the active epoch
    std::string reason;        // why declined/revoked
    std::string activeEpoch;   // hex, "" before the first session
    std::uint64_t epochs = 0;  // epochs seen (reinstalls + 1)
    bool suspect = false;
};

// The last pull of a node (pull_state) and the cause of its last failure
// (pull_failure), as pulld records them.
struct PullRecord {
    std::string node;
    std::uint64_t cursor = 0; // the active epoch's
    std::int64_t lastAttemptMs = 0;
    std::int64_t lastSuccessMs = 0;
    std::string lastResult; // "" before the first pull
    std::uint64_t lastRecords = 0;
    std::uint64_t totalRecords = 0;
};
struct PullFailureRecord {
    std::int64_t atMs = 0;
    std::string cause;
    std::string message;
};

// A node's latest health report (node_reports) and when and how it came.
struct StoredReport {
    std::int64_t receivedMs = 0;
    std::string via; // push | pull
    HealthReport report;
};

class MasterQueries {
public:
    explicit MasterQueries(SqlConnection& connection) : m_db(connection) {}

    std::optional<NodeInfo> node(const std::string& name);
    std::vector<NodeInfo> nodes();
    std::vector<EpochInfo> epochs(const std::string& node);
    // The operator's decision for a suspect node. Throws Error naming the
    // node and epoch when the node has no such epoch.
    void resolveEpochs(const std::string& node, const std::string& keepEpochHex);
    std::optional<HealthReport> report(const std::string& node);
    std::optional<StoredReport> storedReport(const std::string& node);
    std::uint64_t countRecords(const std::string& node);

    // pulld's bookkeeping.
    std::optional<PullRecord> pullRecord(const std::string& node);
    std::vector<PullRecord> pullRecords();
    void recordPullAttempt(const std::string& node, std::int64_t whenMs, bool success, const std::string& result,
                           std::uint64_t records);
    // A pull that found nothing new is still a pull for everyone reading
    // the registry (storeBatch stamps last_pull only when records came).
    void notePull(const std::string& node, std::int64_t whenMs);
    std::optional<PullFailureRecord> pullFailure(const std::string& node);
    void recordPullFailure(const std::string& node, std::int64_t whenMs, const std::string& cause,
                           const std::string& message);

    // The master's own counters (master_counters), the one upsert every
    // store uses: adds each delta, creating a missing row. Runs inside the
    // caller's transaction when there is one (storeBatch, admitEpoch) and
    // opens none itself.
    void addCounters(const std::vector<CounterDelta>& deltas);
    std::vector<CounterValue> counters();

    SqlConnection& connection() { return m_db; }

private:
    SqlConnection& m_db;
};

} // namespace ferry
