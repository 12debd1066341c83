#include "ferry/PgStore.h"

#include <spdlog/spdlog.h>

#include <unistd.h>

#include "ferry/Clock.h"
#include "ferry/MasterQueries.h"
#include "ferry/MasterStore.h"
#include "ferry/PgSqlConnection.h"
#include "ferry/Sqlite.h"

namespace ferry {

namespace {

// Ordered migrations: entry i brings the schema from version i to i + 1.
// Never edit one that has shipped; add a new one.
const std::vector<std::string> kMigrations = {
    // 1: master.db's schema version 2 (MasterSchema.h) in PostgreSQL's
    // types: BIGINT for milliseconds and counters, BYTEA for blobs. Epochs
    // are 32 hex digits as there.
    R"SQL(
CREATE TABLE nodes (
  name TEXT PRIMARY KEY, secret TEXT NOT NULL, state TEXT NOT NULL DEFAULT 'accepted',
  mode TEXT NOT NULL DEFAULT 'push', public_key TEXT NOT NULL DEFAULT '',
  ssh_host TEXT NOT NULL DEFAULT '', ssh_port INTEGER NOT NULL DEFAULT 22,
  first_seen BIGINT NOT NULL DEFAULT 0, last_seen BIGINT NOT NULL DEFAULT 0,
  last_push BIGINT NOT NULL DEFAULT 0, last_pull BIGINT NOT NULL DEFAULT 0,
  records_stored BIGINT NOT NULL DEFAULT 0, reason TEXT NOT NULL DEFAULT '',
  pending_request BYTEA, pending_mac BYTEA);
CREATE INDEX nodes_public_key ON nodes (public_key);
CREATE TABLE records (
  node TEXT NOT NULL, epoch TEXT NOT NULL, seq BIGINT NOT NULL, time_ms BIGINT NOT NULL,
  kind TEXT NOT NULL, payload BYTEA NOT NULL, received_ms BIGINT NOT NULL, via TEXT NOT NULL,
  PRIMARY KEY (node, epoch, seq));
CREATE TABLE node_epochs (
  node TEXT NOT NULL, epoch TEXT NOT NULL, first_seen BIGINT NOT NULL, last_seen BIGINT NOT NULL,
  from_address TEXT NOT NULL DEFAULT '',
  state TEXT NOT NULL DEFAULT 'active' CHECK (state IN ('active', 'retired', 'suspect')),
  decided_ms BIGINT NOT NULL DEFAULT 0, records_stored BIGINT NOT NULL DEFAULT 0,
  last_seq BIGINT NOT NULL DEFAULT 0, PRIMARY KEY (node, epoch));
CREATE TABLE node_reports (
  node TEXT PRIMARY KEY, epoch TEXT NOT NULL, received_ms BIGINT NOT NULL, via TEXT NOT NULL,
  from_address TEXT NOT NULL, spool_records BIGINT NOT NULL, spool_bytes BIGINT NOT NULL,
  oldest_unsent_ms BIGINT NOT NULL, last_seq BIGINT NOT NULL, dropped_age BIGINT NOT NULL,
  dropped_size BIGINT NOT NULL, dropped_bytes BIGINT NOT NULL, transport_mode TEXT NOT NULL,
  transport_reason TEXT NOT NULL, spool_resets BIGINT NOT NULL, last_reset TEXT NOT NULL,
  last_reset_ms BIGINT NOT NULL, fwcheck_verdict TEXT NOT NULL);
CREATE TABLE pull_state (
  node TEXT PRIMARY KEY, last_attempt BIGINT NOT NULL DEFAULT 0, last_success BIGINT NOT NULL DEFAULT 0,
  last_result TEXT NOT NULL DEFAULT '', last_records BIGINT NOT NULL DEFAULT 0,
  total_records BIGINT NOT NULL DEFAULT 0);
CREATE TABLE pull_cursors (
  node TEXT NOT NULL, epoch TEXT NOT NULL, cursor BIGINT NOT NULL DEFAULT 0, PRIMARY KEY (node, epoch));
CREATE TABLE registry_nonces (
  node TEXT NOT NULL, nonce BYTEA NOT NULL, time_ms BIGINT NOT NULL, PRIMARY KEY (node, nonce));
)SQL",
    // 2: master.db's schema version 3 (MasterSchema.h): registration v2 —
    // pinned node host keys, changes awaiting the operator, per-node period
    // floors, certificates and their revocations — and pull failure causes.
    R"SQL(
CREATE INDEX registry_nonces_time ON registry_nonces (time_ms);
CREATE TABLE node_host_keys (
  node TEXT NOT NULL, key TEXT NOT NULL, position INTEGER NOT NULL, PRIMARY KEY (node, key));
CREATE TABLE node_host_key_changes (node TEXT PRIMARY KEY, keys TEXT NOT NULL, seen_ms BIGINT NOT NULL);
CREATE TABLE node_policy (node TEXT PRIMARY KEY, min_push_period_s INTEGER, min_pull_interval_s INTEGER);
CREATE TABLE node_certificates (
  node TEXT PRIMARY KEY, serial BIGINT NOT NULL UNIQUE, public_key TEXT NOT NULL, certificate TEXT NOT NULL,
  valid_to_ms BIGINT NOT NULL);
CREATE TABLE revoked_certificates (serial BIGINT PRIMARY KEY, node TEXT NOT NULL, revoked_ms BIGINT NOT NULL);
CREATE TABLE pull_failure (node TEXT PRIMARY KEY, at BIGINT NOT NULL, cause TEXT NOT NULL, message TEXT NOT NULL);
)SQL",
    // 3: the period floor enforced per push (master.db version 4): when each
    // node's last on-time push began.
    R"SQL(
CREATE TABLE node_pacing (node TEXT PRIMARY KEY, last_paced_push_ms BIGINT NOT NULL);
)SQL",
    // 4: master.db's version 4: store order and the master's counters.
    // Records stored so far were stored in sequence order.
    R"SQL(
ALTER TABLE records ADD COLUMN stored_order BIGINT NOT NULL DEFAULT 0;
UPDATE records SET stored_order = seq;
ALTER TABLE node_epochs ADD COLUMN stored_order BIGINT NOT NULL DEFAULT 0;
UPDATE node_epochs SET stored_order = COALESCE((SELECT MAX(r.seq) FROM records r
  WHERE r.node = node_epochs.node AND r.epoch = node_epochs.epoch), 0);
CREATE INDEX records_order ON records (node, epoch, stored_order);
CREATE TABLE master_counters (
  name TEXT NOT NULL, labels TEXT NOT NULL DEFAULT '', value BIGINT NOT NULL, PRIMARY KEY (name, labels));
)SQL",
    // 5: master.db's version 7: node keys in a table of their own, so that
    // they can be granted to the roles of collectord, registryd and pulld
    // only (docs/postgresql.md); nodes.secret stays, blank. One transaction.
    R"SQL(
CREATE TABLE node_keys (node TEXT PRIMARY KEY, secret TEXT NOT NULL);
INSERT INTO node_keys (node, secret) SELECT name, secret FROM nodes WHERE secret <> ''
  ON CONFLICT (node) DO UPDATE SET secret = excluded.secret;
UPDATE nodes SET secret = '' WHERE secret <> '';
)SQL",
};

// Serialises schema changes between masters starting at once.
constexpr std::int64_t kMigrationLock = 0x66657272790001;  // "ferry" 1

std::uint32_t recordsStored(PgConnection& db, const std::string& node, std::uint32_t added, const std::string& via,
                            std::int64_t now)
{
    const std::string column = via == "pull" ? "last_pull" : "last_push";
    db.exec("UPDATE nodes SET records_stored = records_stored + $1, last_seen = $2, " + column +
                " = $2 WHERE name = $3",
            {PgParam::integer(added), PgParam::integer(now), PgParam::text(node)});
    return added;
}

} // namespace

int PgStore::latestSchemaVersion()
{
    return static_cast<int>(kMigrations.size());
}

PgStore::PgStore(const std::string& conninfo) : m_owned(std::make_unique<PgConnection>(conninfo)), m_db(*m_owned)
{
    migrate(m_db);
}

PgStore::PgStore(PgConnection& borrowed) : m_db(borrowed)
{}

int PgStore::schemaVersion()
{
    const auto r = m_db.exec("SELECT version FROM ferry_schema");
    return r.rows() == 0 ? 0 : static_cast<int>(r.int64(0, 0));
}

void PgStore::migrate(PgConnection& db)
{
    PgTransaction tx(db);
    db.exec("SELECT pg_advisory_xact_lock($1)", {PgParam::integer(kMigrationLock)});
    db.execScript("CREATE TABLE IF NOT EXISTS ferry_schema (version INTEGER NOT NULL)");
    auto r = db.exec("SELECT version FROM ferry_schema");
    int version = 0;
    if (r.rows() == 0)
        db.exec("INSERT INTO ferry_schema VALUES (0)");
    else
        version = static_cast<int>(r.int64(0, 0));
    if (version > latestSchemaVersion())
        throw Error("The PostgreSQL store at " + db.where() + " has schema version " + std::to_string(version) +
                    ", newer than this master knows (" + std::to_string(latestSchemaVersion()) +
                    "): upgrade this master before pointing it there");
    for (int v = version; v < latestSchemaVersion(); ++v) {
        db.execScript(kMigrations[static_cast<std::size_t>(v)]);
        spdlog::info("Migrated the PostgreSQL store at {} to schema version {}", db.where(), v + 1);
    }
    db.exec("UPDATE ferry_schema SET version = $1", {PgParam::integer(latestSchemaVersion())});
    tx.commit();
}

void PgStore::requireCurrentSchema(PgConnection& db)
{
    int version = 0;
    try {
        const auto r = db.exec("SELECT version FROM ferry_schema");
        version = r.rows() == 0 ? 0 : static_cast<int>(r.int64(0, 0));
    } catch (const PgError& e) {
        // 42P01 undefined_table: no master daemon has created the schema yet.
        if (e.sqlState() != "42P01")
            throw Error(std::string(e.what()) + (e.sqlState() == "42501"
                                                     ? "; give this role the readers' grants (ferryctl master "
                                                       "grant-readers ROLE, docs/postgresql.md)"
                                                     : ""));
    }
    if (version < latestSchemaVersion())
        throw Error("The PostgreSQL store at " + db.where() + " has schema version " + std::to_string(version) +
                    ", not this master's " + std::to_string(latestSchemaVersion()) +
                    ": readers never migrate it; a master daemon that writes (ferry-collectord, ferry-registryd, "
                    "ferry-pulld) or `ferryctl master nodes` does");
    if (version > latestSchemaVersion())
        throw Error("The PostgreSQL store at " + db.where() + " has schema version " + std::to_string(version) +
                    ", newer than this master knows (" + std::to_string(latestSchemaVersion()) +
                    "): upgrade this master before pointing it there");
}

std::vector<std::string> PgStore::grantReaders(PgConnection& db, const std::string& role)
{
    const auto who = db.exec("SELECT quote_ident(r.rolname::text), r.rolsuper, pg_has_role(r.rolname, current_user,"
                             " 'USAGE'), r.rolname = current_user FROM pg_roles r WHERE r.rolname::text = $1::text",
                             {PgParam::text(role)});
    if (who.rows() == 0)
        throw Error("No role '" + role + "' in the PostgreSQL server at " + db.where() +
                    ": create it first (CREATE ROLE \"" + role + "\" LOGIN, as the server's administrator)");
    if (who.text(0, 3) == "t")
        throw Error("Role '" + role +
                    "' is the role this store is opened with (postgresql: in store.yml), which "
                    "must read the node keys: give the readers a role of their own");
    if (who.text(0, 1) == "t")
        throw Error("Role '" + role + "' is a superuser: it reads every table whatever is granted");
    if (who.text(0, 2) == "t")
        throw Error("Role '" + role +
                    "' has the privileges of the role this store is opened with (a member of "
                    "it), so it reads the node keys whatever is granted: give the readers a role of their own");
    const std::string quoted = who.text(0, 0);
    // The columns metricsd's StoreReader selects from nodes; the others
    // (secret, pending_request, pending_mac, reason, addresses) are not theirs.
    const std::vector<std::string> statements = {
        "REVOKE ALL ON ALL TABLES IN SCHEMA public FROM " + quoted,
        "GRANT SELECT ON ferry_schema, records, node_reports, master_counters TO " + quoted,
        "GRANT SELECT (name, state, mode, last_seen, last_push, last_pull, records_stored) ON nodes TO " + quoted,
    };
    PgTransaction tx(db);
    for (const auto& statement : statements)
        db.exec(statement);
    tx.commit();
    return statements;
}

void PgStore::addNode(const std::string& name, const std::string& secret)
{
    PgTransaction tx(m_db);
    // A key proven with another secret belongs to another install.
    m_db.exec("INSERT INTO nodes (name, secret, state, first_seen) VALUES ($1, '', 'accepted', $3)"
              " ON CONFLICT (name) DO UPDATE SET state = 'accepted', reason = '',"
              " public_key = CASE WHEN (SELECT k.secret FROM node_keys k WHERE k.node = $1) = $2"
              " THEN nodes.public_key ELSE '' END",
              {PgParam::text(name), PgParam::text(secret), PgParam::integer(nowMs())});
    m_db.exec("INSERT INTO node_keys (node, secret) VALUES ($1, $2) ON CONFLICT (node) DO UPDATE SET"
              " secret = excluded.secret",
              {PgParam::text(name), PgParam::text(secret)});
    tx.commit();
}

std::optional<std::string> PgStore::nodeSecret(const std::string& name)
{
    const auto r = m_db.exec("SELECT k.secret FROM nodes n JOIN node_keys k ON k.node = n.name"
                             " WHERE n.name = $1 AND n.state = 'accepted'",
                             {PgParam::text(name)});
    if (r.rows() == 0)
        return std::nullopt;
    return r.text(0, 0);
}

AckMessage PgStore::storeBatch(const std::string& node, const Epoch& epochId, const std::vector<Record>& records,
                               const std::string& via, BatchLane lane)
{
    if (records.empty())
        return {};
    return storeBatches(node, epochId, {{&records, lane}}, via).front();
}

std::vector<AckMessage> PgStore::storeBatches(const std::string& node, const Epoch& epochId,
                                              const std::vector<BatchToStore>& batches, const std::string& via,
                                              const WithBatches& with)
{
    const std::string epoch = epochId.hex();
    std::vector<AckMessage> acks;
    acks.reserve(batches.size());
    const std::int64_t now = nowMs();
    PgTransaction tx(m_db);
    // The upsert locks the (node, epoch) row until the commit: batches of
    // one stream, from any master, take their store orders one after the
    // other, in the order they commit. A duplicate leaves its order unused
    // (orders only need to grow).
    const auto base = m_db.exec("INSERT INTO node_epochs (node, epoch, first_seen, last_seen) VALUES ($1, $2, $3, $3)"
                                " ON CONFLICT (node, epoch) DO UPDATE SET last_seen = excluded.last_seen"
                                " RETURNING stored_order",
                                {PgParam::text(node), PgParam::text(epoch), PgParam::integer(now)})
                          .int64(0, 0);
    std::int64_t order = base;
    AckMessage total;
    for (const auto& batch : batches) {
        const auto& records = *batch.records;
        AckMessage ack;
        // One statement per batch: a multi-row VALUES list with every value
        // a parameter (5 per record, far below PostgreSQL's 65,535).
        std::string sql =
            "INSERT INTO records (node, epoch, seq, time_ms, kind, payload, received_ms, via, stored_order) VALUES ";
        std::vector<PgParam> params;
        params.reserve(records.size() * 5 + 4);
        params.push_back(PgParam::text(node));
        params.push_back(PgParam::text(epoch));
        params.push_back(PgParam::integer(now));
        params.push_back(PgParam::text(via));
        for (std::size_t i = 0; i < records.size(); ++i) {
            const auto& r = records[i];
            const std::size_t first = params.size() + 1;
            sql += (i ? "," : "") + std::string("($1, $2, $") + std::to_string(first) + "::bigint, $" +
                   std::to_string(first + 1) + "::bigint, $" + std::to_string(first + 2) + ", $" +
                   std::to_string(first + 3) + ", $3::bigint, $4, $" + std::to_string(first + 4) + "::bigint)";
            params.push_back(PgParam::integer(static_cast<std::int64_t>(r.seq)));
            params.push_back(PgParam::integer(r.timeMs));
            params.push_back(PgParam::text(r.kind));
            params.push_back(PgParam::bytes(r.payload));
            params.push_back(PgParam::integer(order + static_cast<std::int64_t>(i) + 1));
            ack.storedUpTo = std::max(ack.storedUpTo, r.seq);
        }
        sql += " ON CONFLICT DO NOTHING";
        const auto result = m_db.exec(sql, params);
        order += static_cast<std::int64_t>(records.size());
        ack.newlyStored = static_cast<std::uint32_t>(result.affected());
        ack.duplicates = static_cast<std::uint32_t>(records.size()) - ack.newlyStored;
        // A pull's backlog batch follows the cursor: everything up to its
        // last record is stored (or was dropped by the node's bounds, never
        // sent).
        if (via == "pull" && batch.lane == BatchLane::Backlog && !records.empty())
            setPullCursor(node, epochId, std::max(records.back().seq, batch.cursorAfter));
        total.newlyStored += ack.newlyStored;
        total.duplicates += ack.duplicates;
        total.storedUpTo = std::max(total.storedUpTo, ack.storedUpTo);
        acks.push_back(ack);
    }
    recordsStored(m_db, node, total.newlyStored, via, now);
    m_db.exec("UPDATE node_epochs SET records_stored = records_stored + $3, last_seq = GREATEST(last_seq, $4),"
              " stored_order = $5 WHERE node = $1 AND epoch = $2",
              {PgParam::text(node), PgParam::text(epoch), PgParam::integer(total.newlyStored),
               PgParam::integer(static_cast<std::int64_t>(total.storedUpTo)), PgParam::integer(order)});
    addCounters(batchCounters(total, via));
    if (with.report != nullptr)
        insertReport(node, epochId, via, with.address, *with.report);
    // synchronous_commit=on (PostgreSQL's default): the commit is flushed to
    // the server's WAL when it returns, so the Acks that follow are safe.
    tx.commit();
    return acks;
}

void PgStore::addCounters(const std::vector<CounterDelta>& deltas)
{
    PgSqlConnection tables(m_db);
    MasterQueries(tables).addCounters(deltas);
}

std::vector<CounterValue> PgStore::counters()
{
    PgSqlConnection tables(m_db);
    return MasterQueries(tables).counters();
}

std::vector<EpochInfo> PgStore::epochs(const std::string& node)
{
    PgSqlConnection tables(m_db);
    return MasterQueries(tables).epochs(node);
}

SessionAdmission PgStore::admitSession(const SessionStart& start)
{
    const std::string& node = start.node;
    const Epoch& epoch = start.epoch;
    const std::string& address = start.address;
    const std::string hex = epoch.hex();
    const std::int64_t now = nowMs();
    PgTransaction tx(m_db);
    // Not flushed at the commit (SessionStore::admitEpoch): PostgreSQL
    // flushes its WAL up to a synchronous commit's record before that
    // commit returns, this transaction's included, so the first batch
    // stored makes it durable before anything is acked.
    m_db.exec("SET LOCAL synchronous_commit TO OFF");
    // Two masters seeing two epochs of one node at once must decide one
    // after the other, or each would miss the other's epoch.
    m_db.exec("SELECT pg_advisory_xact_lock(hashtextextended('ferry-epoch:' || $1, 0))", {PgParam::text(node)});
    const EpochDecision d = decideEpoch(node, epoch, address, epochs(node));
    if (d.insertState)
        m_db.exec("INSERT INTO node_epochs (node, epoch, first_seen, last_seen, from_address, state)"
                  " VALUES ($1, $2, $3, $3, $4, $5)",
                  {PgParam::text(node), PgParam::text(hex), PgParam::integer(now), PgParam::text(address),
                   PgParam::text(*d.insertState)});
    for (const auto& [which, state] : d.setStates)
        m_db.exec("UPDATE node_epochs SET state = $3 WHERE node = $1 AND epoch = $2",
                  {PgParam::text(node), PgParam::text(which), PgParam::text(state)});
    m_db.exec("UPDATE node_epochs SET last_seen = $3, from_address = $4 WHERE node = $1 AND epoch = $2",
              {PgParam::text(node), PgParam::text(hex), PgParam::integer(now), PgParam::text(address)});
    if (start.report != nullptr)
        insertReport(node, epoch, start.via, address, *start.report);
    addCounters(d.counters);
    const SessionAdmission out = completeAdmission(start, d.admission, [&] { writePacedPush(node, start.nowMs); });
    tx.commit();
    return out;
}

void PgStore::storeReport(const std::string& node, const Epoch& epoch, const std::string& via,
                          const std::string& address, const HealthReport& report)
{
    // Not flushed at the commit (SessionStore::storeReport), as admitEpoch.
    PgTransaction tx(m_db);
    m_db.exec("SET LOCAL synchronous_commit TO OFF");
    insertReport(node, epoch, via, address, report);
    tx.commit();
}

void PgStore::insertReport(const std::string& node, const Epoch& epoch, const std::string& via,
                           const std::string& address, const HealthReport& r)
{
    auto n = [](std::uint64_t v) { return PgParam::integer(static_cast<std::int64_t>(v)); };
    m_db.exec("INSERT INTO node_reports (node, epoch, received_ms, via, from_address, spool_records, spool_bytes,"
              " oldest_unsent_ms, last_seq, dropped_age, dropped_size, dropped_bytes, transport_mode,"
              " transport_reason, spool_resets, last_reset, last_reset_ms, fwcheck_verdict)"
              " VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18)"
              " ON CONFLICT (node) DO UPDATE SET epoch = excluded.epoch, received_ms = excluded.received_ms,"
              " via = excluded.via, from_address = excluded.from_address, spool_records = excluded.spool_records,"
              " spool_bytes = excluded.spool_bytes, oldest_unsent_ms = excluded.oldest_unsent_ms,"
              " last_seq = excluded.last_seq, dropped_age = excluded.dropped_age,"
              " dropped_size = excluded.dropped_size, dropped_bytes = excluded.dropped_bytes,"
              " transport_mode = excluded.transport_mode, transport_reason = excluded.transport_reason,"
              " spool_resets = excluded.spool_resets, last_reset = excluded.last_reset,"
              " last_reset_ms = excluded.last_reset_ms, fwcheck_verdict = excluded.fwcheck_verdict",
              {PgParam::text(node), PgParam::text(epoch.hex()), PgParam::integer(nowMs()), PgParam::text(via),
               PgParam::text(address), n(r.spoolRecords), n(r.spoolBytes), PgParam::integer(r.oldestUnsentMs),
               n(r.lastSeq), n(r.droppedByAge), n(r.droppedBySize), n(r.droppedBytes), PgParam::text(r.transportMode),
               PgParam::text(r.transportReason), n(r.spoolResets), PgParam::text(r.lastReset),
               PgParam::integer(r.lastResetMs), PgParam::text(r.fwcheckVerdict)});
}

std::uint64_t PgStore::pullCursor(const std::string& node, const Epoch& epoch)
{
    const auto r = m_db.exec("SELECT cursor FROM pull_cursors WHERE node = $1 AND epoch = $2",
                             {PgParam::text(node), PgParam::text(epoch.hex())});
    return r.rows() == 0 ? 0 : static_cast<std::uint64_t>(r.int64(0, 0));
}

PushPacing PgStore::pushPacing(const std::string& node)
{
    PushPacing p;
    const auto policy = m_db.exec("SELECT min_push_period_s, min_pull_interval_s FROM node_policy WHERE node = $1",
                                  {PgParam::text(node)});
    if (policy.rows() > 0) {
        if (!policy.isNull(0, 0))
            p.minPushPeriodS = static_cast<std::uint32_t>(policy.int64(0, 0));
        if (!policy.isNull(0, 1))
            p.minPullIntervalS = static_cast<std::uint32_t>(policy.int64(0, 1));
    }
    const auto pacing = m_db.exec("SELECT last_paced_push_ms FROM node_pacing WHERE node = $1", {PgParam::text(node)});
    if (pacing.rows() > 0)
        p.lastPacedPushMs = pacing.int64(0, 0);
    return p;
}

void PgStore::notePacedPush(const std::string& node, std::int64_t startMs)
{
    // Not flushed, like the admission it follows (SessionStore.h).
    PgTransaction tx(m_db);
    m_db.exec("SET LOCAL synchronous_commit TO OFF");
    writePacedPush(node, startMs);
    tx.commit();
}

void PgStore::writePacedPush(const std::string& node, std::int64_t startMs)
{
    m_db.exec("INSERT INTO node_pacing (node, last_paced_push_ms) VALUES ($1, $2) ON CONFLICT (node) DO UPDATE SET"
              " last_paced_push_ms = excluded.last_paced_push_ms",
              {PgParam::text(node), PgParam::integer(startMs)});
}

void PgStore::setPullCursor(const std::string& node, const Epoch& epoch, std::uint64_t cursor)
{
    // Cursors only move forward: two masters finishing pulls out of order
    // must not move one back.
    m_db.exec("INSERT INTO pull_cursors (node, epoch, cursor) VALUES ($1, $2, $3) ON CONFLICT (node, epoch)"
              " DO UPDATE SET cursor = GREATEST(pull_cursors.cursor, excluded.cursor)",
              {PgParam::text(node), PgParam::text(epoch.hex()), PgParam::integer(static_cast<std::int64_t>(cursor))});
}

std::uint64_t PgStore::countRecords(const std::string& node)
{
    return static_cast<std::uint64_t>(
        m_db.exec("SELECT COUNT(*) FROM records WHERE node = $1", {PgParam::text(node)}).int64(0, 0));
}

PgStoreCounts PgStore::counts()
{
    PgStoreCounts c;
    c.nodes = static_cast<std::uint64_t>(m_db.exec("SELECT COUNT(*) FROM nodes").int64(0, 0));
    c.records = static_cast<std::uint64_t>(m_db.exec("SELECT COUNT(*) FROM records").int64(0, 0));
    return c;
}

PgStore::PullLease::PullLease(std::unique_ptr<PgConnection> owned, PgConnection& connection, std::string node)
    : m_owned(std::move(owned)), m_connection(connection), m_node(std::move(node))
{
}

PgStore::PullLease::~PullLease()
{
    try {
        m_connection.exec("SELECT pg_advisory_unlock(hashtextextended('ferry-pull:' || $1, 0))",
                          {PgParam::text(m_node)});
    } catch (const std::exception& e) {
        // A connection that failed is dropped (its pool, or m_owned), and the lock with it.
        spdlog::debug("Ignoring a failed unlock of the pull lease of {}: {}", m_node, e.what());
    }
}

std::unique_ptr<PgStore::PullLease> PgStore::tryPullLease(const std::string& conninfo, const std::string& node)
{
    // A connection of its own: session-level advisory locks live and die with it.
    auto connection = std::make_unique<PgConnection>(conninfo);
    auto lease = tryPullLease(*connection, node);
    if (lease)
        lease->m_owned = std::move(connection);
    return lease;
}

std::unique_ptr<PgStore::PullLease> PgStore::tryPullLease(PgConnection& connection, const std::string& node)
{
    const auto r =
        connection.exec("SELECT pg_try_advisory_lock(hashtextextended('ferry-pull:' || $1, 0))", {PgParam::text(node)});
    if (r.text(0, 0) != "t")
        return nullptr;
    return std::unique_ptr<PullLease>(new PullLease(nullptr, connection, node));
}

namespace {

// A table of master.db copied as it is: its columns, each 'i' (integer),
// 't' (text) or 'b' (blob), NULL kept.
struct CopiedTable {
    const char* name;
    std::vector<std::pair<const char*, char>> columns;
};

// The registry's and pulld's tables beyond nodes and records (schema 3):
// a master that moves keeps its pins, policies, certificates, revocations,
// pull state and the nodes' last reports. Rows already there are kept.
void copyRegistryTables(Database& file, PgConnection& target)
{
    static const std::vector<CopiedTable> kTables = {
        {"node_reports",
         {{"node", 't'},
          {"epoch", 't'},
          {"received_ms", 'i'},
          {"via", 't'},
          {"from_address", 't'},
          {"spool_records", 'i'},
          {"spool_bytes", 'i'},
          {"oldest_unsent_ms", 'i'},
          {"last_seq", 'i'},
          {"dropped_age", 'i'},
          {"dropped_size", 'i'},
          {"dropped_bytes", 'i'},
          {"transport_mode", 't'},
          {"transport_reason", 't'},
          {"spool_resets", 'i'},
          {"last_reset", 't'},
          {"last_reset_ms", 'i'},
          {"fwcheck_verdict", 't'}}},
        {"pull_state",
         {{"node", 't'},
          {"last_attempt", 'i'},
          {"last_success", 'i'},
          {"last_result", 't'},
          {"last_records", 'i'},
          {"total_records", 'i'}}},
        {"pull_failure", {{"node", 't'}, {"at", 'i'}, {"cause", 't'}, {"message", 't'}}},
        {"node_host_keys", {{"node", 't'}, {"key", 't'}, {"position", 'i'}}},
        {"node_host_key_changes", {{"node", 't'}, {"keys", 't'}, {"seen_ms", 'i'}}},
        {"node_policy", {{"node", 't'}, {"min_push_period_s", 'i'}, {"min_pull_interval_s", 'i'}}},
        {"node_certificates",
         {{"node", 't'}, {"serial", 'i'}, {"public_key", 't'}, {"certificate", 't'}, {"valid_to_ms", 'i'}}},
        {"revoked_certificates", {{"serial", 'i'}, {"node", 't'}, {"revoked_ms", 'i'}}},
    };
    SqliteConnection from(file);
    PgSqlConnection to(target);
    auto hasTable = [&](const char* name) {
        SqlStatement t(from, "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = ?1");
        t.bind(1, name);
        return t.step();
    };
    for (const auto& table : kTables) {
        if (!hasTable(table.name))
            continue;
        std::string columns, placeholders;
        for (std::size_t i = 0; i < table.columns.size(); ++i) {
            columns += (i ? ", " : "") + std::string(table.columns[i].first);
            placeholders += (i ? ", ?" : "?") + std::to_string(i + 1);
        }
        SqlStatement read(from, "SELECT " + columns + " FROM " + table.name);
        SqlTransaction tx(to);
        while (read.step()) {
            SqlStatement write(to, "INSERT INTO " + std::string(table.name) + " (" + columns + ") VALUES (" +
                                       placeholders + ") ON CONFLICT DO NOTHING");
            for (std::size_t i = 0; i < table.columns.size(); ++i) {
                const int c = static_cast<int>(i);
                if (read.isNull(c))
                    write.bindNull(c + 1);
                else if (table.columns[i].second == 'i')
                    write.bind(c + 1, read.int64(c));
                else if (table.columns[i].second == 'b')
                    write.bindBlob(c + 1, read.text(c));
                else
                    write.bind(c + 1, read.text(c));
            }
            write.run();
        }
        tx.commit();
    }
    // A pending node's signed request: accepting it later checks it.
    SqlStatement hasPending(from, "SELECT 1 FROM pragma_table_info('nodes') WHERE name = 'pending_mac'");
    if (!hasPending.step())
        return;
    SqlStatement pending(from, "SELECT name, pending_request, pending_mac FROM nodes"
                               " WHERE pending_request IS NOT NULL AND pending_mac IS NOT NULL");
    while (pending.step())
        SqlStatement(to, "UPDATE nodes SET pending_request = ?2, pending_mac = ?3 WHERE name = ?1"
                         " AND pending_request IS NULL")
            .bind(1, pending.text(0))
            .bindBlob(2, pending.text(1))
            .bindBlob(3, pending.text(2))
            .run();
}

} // namespace

MigrationResult migrateSqliteToPostgres(const std::string& masterDbPath, PgStore& target)
{
    MigrationResult result;
    Database source(masterDbPath, true);
    bool hasEpoch = false;
    {
        Statement cols(source, "SELECT name FROM pragma_table_info('records')");
        while (cols.step())
            hasEpoch = hasEpoch || cols.text(0) == "epoch";
    }
    PgConnection& db = target.connection();
    // The keys: node-keys.db's (master.db version 7 on), else the column
    // of a master.db from before it.
    std::string secretColumn = "secret";
    if (const std::string keys = nodeKeysPath(masterDbPath); ::access(keys.c_str(), R_OK) == 0) {
        Statement(source, "ATTACH DATABASE ?1 AS keys").bind(1, keys).run();
        Statement t(source, "SELECT 1 FROM keys.sqlite_master WHERE type = 'table' AND name = 'node_keys'");
        if (t.step())
            secretColumn = "COALESCE((SELECT k.secret FROM keys.node_keys k WHERE k.node = nodes.name), secret)";
    }
    {
        Statement nodes(source, "SELECT name, " + secretColumn +
                                    ", state, mode, public_key, ssh_host, ssh_port, first_seen,"
                                    " last_seen, last_push, last_pull, records_stored, reason FROM nodes");
        PgTransaction tx(db);
        while (nodes.step()) {
            ++result.source.nodes;
            const auto r = db.exec(
                "INSERT INTO nodes (name, secret, state, mode, public_key, ssh_host, ssh_port, first_seen,"
                " last_seen, last_push, last_pull, records_stored, reason)"
                " VALUES ($1, $2, $3, $4, $5, $6, $7::integer, $8::bigint, $9::bigint, $10::bigint, $11::bigint,"
                " $12::bigint, $13) ON CONFLICT (name) DO NOTHING",
                // The key goes to node_keys below; the column stays blank.
                {PgParam::text(nodes.text(0)), PgParam::text(""), PgParam::text(nodes.text(2)),
                 PgParam::text(nodes.text(3)), PgParam::text(nodes.text(4)), PgParam::text(nodes.text(5)),
                 PgParam::integer(nodes.int64(6)), PgParam::integer(nodes.int64(7)), PgParam::integer(nodes.int64(8)),
                 PgParam::integer(nodes.int64(9)), PgParam::integer(nodes.int64(10)), PgParam::integer(nodes.int64(11)),
                 PgParam::text(nodes.text(12))});
            result.copied.nodes += r.affected();
            if (r.affected() > 0 && !nodes.text(1).empty())
                db.exec("INSERT INTO node_keys (node, secret) VALUES ($1, $2) ON CONFLICT (node) DO NOTHING",
                        {PgParam::text(nodes.text(0)), PgParam::text(nodes.text(1))});
        }
        tx.commit();
    }
    {
        Statement records(source, std::string("SELECT node, ") + (hasEpoch ? "epoch" : "NULL") +
                                      ", seq, time_ms, kind, payload, received_ms, via FROM records"
                                      " ORDER BY node, " + (hasEpoch ? "epoch, " : "") + "seq");
        // One transaction per thousand rows: bounded memory, and a copy
        // interrupted half-way resumes where the ON CONFLICT says.
        std::unique_ptr<PgTransaction> tx;
        std::uint64_t inTx = 0;
        while (records.step()) {
            if (!tx)
                tx = std::make_unique<PgTransaction>(db);
            ++result.source.records;
            std::string epoch = hasEpoch ? records.text(1) : kLegacyEpoch;
            if (epoch.empty())
                epoch = kLegacyEpoch;
            const auto r = db.exec(
                "INSERT INTO records (node, epoch, seq, time_ms, kind, payload, received_ms, via, stored_order)"
                " VALUES ($1, $2, $3::bigint, $4::bigint, $5, $6, $7::bigint, $8, $3::bigint) ON CONFLICT DO NOTHING",
                {PgParam::text(records.text(0)), PgParam::text(epoch), PgParam::integer(records.int64(2)),
                 PgParam::integer(records.int64(3)), PgParam::text(records.text(4)), PgParam::bytes(records.text(5)),
                 PgParam::integer(records.int64(6)), PgParam::text(records.text(7))});
            result.copied.records += r.affected();
            if (++inTx == 1000) {
                tx->commit();
                tx.reset();
                inTx = 0;
            }
        }
        if (tx)
            tx->commit();
    }
    // Epoch states and pull cursors, where the file has them (a master.db
    // from before epochs has neither: its records are the legacy epoch's).
    Statement tables(source, "SELECT name FROM sqlite_master WHERE type = 'table'");
    bool hasEpochs = false, hasCursors = false;
    while (tables.step()) {
        hasEpochs = hasEpochs || tables.text(0) == "node_epochs";
        hasCursors = hasCursors || tables.text(0) == "pull_cursors";
    }
    if (hasEpochs) {
        Statement e(source, "SELECT node, epoch, first_seen, last_seen, from_address, state, decided_ms,"
                            " records_stored, last_seq FROM node_epochs");
        PgTransaction tx(db);
        while (e.step())
            db.exec("INSERT INTO node_epochs (node, epoch, first_seen, last_seen, from_address, state, decided_ms,"
                    " records_stored, last_seq) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)"
                    " ON CONFLICT (node, epoch) DO NOTHING",
                    {PgParam::text(e.text(0)), PgParam::text(e.text(1)), PgParam::integer(e.int64(2)),
                     PgParam::integer(e.int64(3)), PgParam::text(e.text(4)), PgParam::text(e.text(5)),
                     PgParam::integer(e.int64(6)), PgParam::integer(e.int64(7)), PgParam::integer(e.int64(8))});
        tx.commit();
    }
    if (hasCursors) {
        Statement c(source, "SELECT node, epoch, cursor FROM pull_cursors");
        PgTransaction tx(db);
        while (c.step())
            db.exec("INSERT INTO pull_cursors (node, epoch, cursor) VALUES ($1, $2, $3) ON CONFLICT (node, epoch)"
                    " DO UPDATE SET cursor = GREATEST(pull_cursors.cursor, excluded.cursor)",
                    {PgParam::text(c.text(0)), PgParam::text(c.text(1)), PgParam::integer(c.int64(2))});
        tx.commit();
    }
    // The copied records keep their seq as their store order (they arrive
    // in sequence order); a stream's next order follows the highest.
    db.exec("UPDATE node_epochs SET stored_order = GREATEST(stored_order, COALESCE((SELECT MAX(r.stored_order)"
            " FROM records r WHERE r.node = node_epochs.node AND r.epoch = node_epochs.epoch), 0))");
    copyRegistryTables(source, db);
    result.target = target.counts();
    return result;
}

} // namespace ferry
