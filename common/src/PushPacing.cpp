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

PacingDecision admitPushPacing(const SessionStart& start, const PushPacing& known, bool held,
                               const std::function<void()>& note)
{
    const PacingDecision d =
        decidePushPacing(known, start.defaultMinPushPeriodS, start.defaultMinPullIntervalS, start.nowMs);
    if (!d.early && d.minPushPeriodS > 0 && !held)
        note();
    return d;
}

} // namespace ferry
