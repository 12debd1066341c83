#include "PullState.h"

namespace pulld {

NodePullState PullState::get(const std::string& node)
{
    if (auto row = m_queries.pullRecord(node))
        return *row;
    NodePullState fresh;
    fresh.node = node;
    return fresh;
}

} // namespace pulld
