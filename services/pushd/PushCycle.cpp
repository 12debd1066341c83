#include "PushCycle.h"

#include <spdlog/spdlog.h>

#include "ferry/Session.h"

namespace pushd {

PushCycleResult runPushCycle(ferry::ByteStream& stream, ferry::Spool& spool, const PushCycleOptions& o)
{
    ferry::NodeSessionOptions so;
    so.protocol = "push";
    so.side = ferry::SessionSide::Initiator;
    so.nodeName = o.nodeName;
    so.secret = o.secret;
    so.batchRecords = o.batchRecords;
    so.batchBytes = o.batchBytes;
    so.window = o.window;
    so.ioTimeout = o.ioTimeout;
    so.report = o.report;
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
    result.laterEpochQueued = r.laterEpochQueued;
    return result;
}

} // namespace pushd
