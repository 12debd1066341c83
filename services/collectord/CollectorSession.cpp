#include "CollectorSession.h"

#include <csignal>
#include <cstdlib>
#include <cstring>

#include <spdlog/spdlog.h>

#include "ferry/Clock.h"
#include "ferry/PullProtocol.h"
#include "ferry/Session.h"

namespace collectord {

SessionResult serveSession(ferry::ByteStream& stream, ferry::SessionStore& store, const SessionOptions& o)
{
    return serveSession(
        stream, [&store]() -> ferry::SessionStore& { return store; }, o);
}

SessionResult serveSession(ferry::ByteStream& stream, const std::function<ferry::SessionStore&()>& openStore,
                           const SessionOptions& o)
{
    ferry::MasterSessionOptions so;
    so.protocol = "push";
    so.side = ferry::SessionSide::Responder;
    so.selfName = o.serverName;
    so.via = o.via;
    so.address = stream.peer();
    so.ioTimeout = o.ioTimeout;
    so.afterCommit = o.afterCommit;
    so.onAuthenticated = o.onAuthenticated;
    so.minPushPeriodS = o.minPushPeriodS;
    so.minPullIntervalS = o.minPullIntervalS;
    so.ownHostKeys = o.sshdHostKeys;
    // Test hook for the durability tests: die between the commit and the
    // Ack, the moment where a lost Ack must not cost a record or store one
    // twice. Documented in docs/durability.md; off unless the environment
    // of collectord names it.
    if (!so.afterCommit) {
        const char* failpoint = std::getenv("FERRY_FAILPOINT");
        if (failpoint != nullptr && std::strcmp(failpoint, "collector-after-commit") == 0)
            so.afterCommit = [] {
                spdlog::warn("FERRY_FAILPOINT=collector-after-commit: killing collectord after the commit");
                std::raise(SIGKILL);
            };
    }
    const ferry::MasterSessionResult r = ferry::runMasterSession(stream, openStore, so);
    const std::string who = ferry::escapeForLog(r.node);
    if (r.admission.held)
        spdlog::warn("Holding the data of node {} (epoch {}): {}", who, r.epoch.shortHex(),
                     ferry::escapeForLog(r.admission.reason, 400));
    if (r.pacing.early)
        spdlog::info("Node {} pushed before its period floor of {} s was up: its records are stored, and it was "
                     "told to come back at {}",
                     who, r.pacing.minPushPeriodS, ferry::formatTime(r.pacing.comeBackAtMs));
    if (r.closedWithoutBye)
        spdlog::debug("Node {} ({}) closed without Bye", who, stream.peer());
    SessionResult result;
    result.node = r.node;
    result.epoch = r.epoch.shortHex();
    result.held = r.admission.held;
    result.comeBackAtMs = r.pacing.early ? r.pacing.comeBackAtMs : 0;
    result.batches = r.batches;
    result.stored = r.newlyStored;
    result.duplicates = r.duplicates;
    return result;
}

} // namespace collectord
