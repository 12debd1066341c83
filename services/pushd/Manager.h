#pragma once
// pushd's core: push cycles with master failover, the pull-absence fallback,
// and the persisted state the bus properties report. Knows nothing of D-Bus.
//
// Two ferry-pushd processes may share the state directory: the one
// ferry-push.service starts for a cycle (--cycle) and the one the bus
// activates for ferryctl and the pull login shell. So the state lives in
// its file, not in memory: every read loads it, every change is a locked
// read-modify-write, and a cycle holds a lock of its own.

#include <functional>
#include <memory>
#include <string>

#include "CollectorConnector.h"
#include "Fallback.h"
#include "PushCycle.h"
#include "PushState.h"
#include "ferry/Error.h"
#include "ferry/NodeConfig.h"
#include "ferry/Session.h"
#include "ferry/Spool.h"

namespace pushd {

// No pinned master host key yet: the node has not registered. The adaptor
// answers it as org.ferry.Push1.Error.NotRegistered.
class NotRegisteredError : public ferry::Error {
public:
    using ferry::Error::Error;
};

struct Outcome {
    bool success = false;
    std::string summary;
    bool skipped = false; // a scheduled cycle while push is off: nothing tried
};

class Manager {
public:
    Manager(ferry::NodeConfig config, ferry::PluginsConfig plugins, ferry::Paths paths, CollectorConnector& connector);

    using ProgressFn = std::function<void(const ferry::SessionProgress&)>;

    // One cycle now, whatever the mode. Safe to call from a worker thread
    // while the loop thread reads properties. Throws NotRegisteredError.
    // onProgress, if set, hears of each acknowledged batch.
    Outcome pushNow(const ProgressFn& onProgress = {});
    // Timer entry: re-evaluate the fallback, push only when active.
    Outcome runScheduled(const ProgressFn& onProgress = {});
    FallbackDecision evaluate();
    void notePull();

    // The persisted state as of now (another process may have changed it).
    PushState state() const;
    // The fallback decision as of now, computed without persisting (what
    // the Active and Reason properties report between timer ticks).
    FallbackDecision currentDecision() const;
    // Loop thread only: reuses one read connection for every property read.
    ferry::SpoolStats spoolStats();
    bool registered() const;
    const ferry::NodeConfig& config() const { return m_config; }
    const ferry::PluginsConfig& plugins() const { return m_plugins; }

private:
    Outcome pushToFirstReachable(ferry::Spool& spool, const std::string& secret, const ProgressFn& onProgress);
    // pacing: the master's answer about the period floor, on success only.
    void recordOutcome(const Outcome& outcome, const std::string& master, const PushCycleResult* pacing = nullptr);
    // Under the state lock: loads the state, re-evaluates the fallback
    // (after `change`, if any), saves it.
    FallbackDecision evaluateWith(void (*change)(PushState&));
    // Under the state lock, with the state being changed.
    void askForFwcheck(PushState& st, std::int64_t nowMs);
    void awaitRequestedFwcheck();

    ferry::NodeConfig m_config;
    ferry::PluginsConfig m_plugins;
    ferry::Paths m_paths;
    CollectorConnector& m_connector;
    std::unique_ptr<ferry::Spool> m_statsSpool;  // the loop thread's own connection
};

} // namespace pushd
