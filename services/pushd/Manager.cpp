#include "Manager.h"

#include <sys/stat.h>

#include <spdlog/spdlog.h>

#include "FwcheckSummary.h"
#include "PushCycle.h"
#include "ferry/Bus.h"
#include "ferry/Crypto.h"
#include "ferry/Error.h"

namespace pushd {

Manager::Manager(ferry::NodeConfig config, ferry::PluginsConfig plugins, ferry::Paths paths,
                 CollectorConnector& connector)
    : m_config(std::move(config)), m_plugins(plugins), m_paths(std::move(paths)), m_connector(connector)
{
    m_state = loadPushState(m_paths.pushStateFile());
}

PushState Manager::state() const
{
    std::lock_guard lock(m_mutex);
    return m_state;
}

FallbackDecision Manager::currentDecision() const
{
    std::lock_guard lock(m_mutex);
    const std::int64_t now = ferry::nowMs();
    return decideFallback(m_config.mode, m_config.pullAbsence, m_state.lastPullMs,
                          m_state.watchStartMs == 0 ? now : m_state.watchStartMs, now);
}

ferry::SpoolStats Manager::spoolStats()
{
    // A connection of its own: the loop thread reads while a worker pushes.
    if (!m_statsSpool)
        m_statsSpool = std::make_unique<ferry::Spool>(m_paths.spoolFile(),
                                                      ferry::SpoolLimits{m_config.spoolMaxBytes, m_config.spoolMaxAge});
    return m_statsSpool->stats();
}

bool Manager::registered() const
{
    struct stat st{};
    return ::stat(m_paths.knownHostsFile().c_str(), &st) == 0 && st.st_size > 0;
}

Outcome Manager::pushToFirstReachable(ferry::Spool& spool, const std::string& secret)
{
    PushCycleOptions options;
    options.nodeName = m_config.nodeName;
    options.secret = secret;
    options.batchRecords = m_config.batchRecords;
    options.batchBytes = m_config.batchBytes;
    options.ioTimeout = m_config.ioTimeout;
    options.report.transportMode = ferry::toString(m_config.mode);
    options.report.transportReason = m_config.mode == ferry::TransportMode::Push
                                         ? "push configured"
                                         : "push cycle (pull absent or asked for)";
    // The node's own diagnosis travels with every push: a master whose
    // pulls fail learns from the node why (fwcheckd's last result).
    options.report.fwcheckVerdict = fwcheckSummary(m_paths.stateDir + "/fwcheck.json", ferry::kMaxReportText);

    std::string errors;
    for (const auto& master : m_config.masters) {
        const std::string where = master.host + ":" + std::to_string(master.sshPort);
        const auto started = ferry::Clock::now();
        std::unique_ptr<CollectorLink> link;
        try {
            link = m_connector.connect(master);
        } catch (const ferry::AuthError& e) {
            // A master that fails host key pinning is not "down": say so
            // loudly, and still try the next one.
            spdlog::warn("{}", e.what());
            errors += (errors.empty() ? "" : "; ") + std::string(e.what());
            continue;
        } catch (const std::exception& e) {
            spdlog::debug("Master {} unreachable: {}", where, e.what());
            errors += (errors.empty() ? "" : "; ") + std::string(e.what());
            continue;
        }
        try {
            auto r = runPushCycle(link->stream(), spool, options);
            // A copied spool holds the records from before the copy under
            // its old epoch: each epoch is one session, oldest first, on a
            // new connection to the same master (a few at most: one per copy).
            for (int more = 0; r.laterEpochQueued && !r.held && more < 8; ++more) {
                link.reset();
                link = m_connector.connect(master);
                const auto next = runPushCycle(link->stream(), spool, options);
                r.recordsSent += next.recordsSent;
                r.duplicates += next.duplicates;
                r.held = next.held;
                r.heldReason = next.heldReason;
                r.laterEpochQueued = next.laterEpochQueued;
            }
            const auto ms =
                std::chrono::duration_cast<std::chrono::milliseconds>(ferry::Clock::now() - started).count();
            if (r.held) {
                // Not a success: nothing moves until an operator decides on
                // the master, and the records stay here meanwhile.
                const std::string summary = "push to " + where + " held by the master: " + r.heldReason;
                recordOutcome({false, summary}, where);
                return {false, summary};
            }
            std::string summary = "pushed " + std::to_string(r.recordsSent) + " records to " + where + " in " +
                                  std::to_string(ms) + " ms";
            if (r.duplicates > 0)
                summary += " (" + std::to_string(r.duplicates) + " already stored)";
            recordOutcome({true, summary}, where);
            return {true, summary};
        } catch (const std::exception& e) {
            // Data-phase failures are not retried on another master within
            // the cycle: what was acked is gone, the rest stays queued.
            const std::string summary = "push to " + where + " failed: " + e.what();
            recordOutcome({false, summary}, where);
            return {false, summary};
        }
    }
    const std::string summary =
        m_config.masters.empty() ? "no masters configured in " + m_paths.configFile()
                                 : "no master reachable: " + errors;
    recordOutcome({false, summary}, "");
    return {false, summary};
}

void Manager::recordOutcome(const Outcome& outcome, const std::string& master)
{
    std::lock_guard lock(m_mutex);
    const bool wasFailing = m_state.lastResult.rfind("failed", 0) == 0;
    const bool first = m_state.lastResult.empty();
    if (outcome.success) {
        if (wasFailing)
            spdlog::info("Push working again: {}", outcome.summary);
        else
            spdlog::info("{}", outcome.summary);
    } else if (!wasFailing || first) {
        spdlog::warn("Push started to fail: {}", outcome.summary);
    } else {
        spdlog::debug("Push still failing: {}", outcome.summary);
    }
    const std::int64_t now = ferry::nowMs();
    m_state.lastPushMs = now;
    if (outcome.success)
        m_state.lastSuccessMs = now;
    m_state.lastResult = (outcome.success ? "success: " : "failed: ") + outcome.summary;
    m_state.master = master;
    savePushState(m_paths.pushStateFile(), m_state);
}

Outcome Manager::pushNow()
{
    std::lock_guard cycle(m_cycleMutex);
    if (!registered()) {
        const Outcome o{false, "not registered: no pinned master host key in " + m_paths.knownHostsFile() +
                                   " (run ferryctl register)"};
        recordOutcome(o, "");
        throw ferry::BusError("org.ferry.Push1.Error.NotRegistered", o.summary);
    }
    std::string secret;
    try {
        secret = ferry::loadSecret(m_paths.secretFile());
    } catch (const std::exception& e) {
        const Outcome o{false, e.what()};
        recordOutcome(o, "");
        return o;
    }
    ferry::Spool spool(m_paths.spoolFile(), {m_config.spoolMaxBytes, m_config.spoolMaxAge});
    return pushToFirstReachable(spool, secret);
}

FallbackDecision Manager::evaluateLocked()
{
    const std::int64_t now = ferry::nowMs();
    if (m_state.watchStartMs == 0)
        m_state.watchStartMs = now;
    auto d = decideFallback(m_config.mode, m_config.pullAbsence, m_state.lastPullMs, m_state.watchStartMs, now);
    if (d.active != m_state.active || m_state.reason.empty())
        spdlog::info("Push {}: {}", d.active ? "turned on" : "is off", d.reason);
    m_state.active = d.active;
    m_state.reason = d.reason;
    savePushState(m_paths.pushStateFile(), m_state);
    return d;
}

FallbackDecision Manager::evaluate()
{
    std::lock_guard lock(m_mutex);
    return evaluateLocked();
}

Outcome Manager::runScheduled()
{
    FallbackDecision d;
    {
        std::lock_guard lock(m_mutex);
        d = evaluateLocked();
    }
    if (!d.active)
        return {true, "skipped: " + d.reason};
    return pushNow();
}

void Manager::notePull()
{
    std::lock_guard lock(m_mutex);
    m_state.lastPullMs = ferry::nowMs();
    evaluateLocked();
}

} // namespace pushd
