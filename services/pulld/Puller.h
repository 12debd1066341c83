#pragma once
// pulld's core (no D-Bus): pulls pull-mode nodes from the registry in the
// master store, each at its own host and SSH port, with bounded
// concurrency, storing through the same store as collectord (master.db, or
// the PostgreSQL database store.yml names), so that a record that arrives
// by push and by pull, or by two masters' pulls, is stored once.
//
// On a shared database the masters' pullds split the nodes by a lease per
// node (MasterStoreOpener::tryPullLease): a node another master is pulling
// is skipped by this one's round, never pulled by two at once.
//
// Eligible: state accepted, mode pull or auto (an auto node turns push on
// only when pulls stop, so the master must pull it), and an SSH host.

#include <atomic>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "NodeConnector.h"
#include "PullState.h"
#include "PulldConfig.h"
#include "ferry/Error.h"
#include "ferry/StoreConfig.h"

namespace pulld {

struct PullOutcome {
    std::string node;
    bool success = false;
    std::string summary;
    std::uint64_t records = 0;  // newly stored
    std::int64_t durationMs = 0;
    bool leasedElsewhere = false; // another master was pulling it: not tried
};

struct RoundResult {
    std::vector<PullOutcome> outcomes;
    unsigned pulled = 0;
    unsigned failed = 0;
    unsigned skipped = 0;  // pulled recently enough
    unsigned leasedElsewhere = 0; // being pulled by another master
    std::int64_t wallMs = 0;
};

// PullNow for a node the store does not know, or one that cannot be pulled.
class UnknownNodeError : public ferry::Error {
public:
    using ferry::Error::Error;
};

class Puller {
public:
    Puller(ferry::MasterStoreOpener store, PulldConfig config, NodeConnector& connector);
    // master.db at storePath.
    Puller(std::string storePath, PulldConfig config, NodeConnector& connector);

    // Pulls one node now, whatever its last pull; never throws for a failed
    // pull (the outcome says), only UnknownNodeError.
    PullOutcome pullNode(const std::string& name);
    // Called from the round's worker threads as each node's pull ends: the
    // outcome, how many of the round's nodes are done, and how many it has.
    using NodeDoneFn = std::function<void(const PullOutcome&, std::size_t done, std::size_t total)>;

    // Pulls every eligible node (only those not pulled for min_interval
    // unless force), at most `concurrency` at a time.
    RoundResult pullRound(bool force, const NodeDoneFn& onNodeDone = {});

    std::vector<NodePullState> states();
    std::int64_t lastRoundMs() const { return m_lastRoundMs; }
    const PulldConfig& config() const { return m_config; }

private:
    PullOutcome pullOne(const ferry::NodeInfo& node);
    std::shared_ptr<std::mutex> nodeLock(const std::string& name);

    ferry::MasterStoreOpener m_store;
    PulldConfig m_config;
    NodeConnector& m_connector;
    std::mutex m_mutex;
    std::map<std::string, std::shared_ptr<std::mutex>> m_nodeLocks;
    std::atomic<std::int64_t> m_lastRoundMs{0};
};

bool isPullable(const ferry::NodeInfo& node);

} // namespace pulld
