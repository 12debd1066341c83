#include "ferry/MasterQueries.h"

#include <spdlog/spdlog.h>

#include "ferry/Clock.h"
#include "ferry/Error.h"
#include "ferry/PullProtocol.h"

namespace ferry {

namespace {

constexpr const char* kNodeColumns =
    "SELECT n.name, n.state, n.mode, n.public_key, n.ssh_host, n.ssh_port, n.first_seen, n.last_seen,"
    " n.last_push, n.last_pull, n.records_stored, n.reason,"
    " COALESCE((SELECT e.last_seq FROM node_epochs e WHERE e.node = n.name AND e.state = 'active'"
    "  ORDER BY e.last_seen DESC LIMIT 1), 0),"
    " COALESCE((SELECT e.epoch FROM node_epochs e WHERE e.node = n.name AND e.state = 'active'"
    "  ORDER BY e.last_seen DESC LIMIT 1), ''),"
    " (SELECT COUNT(*) FROM node_epochs e WHERE e.node = n.name),"
    " CASE WHEN EXISTS (SELECT 1 FROM node_epochs e WHERE e.node = n.name AND e.state = 'suspect') THEN 1 ELSE 0 END"
    " FROM nodes n";

NodeInfo rowToNode(const SqlStatement& s)
{
    NodeInfo n;
    n.name = s.text(0);
    n.state = s.text(1);
    n.mode = s.text(2);
    n.publicKey = s.text(3);
    n.sshHost = s.text(4);
    n.sshPort = static_cast<std::uint16_t>(s.int64(5));
    n.firstSeenMs = s.int64(6);
    n.lastSeenMs = s.int64(7);
    n.lastPushMs = s.int64(8);
    n.lastPullMs = s.int64(9);
    n.recordsStored = static_cast<std::uint64_t>(s.int64(10));
    n.reason = s.text(11);
    n.lastSeq = static_cast<std::uint64_t>(s.int64(12));
    n.activeEpoch = s.text(13);
    n.epochs = static_cast<std::uint64_t>(s.int64(14));
    n.suspect = s.int64(15) != 0;
    return n;
}

// The cursor shown is that of the node's active epoch (cursors live per
// (node, epoch) in pull_cursors).
constexpr const char* kPullColumns =
    "SELECT p.node, COALESCE((SELECT c.cursor FROM pull_cursors c JOIN node_epochs e"
    "  ON e.node = c.node AND e.epoch = c.epoch WHERE c.node = p.node AND e.state = 'active'"
    "  ORDER BY e.last_seen DESC LIMIT 1), 0),"
    " p.last_attempt, p.last_success, p.last_result, p.last_records, p.total_records FROM pull_state p";

PullRecord rowToPull(const SqlStatement& s)
{
    return PullRecord{s.text(0),
                      static_cast<std::uint64_t>(s.int64(1)),
                      s.int64(2),
                      s.int64(3),
                      s.text(4),
                      static_cast<std::uint64_t>(s.int64(5)),
                      static_cast<std::uint64_t>(s.int64(6))};
}

} // namespace

std::optional<NodeInfo> MasterQueries::node(const std::string& name)
{
    SqlStatement s(m_db, std::string(kNodeColumns) + " WHERE n.name = ?1");
    s.bind(1, name);
    if (!s.step())
        return std::nullopt;
    return rowToNode(s);
}

std::vector<NodeInfo> MasterQueries::nodes()
{
    SqlStatement s(m_db, std::string(kNodeColumns) + " ORDER BY n.name");
    std::vector<NodeInfo> out;
    while (s.step())
        out.push_back(rowToNode(s));
    return out;
}

std::vector<EpochInfo> MasterQueries::epochs(const std::string& node)
{
    SqlStatement s(m_db, "SELECT node, epoch, first_seen, last_seen, from_address, state, decided_ms, records_stored,"
                         " last_seq FROM node_epochs WHERE node = ?1 ORDER BY first_seen, epoch");
    s.bind(1, node);
    std::vector<EpochInfo> out;
    while (s.step())
        out.push_back(EpochInfo{s.text(0), s.text(1), s.int64(2), s.int64(3), s.text(4), s.text(5), s.int64(6),
                                static_cast<std::uint64_t>(s.int64(7)), static_cast<std::uint64_t>(s.int64(8))});
    return out;
}

void MasterQueries::resolveEpochs(const std::string& node, const std::string& keepEpochHex)
{
    SqlTransaction tx(m_db);
    // A session admitting an epoch on another master decides under the same
    // key (PgStore::admitEpoch), so the two never interleave.
    m_db.lockUntilCommit("ferry-epoch:" + node);
    std::string keep;
    for (const auto& e : epochs(node))
        if (e.epoch == keepEpochHex || (keepEpochHex.size() >= 8 && e.epoch.rfind(keepEpochHex, 0) == 0)) {
            if (!keep.empty())
                throw Error("Failed to resolve node " + node + ": epoch prefix " + keepEpochHex + " is ambiguous");
            keep = e.epoch;
        }
    if (keep.empty())
        throw Error("Failed to resolve node " + node + ": it has no epoch " + keepEpochHex +
                    " (see `ferryctl master epochs " + node + "`)");
    SqlStatement(m_db, "UPDATE node_epochs SET state = CASE WHEN epoch = ?2 THEN 'active' ELSE 'retired' END,"
                       " decided_ms = ?3 WHERE node = ?1")
        .bind(1, node)
        .bind(2, keep)
        .bind(3, nowMs())
        .run();
    tx.commit();
    spdlog::info("Node {}: an operator kept epoch {}; the others are retired and held", escapeForLog(node),
                 keep.substr(0, 8));
}

std::optional<HealthReport> MasterQueries::report(const std::string& node)
{
    auto stored = storedReport(node);
    if (!stored)
        return std::nullopt;
    return stored->report;
}

std::optional<StoredReport> MasterQueries::storedReport(const std::string& node)
{
    SqlStatement s(m_db, "SELECT spool_records, spool_bytes, oldest_unsent_ms, last_seq, dropped_age, dropped_size,"
                         " dropped_bytes, transport_mode, transport_reason, spool_resets, last_reset, last_reset_ms,"
                         " fwcheck_verdict, received_ms, via FROM node_reports WHERE node = ?1");
    s.bind(1, node);
    if (!s.step())
        return std::nullopt;
    StoredReport stored;
    HealthReport& r = stored.report;
    r.spoolRecords = static_cast<std::uint64_t>(s.int64(0));
    r.spoolBytes = static_cast<std::uint64_t>(s.int64(1));
    r.oldestUnsentMs = s.int64(2);
    r.lastSeq = static_cast<std::uint64_t>(s.int64(3));
    r.droppedByAge = static_cast<std::uint64_t>(s.int64(4));
    r.droppedBySize = static_cast<std::uint64_t>(s.int64(5));
    r.droppedBytes = static_cast<std::uint64_t>(s.int64(6));
    r.transportMode = s.text(7);
    r.transportReason = s.text(8);
    r.spoolResets = static_cast<std::uint64_t>(s.int64(9));
    r.lastReset = s.text(10);
    r.lastResetMs = s.int64(11);
    r.fwcheckVerdict = s.text(12);
    stored.receivedMs = s.int64(13);
    stored.via = s.text(14);
    return stored;
}

std::uint64_t MasterQueries::countRecords(const std::string& node)
{
    SqlStatement s(m_db, "SELECT COUNT(*) FROM records WHERE node = ?1");
    s.bind(1, node);
    return s.step() ? static_cast<std::uint64_t>(s.int64(0)) : 0;
}

std::optional<PullRecord> MasterQueries::pullRecord(const std::string& node)
{
    SqlStatement s(m_db, std::string(kPullColumns) + " WHERE p.node = ?1");
    s.bind(1, node);
    if (!s.step())
        return std::nullopt;
    return rowToPull(s);
}

std::vector<PullRecord> MasterQueries::pullRecords()
{
    SqlStatement s(m_db, std::string(kPullColumns) + " ORDER BY p.node");
    std::vector<PullRecord> out;
    while (s.step())
        out.push_back(rowToPull(s));
    return out;
}

void MasterQueries::recordPullAttempt(const std::string& node, std::int64_t whenMs, bool success,
                                      const std::string& result, std::uint64_t records)
{
    SqlStatement s(m_db,
                   "INSERT INTO pull_state (node, last_attempt, last_success, last_result, last_records, total_records)"
                   " VALUES (?1, ?2, ?3, ?4, ?5, ?5)"
                   " ON CONFLICT (node) DO UPDATE SET last_attempt = excluded.last_attempt,"
                   " last_success = CASE WHEN excluded.last_success > 0 THEN excluded.last_attempt"
                   "  ELSE pull_state.last_success END,"
                   " last_result = excluded.last_result, last_records = excluded.last_records,"
                   " total_records = pull_state.total_records + excluded.last_records");
    s.bind(1, node).bind(2, whenMs).bind(3, success ? whenMs : 0).bind(4, result);
    s.bind(5, static_cast<std::int64_t>(records)).run();
}

void MasterQueries::notePull(const std::string& node, std::int64_t whenMs)
{
    SqlStatement(m_db, "UPDATE nodes SET last_pull = ?1, last_seen = ?1 WHERE name = ?2")
        .bind(1, whenMs)
        .bind(2, node)
        .run();
}

std::optional<PullFailureRecord> MasterQueries::pullFailure(const std::string& node)
{
    SqlStatement s(m_db, "SELECT at, cause, message FROM pull_failure WHERE node = ?1");
    s.bind(1, node);
    if (!s.step())
        return std::nullopt;
    return PullFailureRecord{s.int64(0), s.text(1), s.text(2)};
}

void MasterQueries::recordPullFailure(const std::string& node, std::int64_t whenMs, const std::string& cause,
                                      const std::string& message)
{
    SqlStatement(m_db, "INSERT INTO pull_failure (node, at, cause, message) VALUES (?1, ?2, ?3, ?4)"
                       " ON CONFLICT (node) DO UPDATE SET at = excluded.at, cause = excluded.cause,"
                       " message = excluded.message")
        .bind(1, node)
        .bind(2, whenMs)
        .bind(3, cause)
        .bind(4, message)
        .run();
}

void MasterQueries::addCounters(const std::vector<CounterDelta>& deltas)
{
    for (const auto& d : deltas)
        SqlStatement(m_db, "INSERT INTO master_counters (name, labels, value) VALUES (?1, ?2, ?3)"
                           " ON CONFLICT (name, labels) DO UPDATE SET value = master_counters.value + excluded.value")
            .bind(1, d.name)
            .bind(2, d.labels)
            .bind(3, d.delta)
            .run();
}

std::vector<CounterValue> MasterQueries::counters()
{
    std::vector<CounterValue> out;
    SqlStatement s(m_db, "SELECT name, labels, value FROM master_counters ORDER BY name, labels");
    while (s.step())
        out.push_back({s.text(0), s.text(1), s.int64(2)});
    return out;
}

} // namespace ferry
