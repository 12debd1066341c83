#include "CollectorAdaptor.h"

#include "ferry/MasterQueries.h"

namespace collectord {

namespace {
std::uint64_t usec(std::int64_t ms)
{
    return ms > 0 ? static_cast<std::uint64_t>(ms) * 1000 : 0;
}
} // namespace

CollectorAdaptor::CollectorAdaptor(sdbus::IConnection& bus, ferry::EventLoop& loop, Collector& collector)
    : AdaptorInterfaces(bus, "/org/ferry/Collector1"), m_loop(loop), m_collector(collector)
{
    registerAdaptor();
}

CollectorAdaptor::~CollectorAdaptor()
{
    unregisterAdaptor();
}

std::vector<sdbus::Struct<std::string, std::string, uint64_t, uint64_t, uint64_t, uint64_t>> CollectorAdaptor::ListNodes()
{
    return ferry::busCall(m_loop, INTERFACE_NAME, "ListNodes", [&] {
        const auto tables = m_collector.tables();
        ferry::MasterQueries store(*tables);
        std::vector<sdbus::Struct<std::string, std::string, uint64_t, uint64_t, uint64_t, uint64_t>> out;
        for (const auto& n : store.nodes())
            out.emplace_back(n.name, n.state, usec(n.lastPushMs), usec(n.lastPullMs), n.recordsStored, n.lastSeq);
        return out;
    });
}

std::tuple<std::string, uint64_t, uint64_t, uint64_t, uint64_t> CollectorAdaptor::GetNode(const std::string& name)
{
    return ferry::busCall(m_loop, INTERFACE_NAME, "GetNode", [&] {
        const auto tables = m_collector.tables();
        ferry::MasterQueries store(*tables);
        const auto n = store.node(name);
        if (!n)
            throw ferry::BusError(std::string(INTERFACE_NAME) + ".Error.UnknownNode", "No node named '" + name + "'");
        return std::make_tuple(n->state, usec(n->lastPushMs), usec(n->lastPullMs), n->recordsStored, n->lastSeq);
    });
}

uint64_t CollectorAdaptor::Sessions()
{
    return ferry::busCall(m_loop, INTERFACE_NAME, "Sessions", [&] { return m_collector.sessions(); });
}

uint64_t CollectorAdaptor::RecordsStored()
{
    return ferry::busCall(m_loop, INTERFACE_NAME, "RecordsStored", [&] {
        const auto tables = m_collector.tables();
        ferry::MasterQueries store(*tables);
        std::uint64_t total = 0;
        for (const auto& n : store.nodes())
            total += n.recordsStored;
        return total;
    });
}

} // namespace collectord
