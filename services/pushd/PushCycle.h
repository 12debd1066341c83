#pragma once
// One push session over an established stream to the collector: the node's
// side of the common session (ferry/Session.h) as its initiator —
//   ← Hello   → Auth(node, epoch, proof)   ← AuthOk(proof)
//   → Report  ← Policy   → Batch … ← Ack … (a window of batches in flight)   → Bye
// Each record leaves the spool only once acked.

#include <chrono>
#include <cstdint>
#include <string>

#include "ferry/Spool.h"
#include "ferry/Stream.h"
#include "ferry/Wire.h"

namespace pushd {

struct PushCycleOptions {
    std::string nodeName;
    std::string secret;
    std::uint32_t batchRecords = 500;
    std::uint32_t batchBytes = 512 * 1024;
    unsigned window = 4;
    std::chrono::milliseconds ioTimeout{30000};
    // Transport mode and reason, fwcheck verdict for the health report.
    ferry::HealthReport report;
};

struct PushCycleResult {
    std::uint64_t recordsSent = 0;
    std::uint64_t recordsNew = 0;
    std::uint64_t duplicates = 0;
    std::uint64_t batches = 0;
    bool held = false;       // the master holds this spool's data (suspect node)
    std::string heldReason;
    // A later epoch of the spool (after a copy) waits for its own session.
    bool laterEpochQueued = false;
};

// Throws on any failure; what was acknowledged before it stays deleted, what
// was not stays queued.
PushCycleResult runPushCycle(ferry::ByteStream& stream, ferry::Spool& spool, const PushCycleOptions& options);

} // namespace pushd
