#include "StoreReader.h"

#include <algorithm>
#include <cctype>
#include <memory>
#include <set>

#include "ferry/Error.h"
#include "ferry/PgSqlConnection.h"

namespace metricsd {

namespace {

bool hasColumn(ferry::SqlConnection& db, const std::string& table, const std::string& column)
{
    ferry::SqlStatement s(db, "SELECT 1 FROM pragma_table_info(?1) WHERE name = ?2");
    s.bind(1, table).bind(2, column);
    return s.step();
}

bool hasTable(ferry::SqlConnection& db, const std::string& table)
{
    ferry::SqlStatement s(db, "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = ?1");
    s.bind(1, table);
    return s.step();
}

// node_reports' numeric columns, by their declared type: the table
// belongs to the store's owner, and every number in it is exported.
std::vector<std::string> numericReportColumns(ferry::SqlConnection& db)
{
    ferry::SqlStatement s(db, db.isPostgres() ? "SELECT column_name, data_type FROM information_schema.columns"
                                                " WHERE table_name = 'node_reports' AND table_schema = current_schema()"
                                                " ORDER BY ordinal_position"
                                              : "SELECT name, type FROM pragma_table_info('node_reports')");
    std::vector<std::string> out;
    while (s.step()) {
        std::string type = s.text(1);
        std::transform(type.begin(), type.end(), type.begin(), [](unsigned char c) { return std::tolower(c); });
        const bool numeric = type.find("int") != std::string::npos || type.find("real") != std::string::npos ||
                             type.find("double") != std::string::npos || type.find("numeric") != std::string::npos;
        const std::string name = s.text(0);
        if (numeric && name != "node")
            out.push_back(name);
    }
    return out;
}

} // namespace

StoreReader::StoreReader(const std::string& path)
    : m_file(std::make_unique<ferry::Database>(path, /*readOnly=*/true)),
      m_connection(std::make_unique<ferry::SqliteConnection>(*m_file)),
      m_db(*m_connection)
{
    if (!hasTable(m_db, "records") || !hasTable(m_db, "nodes"))
        throw ferry::Error("Failed to read the master's store " + path + ": it has no nodes or records table");
    m_hasEpoch = hasColumn(m_db, "records", "epoch");
    m_hasOrder = m_hasEpoch && hasColumn(m_db, "records", "stored_order");
    m_hasReports = hasTable(m_db, "node_reports");
    m_hasCounters = hasTable(m_db, "master_counters");
}

StoreReader::StoreReader(std::unique_ptr<ferry::SqlConnection> connection)
    : m_connection(std::move(connection)),
      m_db(*m_connection),
      m_hasEpoch(true),
      m_hasOrder(true),
      m_hasCounters(true),
      m_hasReports(true)
{}

std::unique_ptr<StoreReader> StoreReader::open(const std::string& sqlitePath, const std::string& postgresql)
{
    if (!postgresql.empty())
        return std::make_unique<StoreReader>(ferry::PgSqlConnection::openReader(postgresql));
    return std::make_unique<StoreReader>(sqlitePath);
}

std::vector<NodeRow> StoreReader::nodes()
{
    ferry::SqlStatement s(
        m_db, "SELECT name, state, mode, last_seen, last_push, last_pull, records_stored FROM nodes ORDER BY name");
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
    ferry::SqlStatement s(m_db, sql);
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
    const auto columns = numericReportColumns(m_db);
    std::string sql = "SELECT node";
    for (const auto& column : columns)
        sql += ", " + column;
    ferry::SqlStatement s(m_db, sql + " FROM node_reports ORDER BY node");
    while (s.step()) {
        NodeReport report;
        report.node = s.text(0);
        for (std::size_t c = 0; c < columns.size(); ++c) {
            const int column = static_cast<int>(c + 1);
            if (s.isNull(column))
                continue;
            try {
                report.values[columns[c]] = std::stod(s.text(column));
            } catch (const std::exception&) {
                // A value of another type in a numeric column: not a number to export.
            }
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
    ferry::SqlStatement s(m_db, "SELECT name, labels, value FROM master_counters ORDER BY name, labels");
    while (s.step())
        out.push_back({s.text(0), s.text(1), s.int64(2)});
    return out;
}

std::vector<RecordStream> StoreReader::streams()
{
    std::vector<RecordStream> out;
    for (const auto& n : nodes()) {
        if (m_hasEpoch) {
            ferry::SqlStatement s(
                m_db, std::string("SELECT epoch, MAX(seq), (SELECT time_ms FROM records r2 WHERE r2.node = ?1"
                                  " AND r2.epoch = r.epoch ORDER BY seq DESC LIMIT 1), ") +
                          (m_hasOrder ? "MAX(stored_order)" : "MAX(seq)") +
                          " FROM records r WHERE node = ?1 GROUP BY epoch");
            s.bind(1, n.name);
            while (s.step())
                out.push_back({n.name, s.text(0), static_cast<std::uint64_t>(s.int64(1)), s.int64(2),
                               static_cast<std::uint64_t>(s.int64(3))});
        } else {
            ferry::SqlStatement s(m_db, "SELECT seq, time_ms FROM records WHERE node = ?1 ORDER BY seq DESC LIMIT 1");
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
    ferry::SqlStatement s(m_db, sql);
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
