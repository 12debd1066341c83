#pragma once
// Read-only access to the master's store for metricsd: master.db, or the
// PostgreSQL database that store.yml names (SqlConnection.h). Every SQL
// statement metricsd runs is in StoreReader.cpp, so a schema change touches
// one file. On master.db it works with the records table keyed (node, seq)
// and with the one keyed (node, epoch, seq), and reads node_reports when
// that table exists; the file is opened with SQLITE_OPEN_READONLY. On
// PostgreSQL the schema is always current. metricsd never writes.

#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "ferry/SqlConnection.h"

namespace metricsd {

struct NodeRow {
    std::string name;
    std::string state;
    std::string mode;
    std::int64_t lastSeenMs = 0;
    std::int64_t lastPushMs = 0;
    std::int64_t lastPullMs = 0;
    std::int64_t recordsStored = 0;
};

struct StoredRecord {
    std::string kind;
    std::int64_t timeMs = 0;
    std::string payload;
};

// One (node, epoch): the records of one spool identity, numbered by seq.
// epoch is empty in the store without epochs.
struct RecordStream {
    std::string node;
    std::string epoch;
    std::uint64_t lastSeq = 0;
    std::int64_t newestMs = 0;  // time of the record with lastSeq
    std::uint64_t lastOrder = 0; // the highest store order (seq in stores before version 4)
};

struct SequencedRecord {
    std::uint64_t seq = 0;
    // The order in which the master stored it within its stream
    // (records.stored_order): newest-first sessions store a stream out of
    // seq order, and remote-write follows this order so that it skips
    // nothing that arrives later with a lower seq.
    std::uint64_t order = 0;
    std::string kind;
    std::int64_t timeMs = 0;
    std::string payload;
};

// A node's latest health report: column name → number (numeric columns only).
struct NodeReport {
    std::string node;
    std::map<std::string, double> values;
};

class StoreReader {
public:
    // master.db at path, read-only.
    explicit StoreReader(const std::string& path);
    // A store of the current schema on any backend.
    explicit StoreReader(std::unique_ptr<ferry::SqlConnection> connection);
    // PostgreSQL when postgresql (a libpq connection string) is set, else
    // master.db at sqlitePath. On PostgreSQL it never migrates (the readers'
    // role may only read) and refuses a schema it does not know.
    static std::unique_ptr<StoreReader> open(const std::string& sqlitePath, const std::string& postgresql);

    std::vector<NodeRow> nodes();
    // The newest run of each record kind of a node: for every kind, all
    // records stamped with that kind's newest time (a run split into several
    // records), among the node's last `window` records; kinds whose newest
    // time is more than staleMs older than the node's newest are left out.
    std::vector<StoredRecord> latestRecords(const std::string& node, std::int64_t staleMs, int window = 256);
    std::vector<NodeReport> nodeReports();
    // master_counters (master.db version 4): the master's own counters;
    // empty in older stores.
    struct Counter {
        std::string name;
        std::string labels;
        std::int64_t value = 0;
    };
    std::vector<Counter> counters();
    // Every (node, epoch) that has records, with its last sequence.
    std::vector<RecordStream> streams();
    // Records of a stream with store order > afterOrder, in store order.
    std::vector<SequencedRecord> recordsAfter(const RecordStream& stream, std::uint64_t afterOrder, int limit);
    bool hasEpochs() const { return m_hasEpoch; }

private:
    std::unique_ptr<ferry::Database> m_file;
    std::unique_ptr<ferry::SqlConnection> m_connection;
    ferry::SqlConnection& m_db;
    bool m_hasEpoch = false;
    bool m_hasOrder = false;
    bool m_hasCounters = false;
    bool m_hasReports = false;
};

} // namespace metricsd
