#include "ferry/BackgroundJobs.h"

#include <spdlog/spdlog.h>

namespace ferry {

BackgroundJobs::BackgroundJobs(EventLoop& loop, std::string interface, std::size_t limit, ErrorMap map)
    : m_loop(loop), m_interface(std::move(interface)), m_limit(limit), m_map(std::move(map))
{}

BackgroundJobs::~BackgroundJobs()
{
    stop();
}

void BackgroundJobs::stop()
{
    // No job may outlive what it uses. Their completions stay queued on the
    // loop; m_alive tells them not to run.
    m_stopped = true;
    m_alive.reset();
    for (auto& [id, job] : m_jobs) {
        if (job.thread.joinable())
            job.thread.join();
        m_loop.release();
    }
    m_jobs.clear();
}

sdbus::Error BackgroundJobs::currentError(const char* member) const
{
    try {
        throw;
    } catch (const sdbus::Error& e) {
        return e;
    } catch (const std::exception& e) {
        if (m_map) {
            if (auto mapped = m_map(e)) {
                spdlog::info("{} failed: {}", member, mapped->what());
                return sdbus::Error(mapped->name(), mapped->what());
            }
        }
        if (const auto* bus = dynamic_cast<const BusError*>(&e)) {
            spdlog::info("{} failed: {}", member, bus->what());
            return sdbus::Error(bus->name(), bus->what());
        }
        spdlog::error("{} failed: {}", member, e.what());
        return sdbus::Error(m_interface + ".Error.Internal", e.what());
    } catch (...) {
        spdlog::error("{} failed with an unknown exception", member);
        return sdbus::Error(m_interface + ".Error.Internal", "unknown failure");
    }
}

void BackgroundJobs::launch(const char* member, std::function<void()> onWorker, std::function<void()> finish,
                            const std::function<void(const sdbus::Error&)>& refused)
{
    m_loop.touch();
    if (m_stopped) {
        refused(sdbus::Error(m_interface + ".Error.Busy", std::string(member) + " refused: the daemon is stopping"));
        return;
    }
    if (m_jobs.size() >= m_limit) {
        spdlog::info("Refusing {}: {} of {} jobs are running", member, m_jobs.size(), m_limit);
        refused(sdbus::Error(m_interface + ".Error.Busy", std::string(member) +
                                                              " refused: " + std::to_string(m_jobs.size()) +
                                                              " jobs are running, the most this daemon runs at once;"
                                                              " try again when one ends"));
        return;
    }
    const std::uint64_t id = ++m_nextId;
    Job& job = m_jobs[id];
    job.finish = std::move(finish);
    m_loop.hold();
    try {
        job.thread = std::thread([this, id, alive = std::weak_ptr<int>(m_alive), work = std::move(onWorker)]() mutable {
            work();
            // Drop the work's captures here, on this thread, before the loop
            // thread can run the completion and join.
            work = nullptr;
            m_loop.post([this, id, alive] {
                if (!alive.expired())
                    finished(id);
            });
        });
    } catch (const std::exception& e) {
        // EAGAIN at the task limit, or no memory for the thread: refuse this
        // job and keep the daemon.
        m_jobs.erase(id);
        m_loop.release();
        spdlog::error("Failed to start {}: cannot create a worker thread: {}", member, e.what());
        refused(sdbus::Error(m_interface + ".Error.Busy", std::string("Failed to start ") + member +
                                                              ": cannot create a worker thread (" + e.what() +
                                                              "); try again later"));
    }
}

void BackgroundJobs::finished(std::uint64_t id)
{
    auto node = m_jobs.extract(id);
    if (node.empty())
        return;
    Job& job = node.mapped();
    // The worker posted this as its last act: the join is immediate.
    if (job.thread.joinable())
        job.thread.join();
    try {
        job.finish();
    } catch (const std::exception& e) {
        spdlog::error("Ignoring a failure while finishing a background job: {}", e.what());
    }
    job.finish = nullptr;
    m_loop.release();
}

} // namespace ferry
