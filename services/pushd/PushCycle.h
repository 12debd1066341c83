#pragma once
// One push session over an established stream to the collector: the node's
// side of the common session (ferry/Session.h) as its initiator —
//   ← Hello   → Auth(node, epoch, proof)   ← AuthOk(proof)
//   → Report  ← Policy   → Batch … ← Ack … (a window of batches in flight)   → Bye
// Each record leaves the spool only once acked.

#include <chrono>
#include <cstdint>
#include <functional>
#include <string>
#include <utility>
#include <vector>

#include "ferry/Session.h"
#include "ferry/Spool.h"
#include "ferry/Stream.h"
#include "ferry/Wire.h"

namespace pushd {

struct PushCycleOptions {
    std::string nodeName;
    std::string secret;
    // The master's id (its masters: entry), for the per-master key. pushd
    // always sets it; the default serves callers that push to a master
    // holding the node secret itself (a legacy credential takes any id).
    std::string masterId = "ferry-master";
    std::string binding; // the master sshd's host key fingerprint, empty without SSH
    std::uint32_t batchRecords = 2000;
    std::uint32_t batchBytes = 1024 * 1024;
    unsigned window = ferry::kSessionWindow; // batches ahead of their Ack (Session.h)
    std::chrono::milliseconds ioTimeout{30000};
    // Transport mode and reason, fwcheck verdict for the health report.
    ferry::HealthReport report;
    // Before the first batch and after each Ack (see ferry::NodeSessionOptions).
    std::function<void(const ferry::SessionProgress&)> onProgress;
    // Session capabilities offered (Session.h); the benchmarks turn one off
    // to compare.
    std::uint32_t capabilities = ferry::kSessionCapabilities;
};

struct PushCycleResult {
    std::uint64_t recordsSent = 0;
    std::uint64_t recordsNew = 0;
    std::uint64_t duplicates = 0;
    std::uint64_t batches = 0;
    bool held = false;       // the master holds this spool's data (suspect node)
    std::string heldReason;
    // The master's period floor for this node (0: none), and when the push
    // came too soon after its last on-time one, the Unix time (ms) before
    // which the master asks for no other push (0: none).
    std::uint32_t minPushPeriodS = 0;
    std::int64_t nextPushAtMs = 0;
    // A later epoch of the spool (after a copy) waits for its own session.
    bool laterEpochQueued = false;
};

// Reads the period floor and the "come back at" time out of a Policy map.
// Values a master cannot mean (not a number, a floor above a day, a time
// more than a day ahead of nowMs) are dropped with a warning: a master must
// not be able to silence a node for longer than the longest floor.
void readPacing(const std::vector<std::pair<std::string, std::string>>& policy, std::int64_t nowMs,
                const std::string& master, PushCycleResult& result);

// Throws on any failure; what was acknowledged before it stays deleted, what
// was not stays queued.
PushCycleResult runPushCycle(ferry::ByteStream& stream, ferry::Spool& spool, const PushCycleOptions& options);

} // namespace pushd
