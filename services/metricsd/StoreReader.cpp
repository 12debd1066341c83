#include "StoreReader.h"

#include <sqlite3.h>

#include <algorithm>
#include <memory>
#include <set>

#include "ferry/Error.h"

namespace metricsd {

namespace {

bool hasColumn(ferry::Database& db, const std::string& table, const std::string& column)
{
    ferry::Statement s(db, "SELECT 1 FROM pragma_table_info(?1) WHERE name = ?2");
    s.bind(1, table).bind(2, column);
    return s.step();
}

bool hasTable(ferry::Database& db, const std::string& table)
{
    ferry::Statement s(db, "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = ?1");
    s.bind(1, table);
    return s.step();
}

} // namespace

StoreReader::StoreReader(const std::string& path) : m_db(path, /*readOnly=*/true)
{
    if (!hasTable(m_db, "records") || !hasTable(m_db, "nodes"))
        throw ferry::Error("Failed to read the master's store " + path + ": it has no nodes or records table");
    m_hasEpoch = hasColumn(m_db, "records", "epoch");
    m_hasOrder = m_hasEpoch && hasColumn(m_db, "records", "stored_order");
    m_hasReports = hasTable(m_db, "node_reports");
    m_hasCounters = hasTable(m_db, "master_counters");
}

std::vector<NodeRow> StoreReader::nodes()
{
    ferry::Statement s(m_db,
                       "SELECT name, state, mode, last_seen, last_push, last_pull, records_stored FROM nodes ORDER BY name");
    std::vector<NodeRow> out;
    while (s.step())
        out.push_back({s.text(0), s.text(1), s.text(2), s.int64(3), s.int64(4), s.int64(5), s.int64(6)});
    return out;
}

std::vector<StoredRecord> StoreReader::latestRecords(const std::string& node, std::int64_t staleMs, int window)
{
    // (node, seq): the primary key walked backwards. (node, epoch, seq): the
    // epoch of the node's newest record first, then that epoch's last records.
    const char* sql = m_hasEpoch
        ? "SELECT kind, time_ms, payload FROM records WHERE node = ?1 AND epoch ="
          " (SELECT epoch FROM records WHERE node = ?1 ORDER BY time_ms DESC LIMIT 1)"
          " ORDER BY seq DESC LIMIT ?2"
        : "SELECT kind, time_ms, payload FROM records WHERE node = ?1 ORDER BY seq DESC LIMIT ?2";
    ferry::Statement s(m_db, sql);
    s.bind(1, node).bind(2, static_cast<std::int64_t>(window));
    std::vector<StoredRecord> rows;
    while (s.step())
        rows.push_back({s.text(0), s.int64(1), s.text(2)});
    std::map<std::string, std::int64_t> newest;
    std::int64_t newestOverall = 0;
    for (const auto& r : rows) {
        auto& t = newest[r.kind];
        t = std::max(t, r.timeMs);
        newestOverall = std::max(newestOverall, r.timeMs);
    }
    std::vector<StoredRecord> out;
    for (auto& r : rows) {
        if (r.timeMs == newest[r.kind] && r.timeMs >= newestOverall - staleMs)
            out.push_back(std::move(r));
    }
    // Oldest sequence first, so a run split into records keeps its order.
    std::reverse(out.begin(), out.end());
    return out;
}

std::vector<NodeReport> StoreReader::nodeReports()
{
    std::vector<NodeReport> out;
    if (!m_hasReports)
        return out;
    // Its columns belong to the store's owner; every numeric column is exported.
    sqlite3_stmt* raw = nullptr;
    if (sqlite3_prepare_v2(m_db.handle(), "SELECT * FROM node_reports", -1, &raw, nullptr) != SQLITE_OK)
        throw ferry::Error("Failed to read node_reports in " + m_db.path() + ": " + sqlite3_errmsg(m_db.handle()));
    std::unique_ptr<sqlite3_stmt, int (*)(sqlite3_stmt*)> stmt(raw, sqlite3_finalize);
    const int columns = sqlite3_column_count(raw);
    while (sqlite3_step(raw) == SQLITE_ROW) {
        NodeReport report;
        for (int c = 0; c < columns; ++c) {
            const std::string name = sqlite3_column_name(raw, c);
            const int type = sqlite3_column_type(raw, c);
            if ((name == "node" || name == "name") && type == SQLITE_TEXT)
                report.node = reinterpret_cast<const char*>(sqlite3_column_text(raw, c));
            else if (type == SQLITE_INTEGER || type == SQLITE_FLOAT)
                report.values[name] = sqlite3_column_double(raw, c);
        }
        if (!report.node.empty())
            out.push_back(std::move(report));
    }
    return out;
}

std::vector<StoreReader::Counter> StoreReader::counters()
{
    std::vector<Counter> out;
    if (!m_hasCounters)
        return out;
    ferry::Statement s(m_db, "SELECT name, labels, value FROM master_counters ORDER BY name, labels");
    while (s.step())
        out.push_back({s.text(0), s.text(1), s.int64(2)});
    return out;
}

std::vector<RecordStream> StoreReader::streams()
{
    std::vector<RecordStream> out;
    for (const auto& n : nodes()) {
        if (m_hasEpoch) {
            ferry::Statement s(m_db,
                               std::string("SELECT epoch, MAX(seq), (SELECT time_ms FROM records r2 WHERE r2.node = ?1"
                                           " AND r2.epoch = r.epoch ORDER BY seq DESC LIMIT 1), ") +
                                   (m_hasOrder ? "MAX(stored_order)" : "MAX(seq)") +
                                   " FROM records r WHERE node = ?1 GROUP BY epoch");
            s.bind(1, n.name);
            while (s.step())
                out.push_back({n.name, s.text(0), static_cast<std::uint64_t>(s.int64(1)), s.int64(2),
                               static_cast<std::uint64_t>(s.int64(3))});
        } else {
            ferry::Statement s(m_db, "SELECT seq, time_ms FROM records WHERE node = ?1 ORDER BY seq DESC LIMIT 1");
            s.bind(1, n.name);
            if (s.step())
                out.push_back({n.name,
                               {},
                               static_cast<std::uint64_t>(s.int64(0)),
                               s.int64(1),
                               static_cast<std::uint64_t>(s.int64(0))});
        }
    }
    return out;
}

std::vector<SequencedRecord> StoreReader::recordsAfter(const RecordStream& stream, std::uint64_t afterOrder, int limit)
{
    const char* sql =
        m_hasOrder ? "SELECT seq, kind, time_ms, payload, stored_order FROM records WHERE node = ?1 AND epoch = ?4"
                     " AND stored_order > ?2 ORDER BY stored_order LIMIT ?3"
        : m_hasEpoch
            ? "SELECT seq, kind, time_ms, payload, seq FROM records WHERE node = ?1 AND epoch = ?4 AND seq > ?2"
              " ORDER BY seq LIMIT ?3"
            : "SELECT seq, kind, time_ms, payload, seq FROM records WHERE node = ?1 AND seq > ?2 ORDER BY seq LIMIT ?3";
    ferry::Statement s(m_db, sql);
    s.bind(1, stream.node).bind(2, static_cast<std::int64_t>(afterOrder)).bind(3, static_cast<std::int64_t>(limit));
    // master.db keeps epochs as text (32 hex digits): a blob never equals them.
    if (m_hasEpoch)
        s.bind(4, stream.epoch);
    std::vector<SequencedRecord> out;
    while (s.step())
        out.push_back({static_cast<std::uint64_t>(s.int64(0)), static_cast<std::uint64_t>(s.int64(4)), s.text(1),
                       s.int64(2), s.text(3)});
    return out;
}

} // namespace metricsd
