#include "Manager.h"

#include <sys/stat.h>

#include <optional>

#include <spdlog/spdlog.h>

#include "FwcheckSummary.h"
#include "PushCycle.h"
#include "ferry/Clock.h"
#include "ferry/Crypto.h"
#include "ferry/Error.h"
#include "ferry/FileLock.h"
#include "ferry/FileWatch.h"
#include "ferry/Files.h"

namespace pushd {

namespace {
// A fresh check is asked for again when the last request got no answer in
// this long (fwcheckd not installed, failing, or its path unit disabled).
constexpr std::int64_t kFwcheckRetryMs = 10 * 60 * 1000;
// How long a push waits for the check it just asked for, so that the first
// push of a fallback carries the node's diagnosis; a check takes well under
// a second, and a push that gives up waiting goes anyway.
constexpr std::int64_t kFwcheckWaitMs = 5000;
} // namespace

Manager::Manager(ferry::NodeConfig config, ferry::PluginsConfig plugins, ferry::Paths paths,
                 CollectorConnector& connector)
    : m_config(std::move(config)), m_plugins(plugins), m_paths(std::move(paths)), m_connector(connector)
{}

PushState Manager::state() const
{
    // The file is replaced by rename, so a read without the lock sees one
    // whole version or the other.
    return loadPushState(m_paths.pushStateFile());
}

FallbackDecision Manager::currentDecision() const
{
    const PushState st = state();
    const std::int64_t now = ferry::nowMs();
    return decideFallback(m_config.mode, m_config.pullAbsence, st.lastPullMs,
                          st.watchStartMs == 0 ? now : st.watchStartMs, now);
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

Outcome Manager::pushToFirstReachable(ferry::Spool& spool, const std::string& secret, const ProgressFn& onProgress)
{
    PushCycleOptions options;
    options.nodeName = m_config.nodeName;
    options.secret = secret;
    options.batchRecords = m_config.batchRecords;
    options.batchBytes = m_config.batchBytes;
    options.ioTimeout = m_config.ioTimeout;
    options.onProgress = onProgress;
    options.report.transportMode = ferry::toString(m_config.mode);
    options.report.transportReason = m_config.mode == ferry::TransportMode::Push
                                         ? "push configured"
                                         : "push cycle (pull absent or asked for)";
    // The node's own diagnosis travels with every push: a master whose
    // pulls fail learns from the node why (fwcheckd's last result).
    options.report.fwcheckVerdict = fwcheckSummary(m_paths.fwcheckResultFile(), ferry::kMaxReportText);

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
            options.masterId = ferry::masterIdOf(master);
            options.binding = link->binding();
            auto r = runPushCycle(link->stream(), spool, options);
            // A copied spool holds the records from before the copy under
            // its old epoch: each epoch is one session, oldest first, on a
            // new connection to the same master (a few at most: one per copy).
            // The first session's answer about the period floor stands.
            for (int more = 0; r.laterEpochQueued && !r.held && more < 8; ++more) {
                link.reset();
                link = m_connector.connect(master);
                options.binding = link->binding();
                const auto next = runPushCycle(link->stream(), spool, options);
                r.recordsSent += next.recordsSent;
                r.recordsNew += next.recordsNew;
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
                std::string summary = "push to " + where + " held by the master: " + r.heldReason;
                // A push goes epoch by epoch, oldest first, and ends at a
                // held one: what a later epoch queued waits behind it.
                if (r.laterEpochQueued)
                    summary += "; the records of a later epoch are queued behind it and stay here too";
                recordOutcome({false, summary}, where);
                return {false, summary};
            }
            std::string summary = "pushed " + std::to_string(r.recordsSent) + " records to " + where + " in " +
                                  std::to_string(ms) + " ms";
            if (r.duplicates > 0)
                summary += " (" + std::to_string(r.duplicates) + " already stored)";
            if (r.nextPushAtMs > 0)
                summary += "; the master allows a push every " + std::to_string(r.minPushPeriodS) +
                           " s and asks for the next one at " + ferry::formatTime(r.nextPushAtMs) +
                           " (scheduled pushes wait until then)";
            recordOutcome({true, summary}, where, &r);
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

void Manager::recordOutcome(const Outcome& outcome, const std::string& master, const PushCycleResult* pacing)
{
    ferry::FileLock lock(m_paths.pushStateLockFile());
    PushState st = loadPushState(m_paths.pushStateFile());
    const bool wasFailing = st.lastResult.rfind("failed", 0) == 0;
    const bool first = st.lastResult.empty();
    if (pacing != nullptr) {
        st.notBeforeMs = pacing->nextPushAtMs;
        st.notBeforeReason = pacing->nextPushAtMs > 0 ? "master " + master + " allows a push every " +
                                                            std::to_string(pacing->minPushPeriodS) + " s"
                                                      : "";
    }
    if (outcome.success && pacing != nullptr && pacing->nextPushAtMs > 0) {
        // The one line an early push earns: the records went, and the
        // scheduled pushes before that time are skipped without a word.
        spdlog::warn("{}", outcome.summary);
    } else if (outcome.success) {
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
    st.lastPushMs = now;
    if (outcome.success)
        st.lastSuccessMs = now;
    st.lastResult = (outcome.success ? "success: " : "failed: ") + outcome.summary;
    st.master = master;
    savePushState(m_paths.pushStateFile(), st);
}

Outcome Manager::pushNow(const ProgressFn& onProgress)
{
    ferry::FileLock cycle(m_paths.pushCycleLockFile());
    if (!registered()) {
        const Outcome o{false, "not registered: no pinned master host key in " + m_paths.knownHostsFile() +
                                   " (run ferryctl register)"};
        recordOutcome(o, "");
        throw NotRegisteredError(o.summary);
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
    return pushToFirstReachable(spool, secret, onProgress);
}

FallbackDecision Manager::evaluateWith(void (*change)(PushState&))
{
    ferry::FileLock lock(m_paths.pushStateLockFile());
    const PushState before = loadPushState(m_paths.pushStateFile());
    PushState st = before;
    if (change != nullptr)
        change(st);
    const std::int64_t now = ferry::nowMs();
    if (st.watchStartMs == 0)
        st.watchStartMs = now;
    auto d = decideFallback(m_config.mode, m_config.pullAbsence, st.lastPullMs, st.watchStartMs, now);
    if (d.active != st.active || st.reason.empty())
        spdlog::info("Push {}: {}", d.active ? "turned on" : "is off", d.reason);
    if (!d.active)
        st.activeSinceMs = 0;
    else if (!st.active || st.activeSinceMs == 0)
        st.activeSinceMs = now;
    st.active = d.active;
    st.reason = d.reason;
    if (d.active && m_config.mode == ferry::TransportMode::Auto)
        askForFwcheck(st, now);
    // Written only when something changed: every scheduled cycle evaluates
    // first, and an unchanged state cost the push two syncs (the file and
    // its directory) before it began.
    if (!(st == before))
        savePushState(m_paths.pushStateFile(), st);
    return d;
}

void Manager::askForFwcheck(PushState& st, std::int64_t nowMs)
{
    // Push is on because pulls stopped coming: the master will want to know
    // why, and the node's answer travels with its pushes. A verdict from
    // before that moment may predate the cause (a firewall rule is no file
    // that ferry-fwcheckd.path watches), so ask for a fresh one. Not over
    // the bus: Check() is root's, and a bus-activated fwcheckd starts
    // passive (a property read must do no privileged work). The request is
    // a file only root and ferry can write (the state directory is 0750):
    // ferry-fwcheckd.path starts fwcheckd for it, which then checks as its
    // unit allows, and a running fwcheckd watches the file itself.
    if (fwcheckCheckedMs(m_paths.fwcheckResultFile()) >= st.activeSinceMs)
        return;
    if (st.fwcheckRequestMs >= st.activeSinceMs && nowMs - st.fwcheckRequestMs < kFwcheckRetryMs)
        return;
    try {
        ferry::writeFileAtomic(m_paths.fwcheckRequestFile(),
                               "requested_ms=" + std::to_string(nowMs) + "\nreason=" + st.reason + "\n");
        st.fwcheckRequestMs = nowMs;
        spdlog::info("Asked fwcheckd for a fresh reachability check ({}), for the master to see why pulls stopped",
                     m_paths.fwcheckRequestFile());
    } catch (const std::exception& e) {
        spdlog::warn("Failed to ask fwcheckd for a fresh check, ignoring: {}", e.what());
    }
}

void Manager::awaitRequestedFwcheck()
{
    const std::int64_t requested = loadPushState(m_paths.pushStateFile()).fwcheckRequestMs;
    if (requested == 0)
        return;
    const std::string file = m_paths.fwcheckResultFile();
    // fwcheckd replaces fwcheck.json by renaming: wake on that instead of
    // polling. The watch is set before the first look, so a verdict written
    // between the two is not missed.
    std::optional<ferry::FileWatch> watch;
    try {
        watch.emplace(std::vector<std::string>{file});
    } catch (const std::exception& e) {
        spdlog::warn("Not waiting for fwcheckd's verdict, ignoring: {}", e.what());
        return;
    }
    while (fwcheckCheckedMs(file) < requested) {
        const std::int64_t left = requested + kFwcheckWaitMs - ferry::nowMs();
        if (left <= 0)
            return;
        watch->waitForChange(std::chrono::milliseconds(left));
    }
}

FallbackDecision Manager::evaluate()
{
    return evaluateWith(nullptr);
}

Outcome Manager::runScheduled(const ProgressFn& onProgress)
{
    const FallbackDecision d = evaluate();
    if (!d.active)
        return {true, "skipped: " + d.reason, true};
    const PushState st = loadPushState(m_paths.pushStateFile());
    if (ferry::nowMs() < st.notBeforeMs) {
        const std::string why =
            "skipped: " + st.notBeforeReason + ", and asked for no push before " + ferry::formatTime(st.notBeforeMs);
        spdlog::debug("{}", why);
        return {true, why, true};
    }
    awaitRequestedFwcheck();
    return pushNow(onProgress);
}

void Manager::notePull()
{
    evaluateWith([](PushState& st) { st.lastPullMs = ferry::nowMs(); });
}

} // namespace pushd
