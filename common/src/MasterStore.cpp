#include "ferry/MasterStore.h"

#include "ferry/Clock.h"
#include "ferry/Error.h"

namespace ferry {

std::string masterStorePath(const std::string& stateDir)
{
    return stateDir + "/master.db";
}

MasterStore::MasterStore(const std::string& path) : m_db(path)
{
    m_db.exec(
        "CREATE TABLE IF NOT EXISTS nodes ("
        " name TEXT PRIMARY KEY, secret TEXT NOT NULL, state TEXT NOT NULL DEFAULT 'accepted',"
        " mode TEXT NOT NULL DEFAULT 'push', public_key TEXT NOT NULL DEFAULT '',"
        " ssh_host TEXT NOT NULL DEFAULT '', ssh_port INTEGER NOT NULL DEFAULT 22,"
        " first_seen INTEGER NOT NULL DEFAULT 0, last_seen INTEGER NOT NULL DEFAULT 0,"
        " last_push INTEGER NOT NULL DEFAULT 0, last_pull INTEGER NOT NULL DEFAULT 0,"
        " records_stored INTEGER NOT NULL DEFAULT 0, reason TEXT NOT NULL DEFAULT '');"
        "CREATE TABLE IF NOT EXISTS records ("
        " node TEXT NOT NULL, seq INTEGER NOT NULL, time_ms INTEGER NOT NULL, kind TEXT NOT NULL,"
        " payload BLOB NOT NULL, received_ms INTEGER NOT NULL, via TEXT NOT NULL,"
        " PRIMARY KEY (node, seq)) WITHOUT ROWID;");
}

void MasterStore::addNode(const std::string& name, const std::string& secret)
{
    Statement s(m_db,
                "INSERT INTO nodes (name, secret, state, first_seen) VALUES (?1, ?2, 'accepted', ?3)"
                " ON CONFLICT(name) DO UPDATE SET secret = excluded.secret, state = 'accepted', reason = ''");
    s.bind(1, name).bind(2, secret).bind(3, nowMs()).run();
}

std::optional<std::string> MasterStore::nodeSecret(const std::string& name)
{
    Statement s(m_db, "SELECT secret FROM nodes WHERE name = ?1 AND state = 'accepted'");
    s.bind(1, name);
    if (!s.step())
        return std::nullopt;
    return s.text(0);
}

namespace {
constexpr const char* kNodeColumns =
    "SELECT n.name, n.state, n.mode, n.public_key, n.ssh_host, n.ssh_port, n.first_seen, n.last_seen,"
    " n.last_push, n.last_pull, n.records_stored, n.reason,"
    " (SELECT COALESCE(MAX(seq), 0) FROM records r WHERE r.node = n.name) FROM nodes n";

NodeInfo rowToNode(const Statement& s)
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
    return n;
}
} // namespace

std::optional<NodeInfo> MasterStore::node(const std::string& name)
{
    Statement s(m_db, std::string(kNodeColumns) + " WHERE n.name = ?1");
    s.bind(1, name);
    if (!s.step())
        return std::nullopt;
    return rowToNode(s);
}

std::vector<NodeInfo> MasterStore::nodes()
{
    Statement s(m_db, std::string(kNodeColumns) + " ORDER BY n.name");
    std::vector<NodeInfo> out;
    while (s.step())
        out.push_back(rowToNode(s));
    return out;
}

AckMessage MasterStore::storeBatch(const std::string& node, const std::vector<Record>& records, const std::string& via)
{
    AckMessage ack;
    const std::int64_t now = nowMs();
    Transaction tx(m_db);
    Statement ins(m_db,
                  "INSERT OR IGNORE INTO records (node, seq, time_ms, kind, payload, received_ms, via)"
                  " VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)");
    for (const auto& r : records) {
        ins.reset();
        ins.bind(1, node).bind(2, static_cast<std::int64_t>(r.seq)).bind(3, r.timeMs).bind(4, r.kind);
        ins.bindBlob(5, r.payload).bind(6, now).bind(7, via);
        ins.run();
        if (m_db.changes() > 0)
            ++ack.newlyStored;
        else
            ++ack.duplicates;
        ack.storedUpTo = std::max(ack.storedUpTo, r.seq);
    }
    const std::string column = via == "pull" ? "last_pull" : "last_push";
    Statement upd(m_db, "UPDATE nodes SET records_stored = records_stored + ?1, last_seen = ?2, " + column +
                            " = ?2 WHERE name = ?3");
    upd.bind(1, static_cast<std::int64_t>(ack.newlyStored)).bind(2, now).bind(3, node).run();
    tx.commit();
    return ack;
}

std::uint64_t MasterStore::countRecords(const std::string& node)
{
    Statement s(m_db, "SELECT COUNT(*) FROM records WHERE node = ?1");
    s.bind(1, node);
    return s.step() ? static_cast<std::uint64_t>(s.int64(0)) : 0;
}

std::vector<Record> MasterStore::records(const std::string& node, std::uint64_t afterSeq, std::size_t limit)
{
    Statement s(m_db, "SELECT seq, time_ms, kind, payload FROM records WHERE node = ?1 AND seq > ?2 ORDER BY seq LIMIT ?3");
    s.bind(1, node).bind(2, static_cast<std::int64_t>(afterSeq)).bind(3, static_cast<std::int64_t>(limit));
    std::vector<Record> out;
    while (s.step())
        out.push_back({static_cast<std::uint64_t>(s.int64(0)), s.int64(1), s.text(2), s.text(3)});
    return out;
}

} // namespace ferry
