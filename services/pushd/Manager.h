#pragma once
// pushd's core: push cycles with master failover, the pull-absence fallback,
// and the persisted state the bus properties report. Knows nothing of D-Bus.

#include <memory>
#include <mutex>
#include <string>

#include "CollectorConnector.h"
#include "Fallback.h"
#include "PushState.h"
#include "ferry/NodeConfig.h"
#include "ferry/Spool.h"

namespace pushd {

struct Outcome {
    bool success = false;
    std::string summary;
};

class Manager {
public:
    Manager(ferry::NodeConfig config, ferry::PluginsConfig plugins, ferry::Paths paths, CollectorConnector& connector);

    // One cycle now, whatever the mode. Safe to call from a worker thread
    // while the loop thread reads properties.
    Outcome pushNow();
    // Timer entry: re-evaluate the fallback, push only when active.
    Outcome runScheduled();
    FallbackDecision evaluate();
    void notePull();

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
    Outcome pushToFirstReachable(ferry::Spool& spool, const std::string& secret);
    void recordOutcome(const Outcome& outcome, const std::string& master);
    FallbackDecision evaluateLocked();
    void askForFwcheckLocked(std::int64_t nowMs);
    void awaitRequestedFwcheck();

    ferry::NodeConfig m_config;
    ferry::PluginsConfig m_plugins;
    ferry::Paths m_paths;
    CollectorConnector& m_connector;
    mutable std::mutex m_mutex;  // guards m_state and its file
    PushState m_state;
    std::mutex m_cycleMutex;     // one cycle at a time
    std::unique_ptr<ferry::Spool> m_statsSpool;  // the loop thread's own connection
};

} // namespace pushd
