#include "PushAdaptor.h"

#include <chrono>

#include <spdlog/spdlog.h>

namespace pushd {

namespace {
constexpr const char* kPath = "/org/ferry/Push1";
constexpr std::chrono::milliseconds kProgressEvery{200};
// Cycles take push-cycle.lock one at a time; callers beyond this many are
// refused (Error.Busy) rather than queued without bound.
constexpr std::size_t kMaxCycles = 8;
std::uint64_t toUsec(std::int64_t ms)
{
    return ms > 0 ? static_cast<std::uint64_t>(ms) * 1000 : 0;
}
} // namespace

PushAdaptor::PushAdaptor(sdbus::IConnection& bus, ferry::EventLoop& loop, Manager& manager)
    : AdaptorInterfaces(bus, kPath),
      m_loop(loop),
      m_manager(manager),
      m_jobs(loop, INTERFACE_NAME, kMaxCycles, [](const std::exception& e) -> std::optional<ferry::BusError> {
          if (dynamic_cast<const NotRegisteredError*>(&e))
              return ferry::BusError(std::string(INTERFACE_NAME) + ".Error.NotRegistered", e.what());
          return std::nullopt;
      })
{
    registerAdaptor();
}

PushAdaptor::~PushAdaptor()
{
    unregisterAdaptor();
}

void PushAdaptor::runCycle(sdbus::Result<std::string>&& result, bool scheduled, const char* member)
{
    auto reply = std::make_shared<sdbus::Result<std::string>>(std::move(result));
    m_jobs.start(
        member,
        [this, scheduled] {
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
            return scheduled ? m_manager.runScheduled(progress) : m_manager.pushNow(progress);
        },
        [this, reply](const Outcome& o) {
            if (o.success)
                reply->returnResults(o.summary);
            else
                reply->returnError(sdbus::Error(std::string(INTERFACE_NAME) + ".Error.PushFailed", o.summary));
            finished(o.success, o.summary);
        },
        [this, reply](const sdbus::Error& e) {
            reply->returnError(e);
            finished(false, e.getMessage());
        });
}

void PushAdaptor::finished(bool success, const std::string& summary)
{
    try {
        emitPushFinished(success, summary);
    } catch (const sdbus::Error& e) {
        spdlog::debug("Ignoring failure to emit PushFinished: {}", e.getMessage());
    }
}

void PushAdaptor::PushNow(sdbus::Result<std::string>&& result)
{
    runCycle(std::move(result), false, "PushNow");
}

void PushAdaptor::RunScheduled(sdbus::Result<std::string>&& result)
{
    runCycle(std::move(result), true, "RunScheduled");
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
