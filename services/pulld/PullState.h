#pragma once
// What pulld remembers per node, in its own table of the master store
// (master.db) so that it lives and dies with the records it describes:
// what the properties report. The cursors themselves are kept per (node,
// epoch) by MasterStore (pull_cursors); `cursor` here is the active epoch's.

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "ferry/Sqlite.h"

namespace pulld {

struct NodePullState {
    std::string node;
    std::uint64_t cursor = 0;
    std::int64_t lastAttemptMs = 0;
    std::int64_t lastSuccessMs = 0;
    std::string lastResult;  // "" before the first pull
    std::uint64_t lastRecords = 0;
    std::uint64_t totalRecords = 0;
};

class PullState {
public:
    explicit PullState(ferry::Database& db);

    NodePullState get(const std::string& node);
    std::vector<NodePullState> all();
    void recordAttempt(const std::string& node, std::int64_t whenMs, bool success, const std::string& result,
                       std::uint64_t records);

private:
    ferry::Database& m_db;
};

} // namespace pulld
