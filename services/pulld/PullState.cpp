#include "PullState.h"

namespace pulld {

using ferry::Statement;

PullState::PullState(ferry::Database& db) : m_db(db)
{
    m_db.exec(
        "CREATE TABLE IF NOT EXISTS pull_state ("
        " node TEXT PRIMARY KEY, cursor INTEGER NOT NULL DEFAULT 0,"
        " last_attempt INTEGER NOT NULL DEFAULT 0, last_success INTEGER NOT NULL DEFAULT 0,"
        " last_result TEXT NOT NULL DEFAULT '', last_records INTEGER NOT NULL DEFAULT 0,"
        " total_records INTEGER NOT NULL DEFAULT 0)");
}

namespace {
constexpr const char* kColumns =
    "SELECT node, cursor, last_attempt, last_success, last_result, last_records, total_records FROM pull_state";

NodePullState fromRow(const Statement& s)
{
    return NodePullState{s.text(0),
                         static_cast<std::uint64_t>(s.int64(1)),
                         s.int64(2),
                         s.int64(3),
                         s.text(4),
                         static_cast<std::uint64_t>(s.int64(5)),
                         static_cast<std::uint64_t>(s.int64(6))};
}
} // namespace

NodePullState PullState::get(const std::string& node)
{
    Statement s(m_db, std::string(kColumns) + " WHERE node = ?1");
    s.bind(1, node);
    if (s.step())
        return fromRow(s);
    NodePullState fresh;
    fresh.node = node;
    return fresh;
}

std::vector<NodePullState> PullState::all()
{
    Statement s(m_db, std::string(kColumns) + " ORDER BY node");
    std::vector<NodePullState> out;
    while (s.step())
        out.push_back(fromRow(s));
    return out;
}

void PullState::setCursor(const std::string& node, std::uint64_t cursor)
{
    Statement s(m_db,
                "INSERT INTO pull_state (node, cursor) VALUES (?1, ?2)"
                " ON CONFLICT(node) DO UPDATE SET cursor = excluded.cursor");
    s.bind(1, node).bind(2, static_cast<std::int64_t>(cursor)).run();
}

void PullState::recordAttempt(const std::string& node, std::int64_t whenMs, bool success, const std::string& result,
                              std::uint64_t records)
{
    Statement s(m_db,
                "INSERT INTO pull_state (node, last_attempt, last_success, last_result, last_records, total_records)"
                " VALUES (?1, ?2, ?3, ?4, ?5, ?5)"
                " ON CONFLICT(node) DO UPDATE SET last_attempt = excluded.last_attempt,"
                " last_success = CASE WHEN ?6 THEN excluded.last_attempt ELSE last_success END,"
                " last_result = excluded.last_result, last_records = excluded.last_records,"
                " total_records = total_records + excluded.last_records");
    s.bind(1, node).bind(2, whenMs).bind(3, success ? whenMs : 0).bind(4, result);
    s.bind(5, static_cast<std::int64_t>(records)).bind(6, static_cast<std::int64_t>(success ? 1 : 0)).run();
}

} // namespace pulld
