#include "PullAdaptor.h"

#include <spdlog/spdlog.h>

namespace pulld {

namespace {
std::uint64_t usec(std::int64_t ms)
{
    return ms > 0 ? static_cast<std::uint64_t>(ms) * 1000 : 0;
}
const std::string kInterface = "org.ferry.Pull1";
// Pulls (each holds an SSH session and a database connection) running at
// once through PullNow and PullAll; more are refused with Error.Busy.
constexpr std::size_t kMaxJobs = 16;
} // namespace

PullAdaptor::PullAdaptor(sdbus::IConnection& bus, ferry::EventLoop& loop, Puller& puller,
                         std::function<bool()> startRound)
    : AdaptorInterfaces(bus, "/org/ferry/Pull1"),
      m_loop(loop),
      m_puller(puller),
      m_startRound(std::move(startRound)),
      m_jobs(loop, kInterface, kMaxJobs, [](const std::exception& e) -> std::optional<ferry::BusError> {
          if (dynamic_cast<const UnknownNodeError*>(&e))
              return ferry::BusError(kInterface + ".Error.UnknownNode", e.what());
          return std::nullopt;
      })
{
    registerAdaptor();
}

PullAdaptor::~PullAdaptor()
{
    unregisterAdaptor();
}

void PullAdaptor::PullNow(sdbus::Result<uint64_t, std::string>&& result, std::string node)
{
    m_jobs.reply("PullNow", std::move(result), [this, node = std::move(node)] {
        const PullOutcome outcome = m_puller.pullNode(node);
        if (!outcome.success)
            throw ferry::BusError(kInterface + ".Error.PullFailed", outcome.summary);
        return std::make_tuple(outcome.records, outcome.summary);
    });
}

void PullAdaptor::PullAll(sdbus::Result<uint32_t, uint32_t>&& result)
{
    m_jobs.reply("PullAll", std::move(result), [this] {
        const RoundResult round =
            m_puller.pullRound(true, [this](const PullOutcome& o, std::size_t done, std::size_t total) {
                m_loop.post([this, o, done, total] {
                    try {
                        emitNodePulled(o.node, o.success, o.records, o.summary, static_cast<uint32_t>(done),
                                       static_cast<uint32_t>(total));
                    } catch (const sdbus::Error& e) {
                        spdlog::debug("Ignoring failure to emit NodePulled: {}", e.getMessage());
                    }
                });
            });
        return std::make_tuple(round.pulled, round.failed);
    });
}

std::string PullAdaptor::RunRound()
{
    return ferry::busCall(m_loop, kInterface, "RunRound",
                          [&] { return std::string(m_startRound() ? "started" : "running"); });
}

std::vector<sdbus::Struct<std::string, uint64_t, uint64_t, std::string, uint64_t, uint64_t, uint64_t>> PullAdaptor::Nodes()
{
    return ferry::busCall(m_loop, kInterface, "Nodes", [&] {
        std::vector<sdbus::Struct<std::string, uint64_t, uint64_t, std::string, uint64_t, uint64_t, uint64_t>> out;
        for (const auto& s : m_puller.states())
            out.emplace_back(s.node, usec(s.lastAttemptMs), usec(s.lastSuccessMs), s.lastResult, s.lastRecords,
                             s.totalRecords, s.cursor);
        return out;
    });
}

uint64_t PullAdaptor::LastRound()
{
    return ferry::busCall(m_loop, kInterface, "LastRound", [&] { return usec(m_puller.lastRoundMs()); });
}

uint32_t PullAdaptor::Concurrency()
{
    return ferry::busCall(m_loop, kInterface, "Concurrency", [&] { return m_puller.config().concurrency; });
}

} // namespace pulld
