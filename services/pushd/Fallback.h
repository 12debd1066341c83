#pragma once
// The pull-absence fallback: in auto mode push turns on when no pull came
// for `absence`, and off again when pulls resume. A pure function of the
// clock and the state, so the timer-driven evaluation is easy to test.

#include <chrono>
#include <cstdint>
#include <string>

#include "ferry/NodeConfig.h"

namespace pushd {

struct FallbackDecision {
    bool active = false;
    std::string reason;
};

FallbackDecision decideFallback(ferry::TransportMode mode, std::chrono::seconds absence, std::int64_t lastPullMs,
                                std::int64_t watchStartMs, std::int64_t nowMs);

} // namespace pushd
