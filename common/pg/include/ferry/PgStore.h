#pragma once
// The master's store on PostgreSQL, for several masters sharing one
// database (docs/postgresql.md). The same tables as master.db — nodes and
// records keyed (node, epoch, seq) — so that exactly-once holds across
// masters by the primary key alone: a batch stored by two masters, or twice
// by one, is inserted once (`ON CONFLICT DO NOTHING`), and the ack counts
// only what this insert added.
//
// Schema versions are kept in ferry_schema and applied in order under an
// advisory lock, so masters started together migrate once.
//
// Pulls are split among masters by a lease: an advisory lock per node held
// on a dedicated connection for the length of the pull. A master that dies
// drops its connection and with it the lease; no two masters pull one node
// at the same moment.

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "ferry/PgConnection.h"
#include "ferry/SessionStore.h"
#include "ferry/Wire.h"

namespace ferry {

// Epoch (32 hex digits, as in master.db) of records from spools made
// before epochs existed.
inline const std::string kLegacyEpoch = "00000000000000000000000000000000";

struct PgStoreCounts {
    std::uint64_t nodes = 0;
    std::uint64_t records = 0;
};

class PgStore : public SessionStore {
public:
    // Connects and brings the schema to the current version.
    explicit PgStore(const std::string& conninfo);
    // Borrows an open connection whose schema is current (PgPool migrates
    // its first connection).
    explicit PgStore(PgConnection& borrowed);

    // Creates or migrates the schema on connection, under an advisory lock
    // (masters started together migrate once).
    static void migrate(PgConnection& connection);

    // For readers, which never migrate: throws Error unless the schema on
    // connection is the one this code knows (an older one names the daemons
    // that migrate it; a role without SELECT on ferry_schema names
    // grantReaders).
    static void requireCurrentSchema(PgConnection& connection);

    // Gives role what the store's readers (ferry-metricsd, ferry-remote-write:
    // store.yml `readers_postgresql:`) read and nothing else: SELECT on
    // records, node_reports, master_counters and ferry_schema, and on the
    // public columns of nodes; never node_keys, nodes.secret or a pending
    // node's request. Whatever the role had on the store's tables before is
    // revoked first, so a wider grant does not survive. Run as the tables'
    // owner (the daemons' role); refuses the owner itself, a superuser and a
    // member of the owner's role, which would read every key anyway.
    // Returns the statements it ran. A migration that adds a table the
    // readers need adds it here.
    static std::vector<std::string> grantReaders(PgConnection& owner, const std::string& role);

    // The newest schema version this code knows.
    static int latestSchemaVersion();
    int schemaVersion();

    void addNode(const std::string& name, const std::string& secret);
    std::optional<std::string> nodeSecret(const std::string& name) override;

    // The same epoch rules as master.db (decideEpoch), serialised per node
    // across masters by a transaction-scoped advisory lock.
    // admitEpoch with the period floor or the pull cursor, in one
    // transaction (SessionStore.h).
    SessionAdmission admitSession(const SessionStart& start) override;
    using SessionStore::admitEpoch;
    std::vector<EpochInfo> epochs(const std::string& node);
    void storeReport(const std::string& node, const Epoch& epoch, const std::string& via, const std::string& address,
                     const HealthReport& report) override;
    std::uint64_t pullCursor(const std::string& node, const Epoch& epoch) override;
    void setPullCursor(const std::string& node, const Epoch& epoch, std::uint64_t cursor) override;
    PushPacing pushPacing(const std::string& node) override;
    void notePacedPush(const std::string& node, std::int64_t startMs) override;

    // Stores a batch in one transaction, durable at commit (PostgreSQL's
    // default synchronous_commit=on). Duplicates — already stored by this or
    // another master — are counted, not stored again.
    AckMessage storeBatch(const std::string& node, const Epoch& epoch, const std::vector<Record>& records,
                          const std::string& via, BatchLane lane = BatchLane::Backlog) override;
    std::vector<AckMessage> storeBatches(const std::string& node, const Epoch& epoch,
                                         const std::vector<BatchToStore>& batches, const std::string& via,
                                         const WithBatches& with) override;
    using SessionStore::storeBatches;
    // One statement per counter; inside the caller's transaction when
    // there is one.
    void addCounters(const std::vector<CounterDelta>& deltas) override;
    std::vector<CounterValue> counters() override;
    std::uint64_t countRecords(const std::string& node);
    PgStoreCounts counts();

    // Held while a pull of `node` runs; released when destroyed or when the
    // connection dies with its master.
    class PullLease {
    public:
        ~PullLease();
        PullLease(const PullLease&) = delete;
        PullLease& operator=(const PullLease&) = delete;

    private:
        friend class PgStore;
        PullLease(std::unique_ptr<PgConnection> owned, PgConnection& connection, std::string node);
        std::unique_ptr<PgConnection> m_owned;
        PgConnection& m_connection;
        std::string m_node;
    };
    // On a connection of its own to conninfo, without a store: nullptr when
    // another master holds the node's lease.
    static std::unique_ptr<PullLease> tryPullLease(const std::string& conninfo, const std::string& node);
    // The same on a connection the caller keeps open for longer than the
    // lease (a pull's own: its transactions leave a session lock alone).
    static std::unique_ptr<PullLease> tryPullLease(PgConnection& connection, const std::string& node);

    PgConnection& connection() { return m_db; }

private:
    // The node_reports row, in the caller's transaction.
    void insertReport(const std::string& node, const Epoch& epoch, const std::string& via, const std::string& address,
                      const HealthReport& report);
    // node_pacing's row, in the caller's transaction.
    void writePacedPush(const std::string& node, std::int64_t startMs);
    std::unique_ptr<PgConnection> m_owned;
    PgConnection& m_db;
};

// Copies every node and record of a SQLite master.db into PostgreSQL.
// Idempotent (rows already there are kept), so an interrupted copy can be
// run again; the result says how many rows each side holds afterwards.
struct MigrationResult {
    PgStoreCounts source;
    PgStoreCounts copied;
    PgStoreCounts target;
};
MigrationResult migrateSqliteToPostgres(const std::string& masterDbPath, PgStore& target);

} // namespace ferry
