#pragma once
// What pushd reports between runs, persisted in the state directory (one
// small key=value file, written atomically) so that a pushd started by a
// `busctl get-property` answers at once with the last known state.

#include <cstdint>
#include <string>

namespace pushd {

struct PushState {
    std::int64_t lastPushMs = 0;
    std::int64_t lastSuccessMs = 0;
    std::string lastResult;
    std::string master;
    std::int64_t lastPullMs = 0;
    // When pushd first watched for pulls: the absence clock starts here for
    // a node that has never been pulled.
    std::int64_t watchStartMs = 0;
    bool active = false;
    std::string reason;
    // The master's period floor: it asked for no push before this moment
    // (0: no such request), and why, for `ferryctl status`.
    std::int64_t notBeforeMs = 0;
    std::string notBeforeReason;
    // Since when push has been on (0 while off), and when pushd last asked
    // fwcheckd for a fresh check (see Manager::askForFwcheck).
    std::int64_t activeSinceMs = 0;
    std::int64_t fwcheckRequestMs = 0;

    bool operator==(const PushState&) const = default;
};

// Missing file → defaults; a damaged file is logged and ignored (its worst
// effect is a stale status line), never fatal.
PushState loadPushState(const std::string& path);
void savePushState(const std::string& path, const PushState& state);

} // namespace pushd
