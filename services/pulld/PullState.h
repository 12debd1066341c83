#pragma once
// What pulld remembers per node, in the master store's pull_state (master.db
// or the shared PostgreSQL database) so that it lives and dies with the
// records it describes: what the properties report. The cursors themselves
// are kept per (node, epoch) in pull_cursors; `cursor` here is the active
// epoch's.

#include <cstdint>
#include <string>
#include <vector>

#include "ferry/MasterQueries.h"

namespace pulld {

using NodePullState = ferry::PullRecord;

class PullState {
public:
    explicit PullState(ferry::SqlConnection& db) : m_queries(db) {}

    NodePullState get(const std::string& node);
    std::vector<NodePullState> all() { return m_queries.pullRecords(); }
    void recordAttempt(const std::string& node, std::int64_t whenMs, bool success, const std::string& result,
                       std::uint64_t records)
    {
        m_queries.recordPullAttempt(node, whenMs, success, result, records);
    }

private:
    ferry::MasterQueries m_queries;
};

} // namespace pulld
