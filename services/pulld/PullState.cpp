#include "PullState.h"

#include "ferry/MasterStore.h"

namespace pulld {

using ferry::Statement;

PullState::PullState(ferry::Database& db) : m_db(db)
{
    // The tables belong to MasterSchema.h; this only makes sure the file
    // was brought to that schema, whoever opened it first.
    ferry::MasterStore::migrate(m_db);
}

namespace {
// The cursor shown is that of the node's active epoch (cursors live per
// (node, epoch) in pull_cursors).
constexpr const char* kColumns =
    "SELECT p.node, COALESCE((SELECT c.cursor FROM pull_cursors c JOIN node_epochs e"
    "  ON e.node = c.node AND e.epoch = c.epoch WHERE c.node = p.node AND e.state = 'active'"
    "  ORDER BY e.last_seen DESC LIMIT 1), 0),"
    " p.last_attempt, p.last_success, p.last_result, p.last_records, p.total_records FROM pull_state p";

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
    Statement s(m_db, std::string(kColumns) + " WHERE p.node = ?1");
    s.bind(1, node);
    if (s.step())
        return fromRow(s);
    NodePullState fresh;
    fresh.node = node;
    return fresh;
}

std::vector<NodePullState> PullState::all()
{
    Statement s(m_db, std::string(kColumns) + " ORDER BY p.node");
    std::vector<NodePullState> out;
    while (s.step())
        out.push_back(fromRow(s));
    return out;
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
