// The period floor's two pure halves (issue 15): the master's decision
// whether a push is early (decidePushPacing) and the node's reading of the
// answer (pushd::readPacing), including answers no master should send.

#include <gtest/gtest.h>

#include "PushCycle.h"
#include "ferry/Limits.h"
#include "ferry/SessionStore.h"

namespace ferry::test {
namespace {

constexpr std::int64_t kNow = 1'800'000'000'000;

TEST(APushPacingDecision, LetsEveryPushThroughWithoutAFloor)
{
    const auto d = decidePushPacing({std::nullopt, std::nullopt, kNow - 1000}, 0, 0, kNow);
    EXPECT_FALSE(d.early);
    EXPECT_EQ(d.minPushPeriodS, 0u);
}

TEST(APushPacingDecision, CallsAPushInsideTheFloorEarlyAndNamesWhenTheFloorEnds)
{
    const auto d = decidePushPacing({std::nullopt, std::nullopt, kNow - 60'000}, 240, 300, kNow);
    EXPECT_TRUE(d.early);
    EXPECT_EQ(d.comeBackAtMs, kNow - 60'000 + 240'000);
    EXPECT_EQ(d.minPushPeriodS, 240u);
    EXPECT_EQ(d.minPullIntervalS, 300u);
}

TEST(APushPacingDecision, ToleratesATenthOfTheFloorOfTimerJitter)
{
    EXPECT_FALSE(decidePushPacing({std::nullopt, std::nullopt, kNow - 220'000}, 240, 0, kNow).early);
    EXPECT_TRUE(decidePushPacing({std::nullopt, std::nullopt, kNow - 210'000}, 240, 0, kNow).early);
}

TEST(APushPacingDecision, PrefersTheNodesOwnFloorToTheDefault)
{
    EXPECT_FALSE(decidePushPacing({0u, std::nullopt, kNow - 1000}, 240, 0, kNow).early);
    const auto d = decidePushPacing({600u, 60u, kNow - 300'000}, 240, 0, kNow);
    EXPECT_TRUE(d.early);
    EXPECT_EQ(d.comeBackAtMs, kNow + 300'000);
    EXPECT_EQ(d.minPullIntervalS, 60u);
}

TEST(APushPacingDecision, TreatsTheFirstPushAndAClockSteppedBackAsOnTime)
{
    EXPECT_FALSE(decidePushPacing({std::nullopt, std::nullopt, 0}, 240, 0, kNow).early);
    EXPECT_FALSE(decidePushPacing({std::nullopt, std::nullopt, kNow + 3'600'000}, 240, 0, kNow).early);
}

TEST(ANodeReadingThePolicy, TakesTheFloorAndTheTimeToComeBack)
{
    pushd::PushCycleResult r;
    pushd::readPacing({{"min_push_period", "240"}, {"next_push_at_ms", std::to_string(kNow + 90'000)}}, kNow, "master",
                      r);
    EXPECT_EQ(r.minPushPeriodS, 240u);
    EXPECT_EQ(r.nextPushAtMs, kNow + 90'000);
}

TEST(ANodeReadingThePolicy, DropsTimesAMasterCannotMean)
{
    pushd::PushCycleResult r;
    // More than a day ahead: a master may not silence a node for longer.
    pushd::readPacing({{"next_push_at_ms", std::to_string(kNow + 86'400'001)}}, kNow, "master", r);
    EXPECT_EQ(r.nextPushAtMs, 0);
    pushd::readPacing({{"next_push_at_ms", "-5"}, {"min_push_period", "9e9"}}, kNow, "master", r);
    EXPECT_EQ(r.nextPushAtMs, 0);
    EXPECT_EQ(r.minPushPeriodS, 0u);
    pushd::readPacing({{"min_push_period", std::to_string(kMaxPolicySeconds + 1)}}, kNow, "master", r);
    EXPECT_EQ(r.minPushPeriodS, 0u);
    // A time already past asks for nothing.
    pushd::readPacing({{"next_push_at_ms", std::to_string(kNow - 1)}}, kNow, "master", r);
    EXPECT_EQ(r.nextPushAtMs, 0);
    // Unknown keys are a later master's business.
    pushd::readPacing({{"something_new", "x"}}, kNow, "master", r);
    EXPECT_EQ(r.nextPushAtMs, 0);
}

} // namespace
} // namespace ferry::test
