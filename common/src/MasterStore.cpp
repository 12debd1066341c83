#include "ferry/MasterStore.h"

#include <fcntl.h>
#include <sqlite3.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdlib>
#include <cstring>

#include <spdlog/spdlog.h>

#include "ferry/Clock.h"
#include "ferry/Error.h"
#include "ferry/MasterSchema.h"
#include "ferry/PullProtocol.h"

namespace ferry {

std::string masterStorePath(const std::string& stateDir)
{
    return stateDir + "/master.db";
}

std::string besideStateDirectory(const std::string& masterDbPath, const char* envName, const std::string& dirSuffix,
                                 const std::string& fileName)
{
    const auto slash = masterDbPath.rfind('/');
    const std::string base = slash == std::string::npos ? masterDbPath : masterDbPath.substr(slash + 1);
    const std::string name = base == "master.db" ? fileName : base + "." + fileName;
    if (const char* env = std::getenv(envName); env != nullptr && *env != '\0')
        return std::string(env) + "/" + name;
    std::string dir = slash == std::string::npos ? "." : masterDbPath.substr(0, slash);
    while (dir.size() > 1 && dir.back() == '/')
        dir.pop_back();
    return dir + dirSuffix + "/" + name;
}

std::string nodeKeysPath(const std::string& masterDbPath)
{
    return besideStateDirectory(masterDbPath, "FERRY_KEYS_DIR", "-keys", "node-keys.db");
}

namespace {

int userVersion(Database& db)
{
    Statement s(db, "PRAGMA user_version");
    return s.step() ? static_cast<int>(s.int64(0)) : 0;
}

bool hasTable(Database& db, const char* name)
{
    Statement s(db, "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = ?1");
    s.bind(1, name);
    return s.step();
}

bool hasColumn(Database& db, const std::string& table, const std::string& column)
{
    Statement s(db, "PRAGMA table_info(" + table + ")");
    while (s.step())
        if (s.text(1) == column)
            return true;
    return false;
}

} // namespace

void MasterStore::attachNodeKeys(Database& db)
{
    const std::string path = nodeKeysPath(db.path());
    const std::string dir = path.substr(0, path.rfind('/'));
    if (::mkdir(dir.c_str(), 0700) != 0 && errno != EEXIST)
        throw Error("Failed to create the node keys directory " + dir + ": " + std::strerror(errno));
    // 0600 whatever the caller's umask: SQLite gives -wal and -shm the mode
    // of the file. O_NOFOLLOW: a planted symlink is refused, not followed.
    const int fd = ::open(path.c_str(), O_RDWR | O_CREAT | O_NOFOLLOW | O_CLOEXEC, 0600);
    if (fd < 0)
        throw Error(
            "Failed to open the node keys " + path + ": " + std::strerror(errno) +
            (errno == EACCES ? " (only collectord, registryd, pulld and root's ferryctl may: group ferry-keys)" : ""));
    ::close(fd);
    Statement(db, "ATTACH DATABASE ?1 AS keys").bind(1, path).run();
    db.exec("PRAGMA keys.journal_mode=WAL");
    db.exec("PRAGMA keys.synchronous=FULL");
    // A replaced or deleted key is zeroed on disk, not left in free space.
    db.exec("PRAGMA keys.secure_delete=ON");
    db.exec(schema::kNodeKeysSchema);
}

void MasterStore::migrate(Database& db)
{
    // Cheap check first: every daemon opens the file often, and a read
    // needs no write lock.
    if (userVersion(db) == schema::kMasterSchemaVersion)
        return;
    {
        // Before version 7 the keys are copied to node-keys.db and committed
        // there before master.db loses them (MasterSchema.h, version 7):
        // SQLite commits the main file before an attached one, so a single
        // transaction could blank the column and lose the copy in a crash.
        Transaction copy(db);
        const int v = userVersion(db);
        if (v < 7 && hasTable(db, "nodes")) {
            db.exec(schema::kNodeKeysCopy);
            copy.commit();
        }
    }
    // Freed pages and cells are zeroed while migrating: version 7 drops the
    // old nodes table so that no stale copy of a secret stays in master.db.
    db.exec("PRAGMA main.secure_delete=ON");
    // BEGIN IMMEDIATE: of several daemons upgrading at once, one migrates
    // and the others see the new version when they get the lock.
    Transaction tx(db);
    int version = userVersion(db);
    if (version > schema::kMasterSchemaVersion)
        throw Error("Failed to open " + db.path() + ": its schema version " + std::to_string(version) +
                    " is newer than this Ferry knows (" + std::to_string(schema::kMasterSchemaVersion) +
                    "); refusing to touch it (was ferry-master downgraded?)");
    if (version == 0 && !hasTable(db, "nodes")) {
        db.exec(schema::kSchema);
        db.exec("PRAGMA user_version = " + std::to_string(schema::kMasterSchemaVersion));
        tx.commit();
        db.exec("PRAGMA main.secure_delete=OFF");
        return;
    }
    const int from = version;
    for (const auto& m : schema::kMigrations) {
        if (m.toVersion <= version)
            continue;
        for (int i = 0; i < m.columnCount; ++i) {
            const auto& c = m.columns[i];
            if (!hasColumn(db, c.table, c.column))
                db.exec(std::string("ALTER TABLE ") + c.table + " ADD COLUMN " + c.column + " " + c.declaration);
        }
        db.exec(m.sql);
        version = m.toVersion;
        db.exec("PRAGMA user_version = " + std::to_string(version));
    }
    tx.commit();
    db.exec("PRAGMA main.secure_delete=OFF");
    spdlog::info("Migrated {} from schema version {} to {}", db.path(), from, version);
    if (from < 7) {
        // The old pages (with the keys) are in the file until the zeroed ones
        // are checkpointed over them, and older frames stay in the WAL until
        // it is truncated.
        Statement c(db, "PRAGMA main.wal_checkpoint(TRUNCATE)");
        if (!c.step() || c.int64(0) != 0)
            spdlog::warn("Failed to checkpoint {} after moving the node keys out (a reader held it); the next "
                         "checkpoint overwrites what is left",
                         db.path());
    }
}

MasterStore::MasterStore(const std::string& path) : m_db(path)
{
    attachNodeKeys(m_db);
    // A group of batches (storeBatches) is up to a window of 1 MiB frames:
    // with SQLite's default 2 MB cache its pages spilled to the WAL before
    // the commit and the index pages were read back for every batch. The
    // cache grows only as far as a session's writes reach.
    m_db.exec("PRAGMA cache_size=-16384");
    // SQLite checkpoints the WAL inside the commit that takes it past 1000
    // pages (4 MB): a week's backlog paid two or three checkpoints (a copy
    // into the file and an fsync) while the node waited for its Acks. A
    // session's store (collectord and pulld open one per session) leaves
    // that to its close, after the last Ack; within a session only a WAL
    // past 64 MB is checkpointed at the commit, so that a store kept open
    // for long still bounds it. (This hook replaces SQLite's own.)
    sqlite3_wal_hook(m_db.handle(), &MasterStore::afterWalCommit, this);
    migrate(m_db);
}

int MasterStore::afterWalCommit(void* self, sqlite3* db, const char* name, int pages)
{
    static_cast<MasterStore*>(self)->m_walPages = pages;
    if (pages >= kCheckpointAtCommitPages)
        sqlite3_wal_checkpoint_v2(db, name, SQLITE_CHECKPOINT_PASSIVE, nullptr, nullptr);
    return SQLITE_OK;
}

MasterStore::~MasterStore()
{
    try {
        flushPending();
    } catch (const std::exception& e) {
        spdlog::warn("Failed to write the counters and session notes kept for {} at its close: {}", m_db.path(),
                     e.what());
    }
    if (m_checkpointAtClose)
        checkpointIfDue();
}

void MasterStore::checkpointIfDue()
{
    if (m_walPages < kCheckpointAtClosePages)
        return;
    // PASSIVE: waits for no reader or writer. Whatever it cannot copy now
    // the next checkpoint does; nothing depends on it but the WAL's size.
    const int rc = sqlite3_wal_checkpoint_v2(m_db.handle(), nullptr, SQLITE_CHECKPOINT_PASSIVE, nullptr, nullptr);
    if (rc != SQLITE_OK)
        spdlog::debug("Left the checkpoint of {} to the next writer: {}", m_db.path(), sqlite3_errstr(rc));
    else
        m_walPages = 0;
}

void MasterStore::addNode(const std::string& name, const std::string& secret)
{
    Transaction tx(m_db);
    std::optional<std::string> before;
    {
        Statement q(m_db, "SELECT secret FROM node_keys WHERE node = ?1");
        q.bind(1, name);
        if (q.step())
            before = q.text(0);
    }
    // A key proven with another secret belongs to another install. master.db
    // commits first: a crash in between leaves the old key cleared, never
    // the new secret with the old key.
    Statement s(m_db, "INSERT INTO nodes (name, secret, state, first_seen) VALUES (?1, '', 'accepted', ?2)"
                      " ON CONFLICT(name) DO UPDATE SET state = 'accepted', reason = '',"
                      " public_key = CASE WHEN ?3 = 1 THEN public_key ELSE '' END");
    s.bind(1, name).bind(2, nowMs()).bind(3, static_cast<std::int64_t>(before == secret ? 1 : 0)).run();
    Statement(m_db, "INSERT INTO node_keys (node, secret) VALUES (?1, ?2)"
                    " ON CONFLICT(node) DO UPDATE SET secret = excluded.secret")
        .bind(1, name)
        .bind(2, secret)
        .run();
    tx.commit();
}

std::optional<std::string> MasterStore::nodeSecret(const std::string& name)
{
    Statement s(m_db, "SELECT k.secret FROM nodes n JOIN node_keys k ON k.node = n.name"
                      " WHERE n.name = ?1 AND n.state = 'accepted'");
    s.bind(1, name);
    if (!s.step())
        return std::nullopt;
    return s.text(0);
}

std::optional<NodeInfo> MasterStore::node(const std::string& name)
{
    return MasterQueries(m_sql).node(name);
}

std::vector<NodeInfo> MasterStore::nodes()
{
    return MasterQueries(m_sql).nodes();
}

std::vector<EpochInfo> MasterStore::epochs(const std::string& node)
{
    return MasterQueries(m_sql).epochs(node);
}

std::optional<SessionAdmission> MasterStore::admitWithoutWriting(const SessionStart& start)
{
    // A read transaction (deferred: no write lock, nothing of node-keys.db):
    // the epochs and the floor read together.
    Statement(m_db, "BEGIN").run();
    std::optional<SessionAdmission> out;
    std::optional<std::int64_t> paced;
    try {
        const EpochDecision d = decideEpoch(start.node, start.epoch, start.address, epochs(start.node));
        if (!d.insertState && d.setStates.empty() && d.counters.empty())
            out = completeAdmission(start, d.admission, [&] { paced = start.nowMs; });
        Statement(m_db, "COMMIT").run();
    } catch (...) {
        try {
            Statement(m_db, "ROLLBACK").run();
        } catch (const std::exception& e) {
            spdlog::warn("Ignoring failed rollback on {}: {}", m_db.path(), e.what());
        }
        throw;
    }
    if (out) {
        m_pending.seen[{start.node, start.epoch.hex()}] = {nowMs(), start.address};
        if (paced)
            m_pending.paced[start.node] = *paced;
    }
    return out;
}

SessionAdmission MasterStore::admitSession(const SessionStart& start)
{
    // Nothing but the session's notes to write: kept for its batch.
    if (m_keepSessionNotes && start.report == nullptr)
        if (auto out = admitWithoutWriting(start))
            return *out;
    const std::string& node = start.node;
    const Epoch& epoch = start.epoch;
    const std::string& address = start.address;
    const std::string hex = epoch.hex();
    const std::int64_t now = nowMs();
    // Not synced (SessionStore::admitEpoch): the first batch's FULL commit
    // syncs the WAL, this transaction included, before anything is acked.
    const UnsyncedCommits unsynced(m_db);
    Transaction tx(m_db);
    const EpochDecision d = decideEpoch(node, epoch, address, epochs(node));
    if (d.insertState) {
        Statement(m_db,
                  "INSERT INTO node_epochs (node, epoch, first_seen, last_seen, from_address, state)"
                  " VALUES (?1, ?2, ?3, ?3, ?4, ?5)")
            .bind(1, node)
            .bind(2, hex)
            .bind(3, now)
            .bind(4, address)
            .bind(5, *d.insertState)
            .run();
    }
    for (const auto& [which, state] : d.setStates)
        Statement(m_db, "UPDATE node_epochs SET state = ?3 WHERE node = ?1 AND epoch = ?2")
            .bind(1, node)
            .bind(2, which)
            .bind(3, state)
            .run();
    Statement(m_db, "UPDATE node_epochs SET last_seen = ?3, from_address = ?4 WHERE node = ?1 AND epoch = ?2")
        .bind(1, node)
        .bind(2, hex)
        .bind(3, now)
        .bind(4, address)
        .run();
    if (start.report != nullptr)
        storeReport(node, epoch, start.via, address, *start.report);
    addCounters(d.counters);
    const SessionAdmission out = completeAdmission(start, d.admission, [&] { writePacedPush(node, start.nowMs); });
    writePending();
    tx.commit();
    m_pending = {};
    return out;
}

void MasterStore::resolveEpochs(const std::string& node, const std::string& keepEpochHex)
{
    MasterQueries(m_sql).resolveEpochs(node, keepEpochHex);
}

AckMessage MasterStore::storeBatch(const std::string& node, const Epoch& epoch, const std::vector<Record>& records,
                                   const std::string& via, BatchLane lane)
{
    return storeBatches(node, epoch, {{&records, lane}}, via).front();
}

std::vector<AckMessage> MasterStore::storeBatches(const std::string& node, const Epoch& epoch,
                                                  const std::vector<BatchToStore>& batches, const std::string& via,
                                                  const WithBatches& with)
{
    std::vector<AckMessage> acks;
    acks.reserve(batches.size());
    const std::int64_t now = nowMs();
    const std::string hex = epoch.hex();
    Transaction tx(m_db);
    // The writer lock is held from here to the commit, so store orders are
    // given in the order the batches commit.
    std::int64_t order = 0;
    {
        Statement o(m_db, "SELECT stored_order FROM node_epochs WHERE node = ?1 AND epoch = ?2");
        o.bind(1, node).bind(2, hex);
        if (o.step())
            order = o.int64(0);
    }
    AckMessage total;
    {
        // A multi-row INSERT of up to m_rowsPerInsert records (the rest of a
        // batch one by one): SQLite parses and runs one statement per chunk,
        // not per record. The values equal on every row (?1–?4) are bound
        // once and kept across rewind(). A chunk's duplicates are the rows it
        // did not add; like PostgreSQL's store, a duplicate in a chunk leaves
        // its store order unused (orders only need to grow).
        auto insertOf = [&](std::size_t rows) {
            std::string sql = "INSERT OR IGNORE INTO records (node, epoch, seq, time_ms, kind, payload, received_ms,"
                              " via, stored_order) VALUES ";
            for (std::size_t i = 0; i < rows; ++i) {
                sql += (i ? "," : "") + std::string("(?1, ?2, ?") + std::to_string(5 + 5 * i) + ", ?" +
                       std::to_string(6 + 5 * i) + ", ?" + std::to_string(7 + 5 * i) + ", ?" +
                       std::to_string(8 + 5 * i) + ", ?3, ?4, ?" + std::to_string(9 + 5 * i) + ")";
            }
            auto st = std::make_unique<Statement>(m_db, sql);
            st->bind(1, node).bind(2, hex).bind(3, now).bind(4, via);
            return st;
        };
        std::unique_ptr<Statement> many;
        const std::unique_ptr<Statement> one = insertOf(1);
        for (const auto& batch : batches) {
            const auto& records = *batch.records;
            AckMessage ack;
            std::size_t i = 0;
            while (i < records.size()) {
                const bool chunk = m_rowsPerInsert > 1 && records.size() - i >= m_rowsPerInsert;
                if (chunk && !many)
                    many = insertOf(m_rowsPerInsert);
                Statement& ins = chunk ? *many : *one;
                const std::size_t rows = chunk ? m_rowsPerInsert : 1;
                ins.rewind();
                for (std::size_t k = 0; k < rows; ++k) {
                    const auto& r = records[i + k];
                    const int at = static_cast<int>(5 + 5 * k);
                    ins.bind(at, static_cast<std::int64_t>(r.seq)).bind(at + 1, r.timeMs).bind(at + 2, r.kind);
                    ins.bindBlob(at + 3, r.payload).bind(at + 4, order + static_cast<std::int64_t>(k) + 1);
                    ack.storedUpTo = std::max(ack.storedUpTo, r.seq);
                }
                ins.run();
                const auto added = static_cast<std::uint32_t>(m_db.changes());
                ack.newlyStored += added;
                ack.duplicates += static_cast<std::uint32_t>(rows) - added;
                // One record alone takes the next order only when stored, so
                // orders stay dense where no chunk ran.
                order += static_cast<std::int64_t>(chunk ? rows : added);
                i += rows;
            }
            // A pull's backlog batch follows the cursor: everything up to its
            // last record is stored (or was dropped by the node's bounds).
            if (via == "pull" && batch.lane == BatchLane::Backlog && !records.empty())
                setPullCursor(node, epoch, std::max(records.back().seq, batch.cursorAfter));
            total.newlyStored += ack.newlyStored;
            total.duplicates += ack.duplicates;
            total.storedUpTo = std::max(total.storedUpTo, ack.storedUpTo);
            acks.push_back(ack);
        }
    }
    const std::string column = via == "pull" ? "last_pull" : "last_push";
    Statement upd(m_db, "UPDATE nodes SET records_stored = records_stored + ?1, last_seen = ?2, " + column +
                            " = ?2 WHERE name = ?3");
    upd.bind(1, static_cast<std::int64_t>(total.newlyStored)).bind(2, now).bind(3, node).run();
    Statement ep(m_db,
                 "INSERT INTO node_epochs (node, epoch, first_seen, last_seen, records_stored, last_seq, stored_order)"
                 " VALUES (?1, ?2, ?3, ?3, ?4, ?5, ?6) ON CONFLICT(node, epoch) DO UPDATE SET"
                 " last_seen = excluded.last_seen, records_stored = records_stored + excluded.records_stored,"
                 " last_seq = MAX(last_seq, excluded.last_seq), stored_order = excluded.stored_order");
    ep.bind(1, node).bind(2, hex).bind(3, now).bind(4, static_cast<std::int64_t>(total.newlyStored));
    ep.bind(5, static_cast<std::int64_t>(total.storedUpTo)).bind(6, order).run();
    addCounters(batchCounters(total, via));
    if (with.report != nullptr)
        storeReport(node, epoch, via, with.address, *with.report);
    writePending();
    // With synchronous=FULL the commit is on disk when it returns (the WAL
    // synced once for the whole group): only then may the caller send the
    // Acks that let the node delete its copies.
    tx.commit();
    m_pending = {};
    return acks;
}

void MasterStore::addCounters(const std::vector<CounterDelta>& deltas)
{
    if (deltas.empty())
        return;
    // Inside the caller's transaction when there is one (storeBatch,
    // admitEpoch), else in one of its own, committed without a sync: a
    // counter is a metric, no Ack waits for it, and the next synced commit
    // (the next batch) makes it durable. A power cut may lose the last
    // increments, never a record. (collectord's sessions counter took a
    // second fsync per push before.)
    std::optional<UnsyncedCommits> unsynced;
    std::optional<Transaction> own;
    if (sqlite3_get_autocommit(m_db.handle()) != 0) {
        unsynced.emplace(m_db);
        own.emplace(m_db);
    }
    MasterQueries(m_sql).addCounters(deltas);
    if (own)
        own->commit();
}

void MasterStore::addCountersLater(const std::vector<CounterDelta>& deltas)
{
    auto& kept = m_pending.counters;
    for (const auto& d : deltas) {
        const auto same = std::find_if(kept.begin(), kept.end(),
                                       [&](const CounterDelta& k) { return k.name == d.name && k.labels == d.labels; });
        if (same != kept.end())
            same->delta += d.delta;
        else
            kept.push_back(d);
    }
}

void MasterStore::writePending()
{
    if (!m_pending.counters.empty())
        MasterQueries(m_sql).addCounters(m_pending.counters);
    for (const auto& [key, note] : m_pending.seen)
        Statement(m_db, "UPDATE node_epochs SET last_seen = MAX(last_seen, ?3), from_address = ?4"
                        " WHERE node = ?1 AND epoch = ?2")
            .bind(1, key.first)
            .bind(2, key.second)
            .bind(3, note.first)
            .bind(4, note.second)
            .run();
    for (const auto& [node, startMs] : m_pending.paced)
        writePacedPush(node, startMs);
}

void MasterStore::flushPending()
{
    if (m_pending.empty())
        return;
    // Not synced, like addCounters outside a transaction and the admission
    // the notes come from.
    const UnsyncedCommits unsynced(m_db);
    Transaction tx(m_db);
    writePending();
    tx.commit();
    m_pending = {};
}

std::vector<CounterValue> MasterStore::counters()
{
    return MasterQueries(m_sql).counters();
}

void MasterStore::storeReport(const std::string& node, const Epoch& epoch, const std::string& via,
                              const std::string& address, const HealthReport& r)
{
    // Inside admitEpoch's or storeBatches' transaction, or in one of its own
    // committed without a sync (SessionStore::storeReport).
    std::optional<UnsyncedCommits> unsynced;
    std::optional<Transaction> own;
    if (sqlite3_get_autocommit(m_db.handle()) != 0) {
        unsynced.emplace(m_db);
        own.emplace(m_db);
    }
    // Updated in place (one page), not replaced: REPLACE deleted the row and
    // inserted it at the end of the table, writing two leaves and the
    // index's, three WAL frames a push instead of one.
    const std::int64_t now = nowMs();
    const std::string hex = epoch.hex();
    auto bindAll = [&](Statement& st) {
        st.bind(1, node).bind(2, hex).bind(3, now).bind(4, via).bind(5, address);
        st.bind(6, static_cast<std::int64_t>(r.spoolRecords)).bind(7, static_cast<std::int64_t>(r.spoolBytes));
        st.bind(8, r.oldestUnsentMs).bind(9, static_cast<std::int64_t>(r.lastSeq));
        st.bind(10, static_cast<std::int64_t>(r.droppedByAge)).bind(11, static_cast<std::int64_t>(r.droppedBySize));
        st.bind(12, static_cast<std::int64_t>(r.droppedBytes)).bind(13, r.transportMode).bind(14, r.transportReason);
        st.bind(15, static_cast<std::int64_t>(r.spoolResets)).bind(16, r.lastReset).bind(17, r.lastResetMs);
        st.bind(18, r.fwcheckVerdict).run();
    };
    Statement update(m_db, "UPDATE node_reports SET epoch = ?2, received_ms = ?3, via = ?4, from_address = ?5,"
                           " spool_records = ?6, spool_bytes = ?7, oldest_unsent_ms = ?8, last_seq = ?9,"
                           " dropped_age = ?10, dropped_size = ?11, dropped_bytes = ?12, transport_mode = ?13,"
                           " transport_reason = ?14, spool_resets = ?15, last_reset = ?16, last_reset_ms = ?17,"
                           " fwcheck_verdict = ?18 WHERE node = ?1");
    bindAll(update);
    if (m_db.changes() == 0) {
        Statement insert(m_db,
                         "INSERT INTO node_reports (node, epoch, received_ms, via, from_address, spool_records,"
                         " spool_bytes, oldest_unsent_ms, last_seq, dropped_age, dropped_size, dropped_bytes,"
                         " transport_mode, transport_reason, spool_resets, last_reset, last_reset_ms, fwcheck_verdict)"
                         " VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16, ?17, ?18)");
        bindAll(insert);
    }
    if (own) {
        writePending();
        own->commit();
        m_pending = {};
    }
}

std::optional<HealthReport> MasterStore::report(const std::string& node)
{
    return MasterQueries(m_sql).report(node);
}

PushPacing MasterStore::pushPacing(const std::string& node)
{
    PushPacing p;
    Statement policy(m_db, "SELECT min_push_period_s, min_pull_interval_s FROM node_policy WHERE node = ?1");
    policy.bind(1, node);
    if (policy.step()) {
        if (!policy.isNull(0))
            p.minPushPeriodS = static_cast<std::uint32_t>(policy.int64(0));
        if (!policy.isNull(1))
            p.minPullIntervalS = static_cast<std::uint32_t>(policy.int64(1));
    }
    Statement pacing(m_db, "SELECT last_paced_push_ms FROM node_pacing WHERE node = ?1");
    pacing.bind(1, node);
    if (pacing.step())
        p.lastPacedPushMs = pacing.int64(0);
    // An on-time push noted by an admission and not yet written.
    if (const auto kept = m_pending.paced.find(node); kept != m_pending.paced.end())
        p.lastPacedPushMs = std::max(p.lastPacedPushMs, kept->second);
    return p;
}

void MasterStore::notePacedPush(const std::string& node, std::int64_t startMs)
{
    // Not synced, like the admission it follows (SessionStore.h).
    const UnsyncedCommits unsynced(m_db);
    writePacedPush(node, startMs);
}

void MasterStore::writePacedPush(const std::string& node, std::int64_t startMs)
{
    Statement(m_db, "INSERT OR REPLACE INTO node_pacing (node, last_paced_push_ms) VALUES (?1, ?2)")
        .bind(1, node)
        .bind(2, startMs)
        .run();
}

std::uint64_t MasterStore::countRecords(const std::string& node)
{
    return MasterQueries(m_sql).countRecords(node);
}

std::uint64_t MasterStore::countRecords(const std::string& node, const Epoch& epoch)
{
    Statement s(m_db, "SELECT COUNT(*) FROM records WHERE node = ?1 AND epoch = ?2");
    s.bind(1, node).bind(2, epoch.hex());
    return s.step() ? static_cast<std::uint64_t>(s.int64(0)) : 0;
}

std::vector<Record> MasterStore::records(const std::string& node, const Epoch& epoch, std::uint64_t afterSeq,
                                         std::size_t limit)
{
    Statement s(m_db,
                "SELECT seq, time_ms, kind, payload FROM records WHERE node = ?1 AND epoch = ?2 AND seq > ?3"
                " ORDER BY seq LIMIT ?4");
    s.bind(1, node).bind(2, epoch.hex()).bind(3, static_cast<std::int64_t>(afterSeq));
    s.bind(4, static_cast<std::int64_t>(limit));
    std::vector<Record> out;
    while (s.step())
        out.push_back({static_cast<std::uint64_t>(s.int64(0)), s.int64(1), s.text(2), s.text(3)});
    return out;
}

std::uint64_t MasterStore::pullCursor(const std::string& node, const Epoch& epoch)
{
    Statement s(m_db, "SELECT cursor FROM pull_cursors WHERE node = ?1 AND epoch = ?2");
    s.bind(1, node).bind(2, epoch.hex());
    return s.step() ? static_cast<std::uint64_t>(s.int64(0)) : 0;
}

void MasterStore::setPullCursor(const std::string& node, const Epoch& epoch, std::uint64_t cursor)
{
    Statement s(m_db,
                "INSERT INTO pull_cursors (node, epoch, cursor) VALUES (?1, ?2, ?3)"
                " ON CONFLICT(node, epoch) DO UPDATE SET cursor = excluded.cursor");
    s.bind(1, node).bind(2, epoch.hex()).bind(3, static_cast<std::int64_t>(cursor)).run();
}

} // namespace ferry
