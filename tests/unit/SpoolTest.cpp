#include <gtest/gtest.h>

#include <filesystem>

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

// The exact statements of the release before epochs (common/src/Spool.cpp
// at 1205f77), so that the migration is tested against the real thing.
constexpr const char* kReleaseSpoolSchema =
    "CREATE TABLE IF NOT EXISTS records ("
    " seq INTEGER PRIMARY KEY, time_ms INTEGER NOT NULL, kind TEXT NOT NULL,"
    " payload BLOB NOT NULL, size INTEGER NOT NULL);"
    "CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value INTEGER NOT NULL);"
    "INSERT OR IGNORE INTO meta VALUES ('next_seq', 1), ('bytes', 0),"
    " ('dropped_records', 0), ('dropped_bytes', 0);";

std::vector<std::string> corruptFiles(const std::string& dir)
{
    std::vector<std::string> out;
    for (const auto& e : std::filesystem::directory_iterator(dir)) {
        const auto name = e.path().filename().string();
        if (name.rfind("spool.db.corrupt-", 0) == 0 && name.find("-wal") == std::string::npos &&
            name.find("-shm") == std::string::npos)
            out.push_back(e.path().string());
    }
    return out;
}

TEST_F(ASpool, GetsARandomEpochWhenCreatedAndKeepsIt)
{
    Epoch first;
    {
        Spool s(path, {});
        first = s.epoch();
        EXPECT_FALSE(first.isLegacy());
    }
    EXPECT_EQ(Spool(path, {}).epoch(), first) << "the epoch belongs to the file";
    EXPECT_NE(Spool(dir / "other.db", {}).epoch(), first) << "another spool is another epoch";
}

TEST_F(ASpool, MigratesAReleaseSpoolInPlaceToTheLegacyEpoch)
{
    {
        Database db(path);
        db.exec(kReleaseSpoolSchema);
        db.exec("INSERT INTO records VALUES (1, 1000, 'load', 'a', 5), (2, 2000, 'load', 'b', 5);"
                "UPDATE meta SET value = 3 WHERE key = 'next_seq';"
                "UPDATE meta SET value = 10 WHERE key = 'bytes';");
    }
    Spool s(path, {SpoolLimits{}.maxBytes, std::chrono::hours(24 * 365 * 100)});
    EXPECT_TRUE(s.epoch().isLegacy()) << "records it sent before keep colliding with themselves on the master";
    EXPECT_EQ(s.stats().records, 2u);
    EXPECT_EQ(s.readAfter(0, 10, 1 << 20).front().payload, "a");
    EXPECT_EQ(s.append("load", "c", 3000), 3u) << "the sequence continues";
    EXPECT_TRUE(Spool(path, {}).epoch().isLegacy()) << "and stays legacy at the next open";
}

TEST_F(ASpool, MovesAFileThatIsNotADatabaseAsideAndStartsANewEpoch)
{
    test::writeFile(path, std::string(8192, 'x'), 0600);
    Spool s(path, {});
    EXPECT_FALSE(s.epoch().isLegacy());
    EXPECT_EQ(s.append("load", "a", nowMs()), 1u);
    const auto aside = corruptFiles(dir.path());
    ASSERT_EQ(aside.size(), 1u);
    EXPECT_EQ(test::readFile(aside[0]), std::string(8192, 'x')) << "the damaged file is kept for the operator";
    const auto st = s.stats();
    EXPECT_EQ(st.resets, 1u);
    EXPECT_NE(st.lastReset.find("moved aside"), std::string::npos) << st.lastReset;
    EXPECT_FALSE(st.lastResetReported);
    s.markResetReported();
    EXPECT_TRUE(s.stats().lastResetReported);
}

TEST_F(ASpool, MovesADatabaseWithTheWrongSchemaAside)
{
    {
        Database db(path);
        db.exec("CREATE TABLE records (node TEXT, something_else INTEGER)");
    }
    Spool s(path, {});
    EXPECT_EQ(corruptFiles(dir.path()).size(), 1u);
    EXPECT_EQ(s.stats().records, 0u);
    EXPECT_EQ(s.stats().resets, 1u);
}

TEST_F(ASpool, MovesADamagedDatabaseAside)
{
    {
        Spool s(path, {});
        for (int i = 0; i < 200; ++i)
            s.append("load", std::string(1000, 'p'), nowMs());
    }
    // Overwrite the header's page size and the first pages: SQLite now
    // reports a malformed image or not-a-database.
    {
        std::string bytes = test::readFile(path);
        for (std::size_t i = 16; i < std::min<std::size_t>(bytes.size(), 12000); ++i)
            bytes[i] = static_cast<char>(0xa5);
        test::writeFile(path, bytes, 0600);
    }
    Spool s(path, {});
    EXPECT_EQ(corruptFiles(dir.path()).size(), 1u);
    EXPECT_EQ(s.append("load", "fresh", nowMs()), 1u);
}

TEST_F(ASpool, RefusesASchemaNewerThanItKnowsWithoutMovingIt)
{
    {
        Spool s(path, {});
        Database db(path);
        db.exec("PRAGMA user_version = 99");
    }
    EXPECT_THROW(Spool(path, {}), Error);
    EXPECT_TRUE(corruptFiles(dir.path()).empty());
}

TEST_F(ASpool, CountsDropsByReason)
{
    Spool s(path, {200, std::chrono::hours(1)});
    s.append("k", "old", nowMs() - 2 * 3600 * 1000);
    s.append("k", std::string(150, 'x'), nowMs());
    s.append("k", std::string(150, 'y'), nowMs());
    const auto st = s.stats();
    EXPECT_EQ(st.droppedByAge, 1u);
    EXPECT_EQ(st.droppedBySize, 1u);
    EXPECT_EQ(st.droppedRecords, 2u);
}

} // namespace
} // namespace ferry
