#pragma once
// Time as Ferry uses it: a monotonic clock for deadlines and wall-clock
// milliseconds for what is stored. In the base layer so that storage and
// codec code can tell the time without the bus header.

#include <chrono>
#include <cstdint>
#include <string>

namespace ferry {

// Deadlines and durations: monotonic, never jumps with the wall clock.
using Clock = std::chrono::steady_clock;
using Deadline = Clock::time_point;

inline Deadline deadlineIn(std::chrono::milliseconds d)
{
    return Clock::now() + d;
}

// Milliseconds since the Unix epoch, the unit of every timestamp Ferry stores.
std::int64_t nowMs();
// "2026-11-22 21:03:11" in local time, or "never" for 0.
std::string formatTime(std::int64_t epochMs);

} // namespace ferry
