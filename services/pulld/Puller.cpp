#include "Puller.h"

#include "FailureCause.h"

#include <thread>

#include <spdlog/spdlog.h>

#include "ferry/Bus.h"
#include "ferry/MasterQueries.h"
#include "ferry/PullClient.h"

namespace pulld {

namespace {

// The master holds the node's epoch: the pull itself worked.
class HeldError : public ferry::Error {
public:
    using ferry::Error::Error;
};

} // namespace

bool isPullable(const ferry::NodeInfo& node)
{
    return node.state == "accepted" && (node.mode == "pull" || node.mode == "auto") && !node.sshHost.empty();
}

Puller::Puller(ferry::MasterStoreOpener store, PulldConfig config, NodeConnector& connector)
    : m_store(std::move(store)), m_config(std::move(config)), m_connector(connector)
{
    // Each concurrent pull holds one connection for its length and, while it
    // connects, briefly one more (the node's pinned host keys): with one to
    // spare beyond the concurrency, no pull waits on another, and pullers
    // sharing one pool add up.
    m_store.reserveConnections(m_config.concurrency + 1,
                               std::to_string(m_config.concurrency) + " concurrent pulls and one to spare");
    // Opening creates or migrates the schema, once, before any pull.
    m_store.tables();
}

Puller::Puller(std::string storePath, PulldConfig config, NodeConnector& connector)
    : Puller(ferry::MasterStoreOpener(ferry::StoreConfig{}, std::move(storePath)), std::move(config), connector)
{}

std::shared_ptr<std::mutex> Puller::nodeLock(const std::string& name)
{
    std::lock_guard lock(m_mutex);
    auto& slot = m_nodeLocks[name];
    if (!slot)
        slot = std::make_shared<std::mutex>();
    return slot;
}

PullOutcome Puller::pullNode(const std::string& name)
{
    std::optional<ferry::NodeInfo> node;
    {
        const auto tables = m_store.tables();
        node = ferry::MasterQueries(*tables).node(name);
    }
    if (!node)
        throw UnknownNodeError("No node named '" + name + "' in the registry");
    if (node->state != "accepted")
        throw UnknownNodeError("Node '" + name + "' is " + node->state + ", not accepted");
    if (node->sshHost.empty())
        throw UnknownNodeError("Node '" + name + "' has no SSH host to pull from");
    return pullOne(*node);
}

PullOutcome Puller::pullOne(const ferry::NodeInfo& node)
{
    const auto lock = nodeLock(node.name);
    std::lock_guard held(*lock);

    const std::string where = node.sshHost + ":" + std::to_string(node.sshPort);
    PullOutcome outcome;
    outcome.node = node.name;
    // One connection to the store for the whole pull (PostgreSQL: borrowed
    // from pulld's pool), with the lease on it. The lease is held until the
    // pull's state is recorded: another master's pulld sees the node taken
    // and skips it, and after it sees this pull's state.
    const auto connection = m_store.connect();
    const auto lease = connection->tryPullLease(node.name);
    if (!lease) {
        outcome.leasedElsewhere = true;
        outcome.summary = "node " + node.name + " is being pulled by another master now; not pulled here";
        spdlog::debug("{}", outcome.summary);
        return outcome;
    }
    ferry::SqlConnection& tables = connection->tables();
    ferry::SessionStore& store = connection->sessionStore();
    PullState state(tables);
    const NodePullState before = state.get(node.name);
    const std::int64_t start = ferry::nowMs();
    std::uint64_t received = 0;
    std::uint64_t duplicates = 0;
    try {
        const auto secret = store.nodeSecret(node.name);
        if (!secret)
            throw ferry::AuthError("node " + node.name + " has no secret in the registry");
        // The command line's cursor names no epoch, so it is always 0: the
        // node deletes only what the session's Policy (cursor of its own
        // epoch) and the Acks confirm.
        const std::int64_t connectStart = ferry::nowMs();
        auto channel = m_connector.open(node, ferry::formatPullCommand({ferry::PullVerb::Fetch, 0}));
        spdlog::debug("Node {}: connected and started 'fetch' in {} ms", node.name, ferry::nowMs() - connectStart);
        // A legacy credential (the node secret itself, until the node's next
        // registration replaces it) may prove as any id; the node derives
        // the key for the id we name.
        ferry::PullClient client(
            channel->stream(),
            {node.name, *secret, std::chrono::duration_cast<std::chrono::milliseconds>(m_config.ioTimeout),
             node.sshHost + ":" + std::to_string(node.sshPort), "legacy-secret", channel->binding()});
        const ferry::MasterSessionResult r = client.fetch(store);
        received = r.records;
        outcome.records = r.newlyStored;
        duplicates = r.duplicates;
        if (r.admission.held)
            throw HeldError("holding its data: " + r.admission.reason);
        if (r.closedWithoutBye)
            throw ferry::ClosedError("the node closed the session without Bye");
        outcome.success = true;
        outcome.durationMs = ferry::nowMs() - start;
        outcome.summary = "pulled " + std::to_string(received) + " records (" + std::to_string(outcome.records) +
                          " new, " + std::to_string(duplicates) + " already stored) of epoch " +
                          r.epoch.shortHex() + " from " + where + " in " +
                          std::to_string(outcome.durationMs) + " ms";
        if (!before.lastResult.empty() && before.lastResult.rfind("success", 0) != 0)
            spdlog::info("Pulling node {} works again: {}", node.name, outcome.summary);
        else
            spdlog::info("Node {}: {}", node.name, outcome.summary);
        // The pull's state, its counter and the node's last pull in one
        // transaction, not synced: the records and the cursor are on disk
        // already (each group's FULL commit before its Acks), and a power
        // cut that takes this transaction only leaves the previous pull's
        // state and counts, which the next FULL commit on master.db would
        // have synced (on PostgreSQL it commits as always; on SQLite the
        // store shares the connection).
        const ferry::SqlUnsyncedCommits unsynced(tables);
        ferry::SqlTransaction tx(tables);
        state.recordAttempt(node.name, start, true, "success: " + outcome.summary, outcome.records);
        store.addCounters({{"sessions", ferry::counterLabels({{"transport", "pull"}, {"outcome", "ok"}}), 1}});
        ferry::MasterQueries(tables).notePull(node.name, ferry::nowMs());
        tx.commit();
        spdlog::debug("Node {}: pull recorded", node.name);
    } catch (const std::exception& e) {
        outcome.success = false;
        outcome.durationMs = ferry::nowMs() - start;
        outcome.summary = std::string("Failed to pull node ") + node.name + " from " + where + ": " + e.what();
        try {
            const bool wasHeld = dynamic_cast<const HeldError*>(&e) != nullptr;
            std::vector<ferry::CounterDelta> counts{
                {"sessions", ferry::counterLabels({{"transport", "pull"}, {"outcome", wasHeld ? "held" : "failed"}}),
                 1}};
            if (!wasHeld)
                counts.push_back(
                    {"pull_failures", ferry::counterLabels({{"cause", toString(classifyPullFailure(e))}}), 1});
            store.addCounters(counts);
        } catch (const std::exception& inner) {
            spdlog::warn("Failed to count the failed pull of node {}, ignoring: {}", node.name, inner.what());
        }
        if (received > 0)
            outcome.summary += " (" + std::to_string(outcome.records) + " new records stored before that)";
        // Log the edge, not every failing round.
        if (before.lastResult.rfind("failed", 0) == 0)
            spdlog::debug("{}", outcome.summary);
        else
            spdlog::warn("{}", outcome.summary);
        try {
            // The failed attempt and its cause in one transaction: whoever
            // reads a failed attempt (master show) finds its cause beside it.
            ferry::SqlTransaction tx(tables);
            storePullFailure(tables, node.name, start, e);
            state.recordAttempt(node.name, start, false, "failed: " + outcome.summary, outcome.records);
            tx.commit();
        } catch (const std::exception& inner) {
            spdlog::error("Failed to record the pull result of node {}, ignoring: {}", node.name, inner.what());
        }
    }
    spdlog::debug("Node {}: channel closed", node.name);
    return outcome;
}

RoundResult Puller::pullRound(bool force, const NodeDoneFn& onNodeDone)
{
    const std::int64_t start = ferry::nowMs();
    m_lastRoundMs = start;
    std::vector<ferry::NodeInfo> due;
    RoundResult round;
    {
        const auto tables = m_store.tables();
        PullState state(*tables);
        const auto minMs = static_cast<std::int64_t>(m_config.minInterval.count()) * 1000;
        for (const auto& node : ferry::MasterQueries(*tables).nodes()) {
            if (!isPullable(node))
                continue;
            if (!force && start - state.get(node.name).lastAttemptMs < minMs) {
                ++round.skipped;
                continue;
            }
            due.push_back(node);
        }
    }
    round.outcomes.resize(due.size());
    std::atomic<std::size_t> next{0};
    std::atomic<std::size_t> done{0};
    auto worker = [&] {
        for (std::size_t i = next++; i < due.size(); i = next++) {
            round.outcomes[i] = pullOne(due[i]);
            const std::size_t n = ++done;
            if (onNodeDone)
                onNodeDone(round.outcomes[i], n, due.size());
        }
    };
    const std::size_t threads = std::min<std::size_t>(std::max(1u, m_config.concurrency), due.size());
    std::vector<std::thread> pool;
    for (std::size_t t = 1; t < threads; ++t)
        pool.emplace_back(worker);
    if (threads > 0)
        worker();
    for (auto& t : pool)
        t.join();
    for (const auto& o : round.outcomes)
        (o.leasedElsewhere ? round.leasedElsewhere : o.success ? round.pulled : round.failed)++;
    round.wallMs = ferry::nowMs() - start;
    if (!due.empty() || round.skipped > 0)
        spdlog::info("Pull round: {} nodes pulled, {} failed, {} pulled recently and skipped, {} being pulled by "
                     "another master, in {} ms",
                     round.pulled, round.failed, round.skipped, round.leasedElsewhere, round.wallMs);
    return round;
}

std::vector<NodePullState> Puller::states()
{
    const auto tables = m_store.tables();
    PullState state(*tables);
    std::vector<NodePullState> out;
    for (const auto& node : ferry::MasterQueries(*tables).nodes()) {
        if (isPullable(node))
            out.push_back(state.get(node.name));
    }
    return out;
}

} // namespace pulld
