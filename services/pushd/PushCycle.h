#pragma once
// One push session over an established stream to the collector:
//   ← Hello(challenge)   → Auth(node, nonce, proof)   ← AuthOk(proof)
//   → Batch … ← Ack …    (each record leaves the spool only once acked)
//   → Bye
// Both proofs are HMACs with the node secret over both nonces; the secret
// itself never crosses the wire.

#include <chrono>
#include <cstdint>
#include <string>

#include "ferry/Spool.h"
#include "ferry/Stream.h"

namespace pushd {

struct PushCycleOptions {
    std::string nodeName;
    std::string secret;
    std::uint32_t batchRecords = 500;
    std::uint32_t batchBytes = 512 * 1024;
    std::chrono::milliseconds ioTimeout{30000};
};

struct PushCycleResult {
    std::uint64_t recordsSent = 0;
    std::uint64_t recordsNew = 0;
    std::uint64_t duplicates = 0;
    std::uint64_t batches = 0;
};

// Throws on any failure; what was acknowledged before it stays deleted, what
// was not stays queued.
PushCycleResult runPushCycle(ferry::ByteStream& stream, ferry::Spool& spool, const PushCycleOptions& options);

} // namespace pushd
