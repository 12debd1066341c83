#include "ferry/SessionStore.h"

namespace ferry {

PacingDecision decidePushPacing(const PushPacing& known, std::uint32_t defaultMinPushPeriodS,
                                std::uint32_t defaultMinPullIntervalS, std::int64_t nowMs)
{
    PacingDecision d;
    d.minPushPeriodS = known.minPushPeriodS.value_or(defaultMinPushPeriodS);
    d.minPullIntervalS = known.minPullIntervalS.value_or(defaultMinPullIntervalS);
    if (d.minPushPeriodS == 0 || known.lastPacedPushMs <= 0)
        return d;
    const std::int64_t floorMs = static_cast<std::int64_t>(d.minPushPeriodS) * 1000;
    const std::int64_t due = known.lastPacedPushMs + floorMs;
    // A clock stepped back (last push "in the future") is not the node's
    // fault: the push counts as on time and restarts the clock.
    if (known.lastPacedPushMs > nowMs)
        return d;
    if (nowMs < due - floorMs / 10) {
        d.early = true;
        d.comeBackAtMs = due;
    }
    return d;
}

SessionAdmission SessionStore::completeAdmission(const SessionStart& start, const EpochAdmission& epoch,
                                                 const std::function<void()>& notePacedPush)
{
    SessionAdmission out;
    out.epoch = epoch;
    if (start.pacing) {
        out.pacing = decidePushPacing(pushPacing(start.node), start.defaultMinPushPeriodS,
                                      start.defaultMinPullIntervalS, start.nowMs);
        if (!out.pacing.early && out.pacing.minPushPeriodS > 0 && !epoch.held)
            notePacedPush();
    }
    if (start.cursor)
        out.cursor = pullCursor(start.node, start.epoch);
    return out;
}

} // namespace ferry
