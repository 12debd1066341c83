#include "PushAdaptor.h"

#include <chrono>
#include <thread>

#include <spdlog/spdlog.h>

namespace pushd {

namespace {
constexpr const char* kPath = "/org/ferry/Push1";
constexpr std::chrono::milliseconds kProgressEvery{200};
std::uint64_t toUsec(std::int64_t ms)
{
    return ms > 0 ? static_cast<std::uint64_t>(ms) * 1000 : 0;
}
} // namespace

PushAdaptor::PushAdaptor(sdbus::IConnection& bus, ferry::EventLoop& loop, Manager& manager)
    : AdaptorInterfaces(bus, kPath), m_loop(loop), m_manager(manager)
{
    registerAdaptor();
}

PushAdaptor::~PushAdaptor()
{
    unregisterAdaptor();
    std::unique_lock lock(m_mutex);
    m_done.wait(lock, [this] { return m_workers == 0; });
}

void PushAdaptor::runCycle(sdbus::Result<std::string>&& result, bool scheduled)
{
    auto shared = std::make_shared<sdbus::Result<std::string>>(std::move(result));
    m_loop.hold();
    {
        std::lock_guard lock(m_mutex);
        ++m_workers;
    }
    // Creating the thread can fail (EAGAIN at the task limit): sdbus-c++ 1.2
    // aborts on anything but sdbus::Error escaping a handler, so the failure
    // is undone and answered here.
    try {
        std::thread([this, shared, scheduled]() mutable {
            std::string summary;
            std::optional<sdbus::Error> error;
            bool success = false;
            // Progress goes out through the loop thread, at most every
            // kProgressEvery and always for the last batch.
            auto lastSent = std::chrono::steady_clock::time_point{};
            const Manager::ProgressFn progress = [this, &lastSent](const ferry::SessionProgress& p) {
                const auto now = std::chrono::steady_clock::now();
                if (now - lastSent < kProgressEvery && p.recordsDone < p.recordsTotal)
                    return;
                lastSent = now;
                m_loop.post([this, p] {
                    try {
                        emitPushProgress(p.recordsDone, p.recordsTotal, p.bytesDone, p.bytesTotal);
                    } catch (const sdbus::Error& e) {
                        spdlog::debug("Ignoring failure to emit PushProgress: {}", e.getMessage());
                    }
                });
            };
            try {
                const Outcome o = scheduled ? m_manager.runScheduled(progress) : m_manager.pushNow(progress);
                success = o.success;
                summary = o.summary;
                if (!o.success)
                    error = sdbus::Error(std::string(INTERFACE_NAME) + ".Error.PushFailed", o.summary);
            } catch (const NotRegisteredError& e) {
                summary = e.what();
                error = sdbus::Error(std::string(INTERFACE_NAME) + ".Error.NotRegistered", e.what());
            } catch (const std::exception& e) {
                spdlog::error("Push cycle failed: {}", e.what());
                summary = e.what();
                error = sdbus::Error(std::string(INTERFACE_NAME) + ".Error.Internal", e.what());
            }
            m_loop.post([this, shared, summary, error, success]() mutable {
                if (error)
                    shared->returnError(*error);
                else
                    shared->returnResults(summary);
                try {
                    emitPushFinished(success, summary);
                } catch (const sdbus::Error& e) {
                    spdlog::debug("Ignoring failure to emit PushFinished: {}", e.getMessage());
                }
                m_loop.release();
            });
            std::lock_guard lock(m_mutex);
            --m_workers;
            m_done.notify_all();
        }).detach();
    } catch (const std::exception& e) {
        {
            std::lock_guard lock(m_mutex);
            --m_workers;
            m_done.notify_all();
        }
        m_loop.release();
        spdlog::error("Failed to start a push cycle: {}", e.what());
        throw sdbus::Error(std::string(INTERFACE_NAME) + ".Error.Internal",
                           std::string("Failed to start a push cycle: ") + e.what());
    }
}

void PushAdaptor::PushNow(sdbus::Result<std::string>&& result)
{
    m_loop.touch();
    runCycle(std::move(result), false);
}

void PushAdaptor::RunScheduled(sdbus::Result<std::string>&& result)
{
    m_loop.touch();
    runCycle(std::move(result), true);
}

std::tuple<bool, std::string> PushAdaptor::Evaluate()
{
    return call("Evaluate", [&] {
        const auto d = m_manager.evaluate();
        return std::make_tuple(d.active, d.reason);
    });
}

void PushAdaptor::NotePull()
{
    call("NotePull", [&] { m_manager.notePull(); });
}

uint64_t PushAdaptor::LastPush()
{
    return call("LastPush", [&] { return toUsec(m_manager.state().lastPushMs); });
}

std::string PushAdaptor::LastResult()
{
    return call("LastResult", [&] { return m_manager.state().lastResult; });
}

uint64_t PushAdaptor::NotBefore()
{
    return call("NotBefore", [&] {
        const auto st = m_manager.state();
        return st.notBeforeMs > ferry::nowMs() ? toUsec(st.notBeforeMs) : 0;
    });
}

std::string PushAdaptor::NotBeforeReason()
{
    return call("NotBeforeReason", [&] {
        const auto st = m_manager.state();
        return st.notBeforeMs > ferry::nowMs() ? st.notBeforeReason : std::string();
    });
}

uint64_t PushAdaptor::LastSuccess()
{
    return call("LastSuccess", [&] { return toUsec(m_manager.state().lastSuccessMs); });
}

uint64_t PushAdaptor::QueuedRecords()
{
    return call("QueuedRecords", [&] { return m_manager.spoolStats().records; });
}

uint64_t PushAdaptor::QueuedBytes()
{
    return call("QueuedBytes", [&] { return m_manager.spoolStats().bytes; });
}

uint64_t PushAdaptor::DroppedRecords()
{
    return call("DroppedRecords", [&] { return m_manager.spoolStats().droppedRecords; });
}

std::string PushAdaptor::SpoolEpoch()
{
    return call("SpoolEpoch", [&] { return m_manager.spoolStats().epoch.hex(); });
}

uint64_t PushAdaptor::SpoolResets()
{
    return call("SpoolResets", [&] { return m_manager.spoolStats().resets; });
}

std::string PushAdaptor::SpoolLastReset()
{
    return call("SpoolLastReset", [&] { return m_manager.spoolStats().lastReset; });
}

uint64_t PushAdaptor::SpoolOlderEpochRecords()
{
    return call("SpoolOlderEpochRecords", [&] { return m_manager.spoolStats().olderEpochRecords; });
}

uint64_t PushAdaptor::Period()
{
    return call("Period", [&] { return static_cast<uint64_t>(m_manager.plugins().period.count()); });
}

std::string PushAdaptor::Master()
{
    return call("Master", [&] { return m_manager.state().master; });
}

std::vector<std::string> PushAdaptor::Masters()
{
    return call("Masters", [&] {
        std::vector<std::string> out;
        for (const auto& m : m_manager.config().masters)
            out.push_back(m.host + ":" + std::to_string(m.sshPort));
        return out;
    });
}

std::string PushAdaptor::Mode()
{
    return call("Mode", [&] { return std::string(ferry::toString(m_manager.config().mode)); });
}

bool PushAdaptor::Active()
{
    return call("Active", [&] { return m_manager.currentDecision().active; });
}

std::string PushAdaptor::Reason()
{
    return call("Reason", [&] { return m_manager.currentDecision().reason; });
}

uint64_t PushAdaptor::LastPull()
{
    return call("LastPull", [&] { return toUsec(m_manager.state().lastPullMs); });
}

bool PushAdaptor::Registered()
{
    return call("Registered", [&] { return m_manager.registered(); });
}

} // namespace pushd
