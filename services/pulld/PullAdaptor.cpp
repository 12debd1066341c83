#include "PullAdaptor.h"


namespace pulld {

namespace {
std::uint64_t usec(std::int64_t ms)
{
    return ms > 0 ? static_cast<std::uint64_t>(ms) * 1000 : 0;
}
const std::string kInterface = "org.ferry.Pull1";
} // namespace

PullAdaptor::PullAdaptor(sdbus::IConnection& bus, ferry::EventLoop& loop, Puller& puller,
                         std::function<bool()> startRound)
    : AdaptorInterfaces(bus, "/org/ferry/Pull1"), m_loop(loop), m_puller(puller), m_startRound(std::move(startRound))
{
    registerAdaptor();
}

PullAdaptor::~PullAdaptor()
{
    unregisterAdaptor();
    for (auto& w : m_workers)
        w.thread.join();
}

template <typename Work>
void PullAdaptor::inWorker(Work work)
{
    for (auto it = m_workers.begin(); it != m_workers.end();) {
        if (*it->done) {
            it->thread.join();
            it = m_workers.erase(it);
        } else {
            ++it;
        }
    }
    // Creating the thread can fail (EAGAIN at the task limit): sdbus-c++ 1.2
    // aborts on anything but sdbus::Error escaping a handler, so the failure
    // is undone and answered as the interface's Internal error.
    try {
        m_workers.reserve(m_workers.size() + 1);
        auto done = std::make_shared<std::atomic<bool>>(false);
        m_loop.hold();
        try {
            std::thread thread([this, done, work = std::move(work)]() mutable {
                work();
                m_loop.post([this] { m_loop.release(); });
                *done = true;
            });
            m_workers.push_back(Worker{std::move(thread), done});
        } catch (...) {
            m_loop.release();
            throw;
        }
    } catch (const std::exception& e) {
        spdlog::error("Failed to start a pull: {}", e.what());
        throw sdbus::Error(kInterface + ".Error.Internal", std::string("Failed to start a pull: ") + e.what());
    }
}

void PullAdaptor::PullNow(sdbus::Result<uint64_t, std::string>&& result, std::string node)
{
    m_loop.touch();
    // Result is move-only and EventLoop::post takes a std::function.
    auto reply = std::make_shared<sdbus::Result<uint64_t, std::string>>(std::move(result));
    inWorker([this, reply, node = std::move(node)] {
        // Everything that can fail is caught here: nothing may escape a thread.
        std::optional<PullOutcome> outcome;
        std::string errorName;
        std::string errorText;
        try {
            outcome = m_puller.pullNode(node);
            if (!outcome->success) {
                errorName = kInterface + ".Error.PullFailed";
                errorText = outcome->summary;
            }
        } catch (const UnknownNodeError& e) {
            errorName = kInterface + ".Error.UnknownNode";
            errorText = e.what();
        } catch (const std::exception& e) {
            spdlog::error("PullNow {} failed: {}", node, e.what());
            errorName = kInterface + ".Error.Internal";
            errorText = e.what();
        }
        m_loop.post([reply, outcome, errorName, errorText] {
            if (errorName.empty())
                reply->returnResults(outcome->records, outcome->summary);
            else
                reply->returnError(sdbus::Error(errorName, errorText));
        });
    });
}

void PullAdaptor::PullAll(sdbus::Result<uint32_t, uint32_t>&& result)
{
    m_loop.touch();
    auto reply = std::make_shared<sdbus::Result<uint32_t, uint32_t>>(std::move(result));
    inWorker([this, reply] {
        try {
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
            m_loop.post([reply, round] { reply->returnResults(round.pulled, round.failed); });
        } catch (const std::exception& e) {
            spdlog::error("PullAll failed: {}", e.what());
            const std::string text = e.what();
            m_loop.post([reply, text] { reply->returnError(sdbus::Error(kInterface + ".Error.Internal", text)); });
        }
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
