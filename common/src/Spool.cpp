#include "ferry/Spool.h"

#include <spdlog/spdlog.h>

#include "ferry/Clock.h"
#include "ferry/Error.h"

namespace ferry {

Spool::Spool(const std::string& path, SpoolLimits limits) : m_db(path), m_limits(limits)
{
    m_db.exec(
        "CREATE TABLE IF NOT EXISTS records ("
        " seq INTEGER PRIMARY KEY, time_ms INTEGER NOT NULL, kind TEXT NOT NULL,"
        " payload BLOB NOT NULL, size INTEGER NOT NULL);"
        "CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value INTEGER NOT NULL);"
        "INSERT OR IGNORE INTO meta VALUES ('next_seq', 1), ('bytes', 0),"
        " ('dropped_records', 0), ('dropped_bytes', 0);");
}

void Spool::addMeta(const char* key, std::int64_t delta)
{
    Statement s(m_db, "UPDATE meta SET value = value + ?1 WHERE key = ?2");
    s.bind(1, delta).bind(2, key).run();
}

namespace {
std::int64_t meta(Database& db, const char* key)
{
    Statement s(db, "SELECT value FROM meta WHERE key = ?1");
    s.bind(1, key);
    return s.step() ? s.int64(0) : 0;
}
} // namespace

std::uint64_t Spool::append(const std::string& kind, const std::string& payload, std::int64_t timeMs)
{
    return appendAll({Record{0, timeMs, kind, payload}}).front();
}

std::vector<std::uint64_t> Spool::appendAll(const std::vector<Record>& records)
{
    std::vector<std::uint64_t> seqs;
    Transaction tx(m_db);
    auto next = static_cast<std::uint64_t>(meta(m_db, "next_seq"));
    std::int64_t added = 0;
    Statement ins(m_db, "INSERT INTO records (seq, time_ms, kind, payload, size) VALUES (?1, ?2, ?3, ?4, ?5)");
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
    Statement(m_db, "UPDATE meta SET value = ?1 WHERE key = 'next_seq'").bind(1, static_cast<std::int64_t>(next)).run();
    addMeta("bytes", added);
    enforceLimits(nowMs());
    tx.commit();
    return seqs;
}

void Spool::enforceLimits(std::int64_t now)
{
    std::int64_t droppedRecords = 0;
    std::int64_t droppedBytes = 0;
    {
        // Age bound first: everything older than maxAge goes.
        const std::int64_t cutoff = now - static_cast<std::int64_t>(m_limits.maxAge.count()) * 1000;
        Statement sum(m_db, "SELECT COUNT(*), COALESCE(SUM(size), 0) FROM records WHERE time_ms < ?1");
        sum.bind(1, cutoff);
        if (sum.step() && sum.int64(0) > 0) {
            droppedRecords += sum.int64(0);
            droppedBytes += sum.int64(1);
            Statement(m_db, "DELETE FROM records WHERE time_ms < ?1").bind(1, cutoff).run();
        }
    }
    std::int64_t bytes = meta(m_db, "bytes") - droppedBytes;
    const auto maxBytes = static_cast<std::int64_t>(m_limits.maxBytes);
    if (bytes > maxBytes) {
        // Size bound: oldest first until under the bound.
        Statement oldest(m_db, "SELECT seq, size FROM records ORDER BY seq");
        std::int64_t upTo = 0;
        while (bytes > maxBytes && oldest.step()) {
            upTo = oldest.int64(0);
            bytes -= oldest.int64(1);
            droppedBytes += oldest.int64(1);
            ++droppedRecords;
        }
        Statement(m_db, "DELETE FROM records WHERE seq <= ?1").bind(1, upTo).run();
    }
    if (droppedRecords > 0) {
        addMeta("bytes", -droppedBytes);
        addMeta("dropped_records", droppedRecords);
        addMeta("dropped_bytes", droppedBytes);
        spdlog::warn("Spool {} is over its bound ({} bytes, {} s): dropped the {} oldest records ({} bytes)",
                     m_db.path(), m_limits.maxBytes, m_limits.maxAge.count(), droppedRecords, droppedBytes);
    }
}

std::vector<Record> Spool::readAfter(std::uint64_t cursor, std::size_t maxRecords, std::size_t maxBytes)
{
    std::vector<Record> out;
    Statement s(m_db, "SELECT seq, time_ms, kind, payload FROM records WHERE seq > ?1 ORDER BY seq LIMIT ?2");
    s.bind(1, static_cast<std::int64_t>(cursor)).bind(2, static_cast<std::int64_t>(maxRecords));
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

std::uint64_t Spool::acknowledge(std::uint64_t upTo)
{
    Transaction tx(m_db);
    Statement sum(m_db, "SELECT COUNT(*), COALESCE(SUM(size), 0) FROM records WHERE seq <= ?1");
    sum.bind(1, static_cast<std::int64_t>(upTo));
    std::int64_t count = 0;
    if (sum.step() && sum.int64(0) > 0) {
        count = sum.int64(0);
        Statement(m_db, "DELETE FROM records WHERE seq <= ?1").bind(1, static_cast<std::int64_t>(upTo)).run();
        addMeta("bytes", -sum.int64(1));
    }
    tx.commit();
    return static_cast<std::uint64_t>(count);
}

SpoolStats Spool::stats()
{
    SpoolStats st;
    Statement s(m_db, "SELECT COUNT(*), COALESCE(MIN(time_ms), 0) FROM records");
    if (s.step()) {
        st.records = static_cast<std::uint64_t>(s.int64(0));
        st.oldestMs = s.int64(1);
    }
    st.bytes = static_cast<std::uint64_t>(meta(m_db, "bytes"));
    st.lastSeq = static_cast<std::uint64_t>(meta(m_db, "next_seq") - 1);
    st.droppedRecords = static_cast<std::uint64_t>(meta(m_db, "dropped_records"));
    st.droppedBytes = static_cast<std::uint64_t>(meta(m_db, "dropped_bytes"));
    return st;
}

} // namespace ferry
