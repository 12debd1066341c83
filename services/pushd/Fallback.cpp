#include "Fallback.h"

#include "ferry/Clock.h"

namespace pushd {

FallbackDecision decideFallback(ferry::TransportMode mode, std::chrono::seconds absence, std::int64_t lastPullMs,
                                std::int64_t watchStartMs, std::int64_t nowMs)
{
    using ferry::TransportMode;
    if (mode == TransportMode::Push)
        return {true, "mode push: push always on"};
    if (mode == TransportMode::Pull)
        return {false, "mode pull: push off, the master pulls"};
    const std::int64_t absenceMs = static_cast<std::int64_t>(absence.count()) * 1000;
    const std::string limit = std::to_string(absence.count() / 60) + " min" +
                              (absence.count() % 60 ? " " + std::to_string(absence.count() % 60) + " s" : "");
    if (lastPullMs <= 0) {
        if (nowMs - watchStartMs >= absenceMs)
            return {true, "no pull since watching began at " + ferry::formatTime(watchStartMs) + " (over " + limit +
                              "), push on"};
        return {false, "waiting for a first pull until " + ferry::formatTime(watchStartMs + absenceMs) + ", push off"};
    }
    if (nowMs - lastPullMs >= absenceMs)
        return {true, "no pull since " + ferry::formatTime(lastPullMs) + " (over " + limit + "), push on"};
    return {false, "last pull at " + ferry::formatTime(lastPullMs) + ", push off"};
}

} // namespace pushd
