#include "PushCycle.h"

#include <optional>

#include <spdlog/spdlog.h>

#include "ferry/Clock.h"
#include "ferry/Limits.h"
#include "ferry/PullProtocol.h"
#include "ferry/Session.h"

namespace pushd {

namespace {

std::optional<std::int64_t> number(const std::string& text)
{
    if (text.empty() || text.size() > 18 || text.find_first_not_of("0123456789") != std::string::npos)
        return std::nullopt;
    return std::stoll(text);
}

} // namespace

void readPacing(const std::vector<std::pair<std::string, std::string>>& policy, std::int64_t nowMs,
                const std::string& master, PushCycleResult& result)
{
    const std::int64_t maxAheadMs = static_cast<std::int64_t>(ferry::kMaxPolicySeconds) * 1000;
    for (const auto& [key, value] : policy) {
        if (key == ferry::kPolicyMinPushPeriod) {
            const auto v = number(value);
            if (v && *v <= ferry::kMaxPolicySeconds)
                result.minPushPeriodS = static_cast<std::uint32_t>(*v);
            else
                spdlog::warn("Ignoring master {}'s period floor '{}': not a number of seconds up to {}", master,
                             ferry::escapeForLog(value, 64), ferry::kMaxPolicySeconds);
        } else if (key == ferry::kPolicyNextPushAt) {
            const auto v = number(value);
            if (v && *v <= nowMs + maxAheadMs)
                result.nextPushAtMs = *v > nowMs ? *v : 0;
            else
                spdlog::warn("Ignoring master {}'s time for the next push '{}': not a time within a day", master,
                             ferry::escapeForLog(value, 64));
        }
    }
}

PushCycleResult runPushCycle(ferry::ByteStream& stream, ferry::Spool& spool, const PushCycleOptions& o)
{
    ferry::NodeSessionOptions so;
    so.protocol = "push";
    so.side = ferry::SessionSide::Initiator;
    so.nodeName = o.nodeName;
    so.secret = o.secret;
    so.masterId = o.masterId;
    so.binding = o.binding;
    so.batchRecords = o.batchRecords;
    so.batchBytes = o.batchBytes;
    so.window = o.window;
    so.ioTimeout = o.ioTimeout;
    so.report = o.report;
    so.onProgress = o.onProgress;
    so.capabilities = o.capabilities;
    const ferry::NodeSessionResult r = ferry::runNodeSession(stream, spool, so);
    if (r.held)
        spdlog::warn("Collector {} holds the data of this spool (epoch {}): {}; the records stay here", stream.peer(),
                     r.epoch.shortHex(), r.heldReason);
    PushCycleResult result;
    result.recordsSent = r.recordsSent;
    result.recordsNew = r.newlyStored;
    result.duplicates = r.duplicates;
    result.batches = r.batches;
    result.held = r.held;
    result.heldReason = r.heldReason;
    readPacing(r.policy.policy, ferry::nowMs(), stream.peer(), result);
    result.laterEpochQueued = r.laterEpochQueued;
    return result;
}

} // namespace pushd
