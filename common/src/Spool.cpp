#include "ferry/Spool.h"

#include <sys/stat.h>

#include <algorithm>
#include <cstdlib>
#include <ctime>
#include <filesystem>
#include <set>

#include <spdlog/spdlog.h>

#include "ferry/Clock.h"
#include "ferry/Crypto.h"
#include "ferry/Error.h"
#include "ferry/FileLock.h"
#include "ferry/Files.h"

namespace ferry {

namespace {

// The file is a SQLite database but not a spool (or a damaged one): it is
// treated like a damaged file and moved aside.
class SpoolSchemaError : public Error {
public:
    using Error::Error;
};

std::set<std::string> columnsOf(Database& db, const std::string& table)
{
    std::set<std::string> out;
    Statement s(db, "PRAGMA table_info(" + table + ")");
    while (s.step())
        out.insert(s.text(1));
    return out;
}

void requireColumns(Database& db, const std::string& table, const std::set<std::string>& wanted)
{
    const auto have = columnsOf(db, table);
    for (const auto& c : wanted)
        if (!have.count(c))
            throw SpoolSchemaError("Spool " + db.path() + " is not a Ferry spool: table '" + table + "' has no column '" +
                                   c + "'");
}

int userVersion(Database& db)
{
    Statement s(db, "PRAGMA user_version");
    return s.step() ? static_cast<int>(s.int64(0)) : 0;
}

constexpr const char* kRecordsTable =
    "CREATE TABLE records ("
    " seq INTEGER PRIMARY KEY, time_ms INTEGER NOT NULL, kind TEXT NOT NULL,"
    " payload BLOB NOT NULL, size INTEGER NOT NULL);"
    "CREATE TABLE meta (key TEXT PRIMARY KEY, value INTEGER NOT NULL);";
// Version 2 adds spool_info (text values: the epoch, when the spool was
// made, why it replaced another) and counters by drop reason.
constexpr const char* kVersion2 =
    "CREATE TABLE spool_info (key TEXT PRIMARY KEY, value TEXT NOT NULL);"
    "INSERT OR IGNORE INTO meta VALUES ('next_seq', 1), ('bytes', 0),"
    " ('dropped_records', 0), ('dropped_bytes', 0), ('dropped_age', 0), ('dropped_size', 0),"
    " ('reset_reported', 1);";
// Version 3: the epoch of each range of sequences (a record's epoch is that
// of the range with the greatest first_seq ≤ its seq). spool_info keeps
// 'epoch' as the current (last) one, and 'binding' (machine and inode).
constexpr const char* kVersion3 = "CREATE TABLE spool_epochs (first_seq INTEGER PRIMARY KEY, epoch TEXT NOT NULL,"
                                  " started_ms INTEGER NOT NULL, reason TEXT NOT NULL);";

void setInfo(Database& db, const char* key, const std::string& value)
{
    Statement(db, "INSERT OR REPLACE INTO spool_info (key, value) VALUES (?1, ?2)").bind(1, key).bind(2, value).run();
}

std::string info(Database& db, const char* key)
{
    Statement s(db, "SELECT value FROM spool_info WHERE key = ?1");
    s.bind(1, key);
    return s.step() ? s.text(0) : std::string();
}

std::int64_t meta(Database& db, const char* key)
{
    Statement s(db, "SELECT value FROM meta WHERE key = ?1");
    s.bind(1, key);
    return s.step() ? s.int64(0) : 0;
}

// Starts epoch at first_seq (an empty last range is given the new epoch
// instead: no record was ever written under the old one).
void startEpochRange(Database& db, std::int64_t firstSeq, const Epoch& epoch, const std::string& reason)
{
    Statement(db, "INSERT OR REPLACE INTO spool_epochs (first_seq, epoch, started_ms, reason) VALUES (?1, ?2, ?3, ?4)")
        .bind(1, firstSeq)
        .bind(2, epoch.hex())
        .bind(3, nowMs())
        .bind(4, reason)
        .run();
    setInfo(db, "epoch", epoch.hex());
}

// Where the spool lives: a digest of the machine id (the id itself is
// meant to stay on the machine) and the file's inode. "machine=-" when the
// machine has no readable id (an unconfigured container image).
struct Binding {
    std::string machine;
    std::string inode;
    std::string text() const { return "machine=" + machine + " inode=" + inode; }
    static Binding parse(const std::string& text)
    {
        Binding b;
        const auto m = text.find("machine=");
        const auto i = text.find(" inode=");
        if (m == 0 && i != std::string::npos) {
            b.machine = text.substr(8, i - 8);
            b.inode = text.substr(i + 7);
        }
        return b;
    }
};

Binding currentBinding(const std::string& dbPath, const std::string& machineIdPath)
{
    Binding b;
    std::string id;
    try {
        id = readFileIfExists(machineIdPath, 4096).value_or("");
    } catch (const std::exception& e) {
        // Unreadable is treated as absent; the binding still has the inode.
        spdlog::debug("Spool binding: cannot read {}: {}", machineIdPath, e.what());
    }
    while (!id.empty() && (id.back() == '\n' || id.back() == ' '))
        id.pop_back();
    b.machine = id.empty() ? "-" : toHex(sha256("ferry spool binding\n" + id)).substr(0, 32);
    struct stat st {};
    if (::stat(dbPath.c_str(), &st) != 0)
        throwErrno("stat the spool " + dbPath);
    b.inode = std::to_string(static_cast<unsigned long long>(st.st_ino));
    return b;
}

Epoch currentEpochOf(Database& db)
{
    Statement e(db, "SELECT epoch FROM spool_epochs ORDER BY first_seq DESC LIMIT 1");
    if (!e.step())
        throw SpoolSchemaError("Spool " + db.path() + " has no epoch");
    try {
        return Epoch::fromHex(e.text(0), "spool " + db.path());
    } catch (const Error& bad) {
        throw SpoolSchemaError(bad.what());
    }
}

// A spool whose binding no longer matches was copied: new records get a
// new epoch from here on. Logged once: the new binding is written in the
// same transaction, so the next open (of any process) matches.
void rebindIfCopied(Database& db, Binding here)
{
    const std::string stored = info(db, "binding");
    const Binding was = Binding::parse(stored);
    // A process that cannot read the machine id proves nothing about it:
    // only two known ids that differ count as another machine.
    if (here.machine == "-" && !was.machine.empty())
        here.machine = was.machine;
    if (stored == here.text())
        return;
    setInfo(db, "binding", here.text());
    const bool otherMachine = was.machine != "-" && here.machine != "-" && was.machine != here.machine;
    const bool otherFile = was.inode != here.inode;
    if (stored.empty() || (!otherMachine && !otherFile))
        return; // first open by a Ferry that binds, or the machine id appeared
    std::string what;
    if (otherMachine)
        what = "it is on another machine (the machine id changed)";
    if (otherFile)
        what += std::string(what.empty() ? "" : " and ") + "it is another file (inode " + was.inode + " became " +
                here.inode + ": copied, or restored from a backup)";
    const Epoch old = currentEpochOf(db);
    const Epoch fresh = Epoch::random();
    const std::int64_t next = meta(db, "next_seq");
    const std::string reason = "spool copied: " + what + "; records from sequence " + std::to_string(next) +
                               " get the new epoch " + fresh.shortHex() + ", those before keep epoch " + old.shortHex();
    startEpochRange(db, next, fresh, reason);
    setInfo(db, "reset_reason", reason);
    setInfo(db, "reset_ms", std::to_string(nowMs()));
    db.exec("UPDATE meta SET value = 0 WHERE key = 'reset_reported'");
    Statement queued(db, "SELECT COUNT(*) FROM records");
    const std::int64_t count = queued.step() ? queued.int64(0) : 0;
    spdlog::warn("Spool {} was copied: {}. New records get the new epoch {} from sequence {}; its {} queued "
                 "record(s) keep epoch {} and are sent first. If the original still runs, the master will flag "
                 "this node as suspect until an operator decides (ferryctl master resolve)",
                 db.path(), what, fresh.shortHex(), next, count, old.shortHex());
}

// Brings the file to kSpoolSchemaVersion and returns its current epoch.
// resetReason is non-empty when this spool replaces one that was moved
// aside.
Epoch prepareSchema(Database& db, const std::string& resetReason, const std::string& machineIdPath)
{
    Transaction tx(db);
    int version = userVersion(db);
    if (version > kSpoolSchemaVersion)
        throw Error("Failed to open spool " + db.path() + ": its schema version " + std::to_string(version) +
                    " is newer than this Ferry knows (" + std::to_string(kSpoolSchemaVersion) +
                    "); refusing to touch it (was ferry-node downgraded?)");
    bool hasTables = false;
    {
        Statement t(db, "SELECT COUNT(*) FROM sqlite_master WHERE type = 'table'");
        hasTables = t.step() && t.int64(0) > 0;
    }
    if (version == 0 && !hasTables) {
        db.exec(kRecordsTable);
        db.exec(kVersion2);
        db.exec(kVersion3);
        startEpochRange(db, 1, Epoch::random(), resetReason.empty() ? "created" : resetReason);
        setInfo(db, "created_ms", std::to_string(nowMs()));
        if (!resetReason.empty()) {
            setInfo(db, "reset_reason", resetReason);
            setInfo(db, "reset_ms", std::to_string(nowMs()));
            db.exec("UPDATE meta SET value = 0 WHERE key = 'reset_reported'");
        }
        db.exec("PRAGMA user_version = 3");
        version = 3;
    } else if (version == 0) {
        // A spool from the release before epochs. Its records may already
        // be stored on a master under (node, seq): the legacy epoch keeps
        // them colliding with themselves there instead of duplicating.
        requireColumns(db, "records", {"seq", "time_ms", "kind", "payload", "size"});
        requireColumns(db, "meta", {"key", "value"});
        db.exec(kVersion2);
        setInfo(db, "epoch", Epoch().hex());
        db.exec("PRAGMA user_version = 2");
        version = 2;
        spdlog::info("Spool {}: migrated to schema version 2 with the legacy epoch (made before epochs existed)",
                     db.path());
    }
    if (version == 2) {
        // One epoch for the whole file becomes the first range.
        requireColumns(db, "spool_info", {"key", "value"});
        Epoch epoch;
        try {
            epoch = Epoch::fromHex(info(db, "epoch"), "spool " + db.path());
        } catch (const Error& bad) {
            throw SpoolSchemaError(bad.what());
        }
        db.exec(kVersion3);
        startEpochRange(db, 1, epoch, "migrated from schema version 2");
        db.exec("PRAGMA user_version = 3");
        version = 3;
    }
    if (version != kSpoolSchemaVersion)
        throw SpoolSchemaError("Spool " + db.path() + " has unknown schema version " + std::to_string(version));
    requireColumns(db, "records", {"seq", "time_ms", "kind", "payload", "size"});
    requireColumns(db, "meta", {"key", "value"});
    requireColumns(db, "spool_info", {"key", "value"});
    requireColumns(db, "spool_epochs", {"first_seq", "epoch", "started_ms", "reason"});
    // The records by time: stats() (before every session's Report) reads
    // the count and the oldest time from it, and the age bound (at every
    // append) finds what it drops through it; both read every record of
    // the table without it (3-6 ms for a week). Not a schema version: a
    // release without it opens and maintains the file as before.
    db.exec("CREATE INDEX IF NOT EXISTS records_time ON records(time_ms)");
    // An in-memory spool (tests, fuzzing) lives nowhere: nothing to bind.
    if (db.path() != ":memory:" && !db.path().empty())
        rebindIfCopied(db, currentBinding(db.path(), machineIdPath));
    const Epoch epoch = currentEpochOf(db);
    tx.commit();
    return epoch;
}

std::unique_ptr<Database> tryOpen(const std::string& path, const std::string& resetReason,
                                  const std::string& machineIdPath, Epoch& epoch, std::string& problem)
{
    try {
        auto db = std::make_unique<Database>(path);
        epoch = prepareSchema(*db, resetReason, machineIdPath);
        return db;
    } catch (const SqliteError& e) {
        if (!e.isDamage())
            throw;
        problem = e.what();
    } catch (const SpoolSchemaError& e) {
        problem = e.what();
    }
    return nullptr;
}

std::string utcStamp()
{
    const std::time_t t = std::time(nullptr);
    std::tm tm{};
    gmtime_r(&t, &tm);
    char buf[32];
    std::strftime(buf, sizeof buf, "%Y%m%dT%H%M%SZ", &tm);
    return buf;
}

std::uint64_t countResets(const std::string& path)
{
    namespace fs = std::filesystem;
    const fs::path p(path);
    const std::string prefix = p.filename().string() + ".corrupt-";
    std::uint64_t n = 0;
    std::error_code ec;
    for (const auto& entry : fs::directory_iterator(p.parent_path().empty() ? "." : p.parent_path(), ec)) {
        const std::string name = entry.path().filename().string();
        if (name.rfind(prefix, 0) == 0 && name.find("-wal") == std::string::npos &&
            name.find("-shm") == std::string::npos)
            ++n;
    }
    return n;
}

std::unique_ptr<Database> openOrReplace(const std::string& path, const std::string& machineIdPath, Epoch& epoch)
{
    std::string problem;
    if (auto db = tryOpen(path, {}, machineIdPath, epoch, problem))
        return db;
    // Held while a damaged spool is replaced, so that two processes that find
    // it damaged at once do not both move files (the second would move the new
    // spool the first just made).
    FileLock lock(path + ".lock");
    // Another process may have replaced the file while we looked at it.
    if (auto db = tryOpen(path, {}, machineIdPath, epoch, problem))
        return db;
    std::string aside = path + ".corrupt-" + utcStamp();
    for (int i = 1; std::filesystem::exists(aside); ++i)
        aside = path + ".corrupt-" + utcStamp() + "-" + std::to_string(i);
    // The -wal and -shm files belong to the damaged file: a new spool.db
    // must not start with them.
    for (const char* suffix : {"", "-wal", "-shm"}) {
        std::error_code ec;
        std::filesystem::rename(path + suffix, aside + suffix, ec);
        if (ec && ec != std::errc::no_such_file_or_directory)
            throw Error("Failed to move the unusable spool " + path + suffix + " aside to " + aside + suffix + ": " +
                        ec.message() + " (it failed with: " + problem + ")");
    }
    const std::string reason = "spool moved aside to " + aside + ": " + problem;
    std::string again;
    auto db = tryOpen(path, reason, machineIdPath, epoch, again);
    if (!db)
        throw Error("Failed to create a new spool " + path + " after moving the unusable one aside: " + again);
    spdlog::error("Spool {} could not be used ({}); moved it aside to {} and started a new spool with epoch {}; "
                  "its records that no master acknowledged are in that file",
                  path, problem, aside, epoch.shortHex());
    return db;
}

} // namespace

std::string machineIdFile()
{
    const char* env = std::getenv("FERRY_MACHINE_ID_FILE");
    return env != nullptr && *env != '\0' ? env : "/etc/machine-id";
}

Spool::Spool(const std::string& path, SpoolLimits limits, const std::string& machineIdPath) : m_limits(limits)
{
    m_db = openOrReplace(path, machineIdPath, m_epoch);
}

std::vector<SpoolEpochRange> Spool::epochRanges()
{
    std::vector<SpoolEpochRange> out;
    const auto lastSeq = static_cast<std::uint64_t>(meta(*m_db, "next_seq") - 1);
    Statement s(*m_db, "SELECT first_seq, epoch FROM spool_epochs ORDER BY first_seq");
    while (s.step()) {
        SpoolEpochRange r;
        r.firstSeq = static_cast<std::uint64_t>(s.int64(0));
        r.epoch = Epoch::fromHex(s.text(1), "spool " + m_db->path());
        if (!out.empty()) {
            out.back().lastSeq = r.firstSeq - 1;
            out.back().current = false;
        }
        r.lastSeq = lastSeq;
        out.push_back(r);
    }
    if (out.empty())
        throw Error("Spool " + m_db->path() + " has no epoch");
    return out;
}

SpoolEpochRange Spool::sendingRange()
{
    // One read transaction: ranges, the sequence and the queue agree.
    Transaction tx(*m_db);
    auto ranges = epochRanges();
    // One subquery each: SQLite answers a lone MIN or MAX of the key from
    // the b-tree's edge, but both in one SELECT read every record (5–7 ms
    // for a week's backlog at the start of each session).
    Statement q(*m_db, "SELECT (SELECT MIN(seq) FROM records), (SELECT MAX(seq) FROM records)");
    std::uint64_t oldest = 0;
    std::uint64_t newest = 0;
    if (q.step() && !q.isNull(0)) {
        oldest = static_cast<std::uint64_t>(q.int64(0));
        newest = static_cast<std::uint64_t>(q.int64(1));
    }
    tx.commit();
    for (auto& r : ranges)
        if (oldest >= r.firstSeq && oldest <= r.lastSeq && !r.current) {
            r.laterQueued = newest > r.lastSeq;
            return r;
        }
    return ranges.back();
}

void Spool::addMeta(const char* key, std::int64_t delta)
{
    Statement s(*m_db, "UPDATE meta SET value = value + ?1 WHERE key = ?2");
    s.bind(1, delta).bind(2, key).run();
}

std::uint64_t Spool::append(const std::string& kind, const std::string& payload, std::int64_t timeMs)
{
    return appendAll({Record{0, timeMs, kind, payload}}).front();
}

std::vector<std::uint64_t> Spool::appendAll(const std::vector<Record>& records)
{
    std::vector<std::uint64_t> seqs;
    commitSynced();
    Transaction tx(*m_db);
    auto next = static_cast<std::uint64_t>(meta(*m_db, "next_seq"));
    std::int64_t added = 0;
    Statement ins(*m_db, "INSERT INTO records (seq, time_ms, kind, payload, size) VALUES (?1, ?2, ?3, ?4, ?5)");
    for (const auto& r : records) {
        if (r.kind.empty() || r.kind.size() > kMaxKind)
            throw Error("Failed to spool a record: kind must be 1 to " + std::to_string(kMaxKind) + " bytes");
        if (r.payload.size() > kMaxRecordPayload)
            throw Error("Failed to spool a '" + r.kind + "' record: " + std::to_string(r.payload.size()) +
                        " bytes exceeds the limit of " + std::to_string(kMaxRecordPayload));
        const auto size = static_cast<std::int64_t>(r.kind.size() + r.payload.size());
        ins.reset();
        ins.bind(1, static_cast<std::int64_t>(next)).bind(2, r.timeMs).bind(3, r.kind).bindBlob(4, r.payload).bind(5, size);
        ins.run();
        seqs.push_back(next++);
        added += size;
    }
    Statement(*m_db, "UPDATE meta SET value = ?1 WHERE key = 'next_seq'").bind(1, static_cast<std::int64_t>(next)).run();
    addMeta("bytes", added);
    enforceLimits(nowMs());
    tx.commit();
    return seqs;
}

void Spool::enforceLimits(std::int64_t now)
{
    std::int64_t droppedRecords = 0;
    std::int64_t droppedBytes = 0;
    std::int64_t byAge = 0;
    {
        // Age bound first: everything older than maxAge goes.
        const std::int64_t cutoff = now - static_cast<std::int64_t>(m_limits.maxAge.count()) * 1000;
        Statement sum(*m_db, "SELECT COUNT(*), COALESCE(SUM(size), 0) FROM records WHERE time_ms < ?1");
        sum.bind(1, cutoff);
        if (sum.step() && sum.int64(0) > 0) {
            droppedRecords += sum.int64(0);
            byAge = sum.int64(0);
            droppedBytes += sum.int64(1);
            Statement(*m_db, "DELETE FROM records WHERE time_ms < ?1").bind(1, cutoff).run();
        }
    }
    std::int64_t bytes = meta(*m_db, "bytes") - droppedBytes;
    const auto maxBytes = static_cast<std::int64_t>(m_limits.maxBytes);
    if (bytes > maxBytes) {
        // Size bound: oldest first until under the bound.
        Statement oldest(*m_db, "SELECT seq, size FROM records ORDER BY seq");
        std::int64_t upTo = 0;
        while (bytes > maxBytes && oldest.step()) {
            upTo = oldest.int64(0);
            bytes -= oldest.int64(1);
            droppedBytes += oldest.int64(1);
            ++droppedRecords;
        }
        Statement(*m_db, "DELETE FROM records WHERE seq <= ?1").bind(1, upTo).run();
    }
    if (droppedRecords > 0) {
        addMeta("bytes", -droppedBytes);
        addMeta("dropped_records", droppedRecords);
        addMeta("dropped_bytes", droppedBytes);
        addMeta("dropped_age", byAge);
        addMeta("dropped_size", droppedRecords - byAge);
        spdlog::warn("Spool {} is over its bound ({} bytes, {} s): dropped the {} oldest records ({} bytes)",
                     m_db->path(), m_limits.maxBytes, m_limits.maxAge.count(), droppedRecords, droppedBytes);
    }
}

namespace {

// The rows of a (seq, time_ms, kind, payload) query, up to about maxBytes
// (always the first row).
std::vector<Record> collect(Statement& s, std::size_t maxBytes)
{
    std::vector<Record> out;
    std::size_t bytes = 0;
    while (s.step()) {
        Record r{static_cast<std::uint64_t>(s.int64(0)), s.int64(1), s.text(2), s.text(3)};
        const std::size_t size = r.kind.size() + r.payload.size() + 24;
        if (!out.empty() && bytes + size > maxBytes)
            break;
        bytes += size;
        out.push_back(std::move(r));
    }
    return out;
}

} // namespace

std::vector<Record> Spool::readAfter(std::uint64_t cursor, std::size_t maxRecords, std::size_t maxBytes)
{
    Statement s(*m_db, "SELECT seq, time_ms, kind, payload FROM records WHERE seq > ?1 ORDER BY seq LIMIT ?2");
    s.bind(1, static_cast<std::int64_t>(cursor)).bind(2, static_cast<std::int64_t>(maxRecords));
    return collect(s, maxBytes);
}

std::vector<Record> Spool::readNewest(std::uint64_t upTo, std::size_t maxRecords, std::size_t maxBytes)
{
    Statement s(*m_db, "SELECT seq, time_ms, kind, payload FROM records WHERE seq <= ?1 ORDER BY seq DESC LIMIT ?2");
    s.bind(1, static_cast<std::int64_t>(upTo)).bind(2, static_cast<std::int64_t>(maxRecords));
    auto out = collect(s, maxBytes);
    std::reverse(out.begin(), out.end());
    return out;
}

std::uint64_t Spool::acknowledge(std::uint64_t upTo)
{
    return acknowledgeRange(1, upTo);
}

// An Ack's deletion may be lost to a power cut without harm: the master
// committed those records (synchronous=FULL) before it acknowledged them
// and stores each (node, epoch, seq) once, so they come back, are sent
// again and count as duplicates (docs/durability.md). So the deletion does
// not wait for the disk: an fsync per Ack was most of a push cycle's spool
// cost and a large part of draining a backlog. The next FULL commit (an
// append, on this connection or the sampler's) syncs the WAL, deletions
// included, in order.
//
// The connection switches to NORMAL at the first Ack of a run and stays
// there for the Acks that follow (a session's), and back to FULL before any
// other write: every write but acknowledgeRange starts with commitSynced().
// That is one switch each way per session instead of two PRAGMAs per Ack,
// and no commit but an Ack's ever runs at NORMAL.
void Spool::commitUnsynced()
{
    if (m_unsynced)
        return;
    Statement(*m_db, "PRAGMA synchronous=NORMAL").run();
    m_unsynced = true;
}

void Spool::commitSynced()
{
    if (!m_unsynced)
        return;
    // On failure the write that wanted FULL does not happen (the exception
    // travels up) and the next one tries again.
    Statement(*m_db, "PRAGMA synchronous=FULL").run();
    m_unsynced = false;
}

int Spool::synchronousMode()
{
    Statement s(*m_db, "PRAGMA synchronous");
    return s.step() ? static_cast<int>(s.int64(0)) : -1;
}

std::uint64_t Spool::acknowledgeRange(std::uint64_t first, std::uint64_t last)
{
    return acknowledgeRanges({{first, last}});
}

std::uint64_t Spool::acknowledgeRanges(const std::vector<std::pair<std::uint64_t, std::uint64_t>>& ranges)
{
    if (ranges.empty())
        return 0;
    commitUnsynced();
    Transaction tx(*m_db);
    Statement sum(*m_db, "SELECT COUNT(*), COALESCE(SUM(size), 0) FROM records WHERE seq BETWEEN ?1 AND ?2");
    Statement del(*m_db, "DELETE FROM records WHERE seq BETWEEN ?1 AND ?2");
    std::int64_t count = 0;
    std::int64_t bytes = 0;
    for (const auto& [first, last] : ranges) {
        sum.rewind();
        sum.bind(1, static_cast<std::int64_t>(first)).bind(2, static_cast<std::int64_t>(last));
        if (!sum.step() || sum.int64(0) == 0)
            continue;
        count += sum.int64(0);
        bytes += sum.int64(1);
        del.rewind();
        del.bind(1, static_cast<std::int64_t>(first)).bind(2, static_cast<std::int64_t>(last)).run();
    }
    if (count > 0)
        addMeta("bytes", -bytes);
    tx.commit();
    return static_cast<std::uint64_t>(count);
}

SpoolStats Spool::stats()
{
    SpoolStats st;
    // Apart, so that each is answered from records_time: the count from
    // the index's pages (not the records'), the oldest from its first entry.
    Statement count(*m_db, "SELECT COUNT(*) FROM records");
    if (count.step())
        st.records = static_cast<std::uint64_t>(count.int64(0));
    Statement oldest(*m_db, "SELECT MIN(time_ms) FROM records");
    if (oldest.step() && !oldest.isNull(0))
        st.oldestMs = oldest.int64(0);
    // One pass over meta and spool_info: stats() runs at every session.
    std::int64_t resetReported = 0;
    Statement m(*m_db, "SELECT key, value FROM meta");
    while (m.step()) {
        const std::string key = m.text(0);
        const std::int64_t value = m.int64(1);
        if (key == "bytes")
            st.bytes = static_cast<std::uint64_t>(value);
        else if (key == "next_seq")
            st.lastSeq = static_cast<std::uint64_t>(value - 1);
        else if (key == "dropped_records")
            st.droppedRecords = static_cast<std::uint64_t>(value);
        else if (key == "dropped_bytes")
            st.droppedBytes = static_cast<std::uint64_t>(value);
        else if (key == "dropped_age")
            st.droppedByAge = static_cast<std::uint64_t>(value);
        else if (key == "dropped_size")
            st.droppedBySize = static_cast<std::uint64_t>(value);
        else if (key == "reset_reported")
            resetReported = value;
    }
    const auto ranges = epochRanges();
    st.epoch = ranges.back().epoch;
    if (ranges.size() > 1) {
        Statement older(*m_db, "SELECT COUNT(*) FROM records WHERE seq < ?1");
        older.bind(1, static_cast<std::int64_t>(ranges.back().firstSeq));
        st.olderEpochRecords = older.step() ? static_cast<std::uint64_t>(older.int64(0)) : 0;
        for (std::size_t i = 0; i + 1 < ranges.size(); ++i) {
            Statement any(*m_db, "SELECT 1 FROM records WHERE seq BETWEEN ?1 AND ?2 LIMIT 1");
            any.bind(1, static_cast<std::int64_t>(ranges[i].firstSeq))
                .bind(2, static_cast<std::int64_t>(ranges[i].lastSeq));
            if (any.step())
                ++st.olderEpochs;
        }
    }
    st.resets = countResets(m_db->path());
    std::string resetMs;
    Statement i(*m_db, "SELECT key, value FROM spool_info WHERE key IN ('reset_reason', 'reset_ms')");
    while (i.step())
        (i.text(0) == "reset_reason" ? st.lastReset : resetMs) = i.text(1);
    if (!st.lastReset.empty())
        st.lastResetMs = std::stoll("0" + resetMs);
    st.lastResetReported = resetReported != 0;
    return st;
}

void Spool::markResetReported()
{
    commitSynced();
    Statement(*m_db, "UPDATE meta SET value = 1 WHERE key = 'reset_reported'").run();
}

} // namespace ferry
