#include <gtest/gtest.h>

#include "ferry/Bus.h"
#include "ferry/Spool.h"
#include "support/TestSupport.h"

namespace ferry {
namespace {

class ASpool : public ::testing::Test {
protected:
    test::TempDir dir;
    std::string path = dir / "spool.db";
};

TEST_F(ASpool, NumbersRecordsStrictlyIncreasingAcrossReopens)
{
    {
        Spool s(path, {});
        EXPECT_EQ(s.append("load", "a", nowMs()), 1u);
        EXPECT_EQ(s.append("load", "b", nowMs()), 2u);
        s.acknowledge(2);
    }
    Spool s(path, {});
    EXPECT_EQ(s.append("load", "c", nowMs()), 3u) << "a sequence is never reused, even after an ack";
}

TEST_F(ASpool, DeletesNothingBeforeTheAck)
{
    Spool s(path, {});
    for (int i = 0; i < 10; ++i)
        s.append("k", "payload", nowMs());
    const auto batch = s.readAfter(0, 4, 1 << 20);
    ASSERT_EQ(batch.size(), 4u);
    EXPECT_EQ(s.stats().records, 10u) << "reading must not remove";
    EXPECT_EQ(s.acknowledge(batch.back().seq), 4u);
    EXPECT_EQ(s.stats().records, 6u);
    EXPECT_EQ(s.readAfter(0, 100, 1 << 20).front().seq, 5u);
}

TEST_F(ASpool, DropsTheOldestAtTheSizeBoundAndCountsIt)
{
    Spool s(path, {2000, std::chrono::hours(24)});
    for (int i = 0; i < 30; ++i)
        s.append("k", std::string(99, 'x'), nowMs());  // 100 bytes each with the kind
    const auto st = s.stats();
    EXPECT_LE(st.bytes, 2000u);
    EXPECT_EQ(st.records, 20u);
    EXPECT_EQ(st.droppedRecords, 10u);
    EXPECT_EQ(st.droppedBytes, 1000u);
    EXPECT_EQ(s.readAfter(0, 1, 1 << 20).front().seq, 11u) << "the oldest went first";
}

TEST_F(ASpool, DropsRecordsOlderThanTheAgeBoundAndCountsThem)
{
    Spool s(path, {1 << 20, std::chrono::seconds(3600)});
    s.append("k", "old", nowMs() - 2 * 3600 * 1000);
    s.append("k", "new", nowMs());
    const auto st = s.stats();
    EXPECT_EQ(st.records, 1u);
    EXPECT_EQ(st.droppedRecords, 1u);
}

TEST_F(ASpool, BoundsABatchByBytesButAlwaysReturnsOneRecord)
{
    Spool s(path, {});
    for (int i = 0; i < 5; ++i)
        s.append("k", std::string(1000, 'x'), nowMs());
    EXPECT_EQ(s.readAfter(0, 100, 2100).size(), 2u);
    EXPECT_EQ(s.readAfter(0, 100, 10).size(), 1u);
}

TEST_F(ASpool, RefusesAnOversizedRecordWithoutLosingOthers)
{
    Spool s(path, {});
    s.append("k", "fine", nowMs());
    EXPECT_THROW(s.append("k", std::string(kMaxRecordPayload + 1, 'x'), nowMs()), Error);
    EXPECT_EQ(s.stats().records, 1u);
}

TEST_F(ASpool, IsSharedSafelyBetweenTwoConnections)
{
    Spool writer(path, {});
    Spool reader(path, {});
    for (int i = 0; i < 50; ++i)
        writer.append("k", "v", nowMs());
    EXPECT_EQ(reader.readAfter(0, 100, 1 << 20).size(), 50u);
    reader.acknowledge(25);
    EXPECT_EQ(writer.stats().records, 25u);
}

} // namespace
} // namespace ferry
