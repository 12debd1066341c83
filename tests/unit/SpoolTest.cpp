#include <gtest/gtest.h>

#include <filesystem>
#include <vector>

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

TEST_F(ASpool, DeletesExactlyTheRangesOfAcksTakenTogether)
{
    Spool s(path, {});
    for (int i = 0; i < 10; ++i)
        s.append("k", std::string(static_cast<std::size_t>(i + 1), 'x'), nowMs());
    const std::uint64_t bytesBefore = s.stats().bytes;
    // A head batch 8–9 and backlog batches up to 3: 10 and 4–7 stay.
    EXPECT_EQ(s.acknowledgeRanges({{8, 9}, {1, 3}}), 5u);
    std::vector<std::uint64_t> left;
    for (const auto& r : s.readAfter(0, 100, 1 << 20))
        left.push_back(r.seq);
    EXPECT_EQ(left, (std::vector<std::uint64_t>{4, 5, 6, 7, 10}));
    // Payload sizes 1–3 and 8–9, plus the kind's byte each.
    EXPECT_EQ(s.stats().bytes, bytesBefore - (1 + 2 + 3 + 8 + 9) - 5);
    EXPECT_EQ(s.acknowledgeRanges({}), 0u);
    EXPECT_EQ(s.acknowledgeRanges({{1, 3}, {8, 9}}), 0u) << "deleted once";
}

// docs/durability.md: only an Ack's deletion may commit without an fsync.
// The connection goes to NORMAL at the first Ack of a run, stays there for
// the session's further Acks, and is back at FULL before any other write.
TEST_F(ASpool, CommitsOnlyAcksUnsyncedAndSwitchesOncePerRunOfAcks)
{
    constexpr int kNormal = 1;
    constexpr int kFull = 2;
    Spool s(path, {});
    EXPECT_EQ(s.synchronousMode(), kFull) << "a fresh connection";
    for (int i = 0; i < 6; ++i)
        s.append("k", "payload", nowMs());
    EXPECT_EQ(s.synchronousMode(), kFull);
    EXPECT_EQ(s.acknowledgeRange(1, 2), 2u);
    EXPECT_EQ(s.synchronousMode(), kNormal);
    s.readAfter(0, 10, 1 << 20);
    s.stats();
    EXPECT_EQ(s.acknowledgeRange(3, 3), 1u);
    EXPECT_EQ(s.synchronousMode(), kNormal) << "reads and further Acks keep the session's switch";
    EXPECT_EQ(s.append("k", "next", nowMs()), 7u);
    EXPECT_EQ(s.synchronousMode(), kFull) << "an append commits at FULL";
    s.acknowledge(4);
    s.markResetReported();
    EXPECT_EQ(s.synchronousMode(), kFull) << "so does every write but an Ack";
    EXPECT_EQ(s.stats().records, 3u);
    // What an Ack deleted is gone for every reader, and stays gone.
    Spool reopened(path, {});
    EXPECT_EQ(reopened.readAfter(0, 10, 1 << 20).front().seq, 5u);
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

// Bytes this process has read from files so far (/proc/self/io, rchar).
std::uint64_t bytesReadSoFar()
{
    const std::string io = test::readFile("/proc/self/io");
    const auto at = io.find("rchar: ");
    return at == std::string::npos ? 0 : std::stoull(io.substr(at + 7));
}

TEST_F(ASpool, ReadsItsFiguresWithoutReadingEveryRecord)
{
    // 10,000 records of 600 bytes (a week of the sampler's, 6 MB), their
    // times out of sequence order (a clock stepped back), in a spool made
    // before records_time existed.
    {
        Spool spool(path, {1ull << 40, std::chrono::hours(24 * 365 * 100)});
        std::vector<Record> records;
        for (int i = 0; i < 10000; ++i)
            records.push_back({0, 1'000'000 + ((i * 7919) % 10000) * 1000, "load", std::string(600, 'x')});
        spool.appendAll(records);
    }
    Database(path).exec("DROP INDEX IF EXISTS records_time");
    // The first open adds the index; a session's open finds it there.
    Spool(path, {1ull << 40, std::chrono::hours(24 * 365 * 100)});
    Spool spool(path, {1ull << 40, std::chrono::hours(24 * 365 * 100)});
    const std::uint64_t before = bytesReadSoFar();
    const SpoolStats st = spool.stats();
    const std::uint64_t read = bytesReadSoFar() - before;
    EXPECT_EQ(st.records, 10000u);
    EXPECT_EQ(st.oldestMs, 1'000'000) << "the oldest time, wherever it is in the sequence";
    EXPECT_EQ(st.bytes, 10000u * (600 + 4));
    EXPECT_LT(read, 1'000'000u) << "stats() read " << read << " bytes of a 6 MB spool";
    std::printf("stats() read %llu bytes of a 6 MB spool\n", static_cast<unsigned long long>(read));
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

namespace ferry {
namespace {

// The spool is bound to its machine and file: a copy appends under a new
// epoch, and the records it already held keep theirs.
class ACopiedSpool : public ::testing::Test {
protected:
    void SetUp() override
    {
        test::writeFile(machineA, "0123456789abcdef0123456789abcdef\n", 0644);
        test::writeFile(machineB, "fedcba9876543210fedcba9876543210\n", 0644);
    }
    void copyTo(const std::string& to)
    {
        for (const char* suffix : {"", "-wal"})
            if (std::filesystem::exists(path + suffix))
                std::filesystem::copy_file(path + suffix, to + suffix);
    }

    test::TempDir dir;
    std::string path = dir / "spool.db";
    std::string machineA = dir / "machine-id-a";
    std::string machineB = dir / "machine-id-b";
};

TEST_F(ACopiedSpool, AppendsUnderANewEpochAndKeepsTheOldRecordsEpoch)
{
    Epoch original;
    {
        Spool s(path, {}, machineA);
        original = s.epoch();
        for (int i = 0; i < 3; ++i)
            s.append("load", "before " + std::to_string(i), nowMs());
    }
    const std::string copy = dir / "copy.db";
    copyTo(copy); // cp: the same bytes in a new file (a new inode)

    Spool c(copy, {}, machineA);
    ASSERT_NE(c.epoch(), original) << "the copy must not go on with the original's epoch";
    EXPECT_EQ(c.append("load", "after", nowMs()), 4u) << "the one sequence goes on";
    const auto ranges = c.epochRanges();
    ASSERT_EQ(ranges.size(), 2u);
    EXPECT_EQ(ranges[0].epoch, original);
    EXPECT_EQ(ranges[0].firstSeq, 1u);
    EXPECT_EQ(ranges[0].lastSeq, 3u);
    EXPECT_FALSE(ranges[0].current);
    EXPECT_EQ(ranges[1].epoch, c.epoch());
    EXPECT_EQ(ranges[1].firstSeq, 4u);
    EXPECT_TRUE(ranges[1].current);

    const auto sending = c.sendingRange();
    EXPECT_EQ(sending.epoch, original) << "the old records go first, under their own epoch";
    EXPECT_EQ(sending.lastSeq, 3u);
    EXPECT_TRUE(sending.laterQueued);
    const auto st = c.stats();
    EXPECT_EQ(st.epoch, c.epoch());
    EXPECT_EQ(st.olderEpochs, 1u);
    EXPECT_EQ(st.olderEpochRecords, 3u);
    EXPECT_NE(st.lastReset.find("spool copied"), std::string::npos) << st.lastReset;
    EXPECT_NE(st.lastReset.find("another file"), std::string::npos) << st.lastReset;
    EXPECT_FALSE(st.lastResetReported) << "the next session tells the master";

    c.acknowledge(3);
    EXPECT_EQ(c.sendingRange().epoch, c.epoch()) << "once the old epoch is drained, the new one is sent";

    // The original file, on its machine, is untouched: same epoch, and its
    // next record gets the same sequence as the copy's, under another epoch.
    Spool o(path, {}, machineA);
    EXPECT_EQ(o.epoch(), original);
    EXPECT_EQ(o.epochRanges().size(), 1u);
    EXPECT_EQ(o.append("load", "original after", nowMs()), 4u);
    EXPECT_TRUE(o.stats().lastReset.empty());
}

TEST_F(ACopiedSpool, StartsOneNewEpochOnlyAndKeepsItAtTheNextOpens)
{
    {
        Spool(path, {}, machineA).append("load", "a", nowMs());
    }
    const std::string copy = dir / "copy.db";
    copyTo(copy);
    Epoch copied;
    {
        Spool c(copy, {}, machineA);
        copied = c.epoch();
    }
    Spool again(copy, {}, machineA);
    EXPECT_EQ(again.epoch(), copied) << "the copy is bound to its own file from then on";
    EXPECT_EQ(again.epochRanges().size(), 2u);
}

TEST_F(ACopiedSpool, OnAnotherMachineStartsANewEpochEvenInTheSameFile)
{
    Epoch original;
    {
        Spool s(path, {}, machineA);
        original = s.epoch();
        s.append("load", "a", nowMs());
    }
    // A VM image cloned block for block: the same inode, another machine id.
    Spool c(path, {}, machineB);
    EXPECT_NE(c.epoch(), original);
    EXPECT_EQ(c.sendingRange().epoch, original);
    EXPECT_NE(c.stats().lastReset.find("another machine"), std::string::npos) << c.stats().lastReset;
    EXPECT_EQ(c.stats().lastReset.find("another file"), std::string::npos) << c.stats().lastReset;
}

TEST_F(ACopiedSpool, GivesAnEmptyCopyANewEpochFromSequenceOne)
{
    {
        Spool s(path, {}, machineA);
    }
    copyTo(dir / "copy.db");
    Spool o(path, {}, machineA);
    Spool c(dir / "copy.db", {}, machineA);
    EXPECT_NE(c.epoch(), o.epoch());
    ASSERT_EQ(c.epochRanges().size(), 1u) << "no record was written under the old epoch";
    EXPECT_EQ(c.append("load", "a", nowMs()), 1u);
}

TEST_F(ACopiedSpool, IsNotTakenForACopyWhenAProcessCannotReadTheMachineId)
{
    Epoch original;
    {
        Spool s(path, {}, machineA);
        original = s.epoch();
    }
    EXPECT_EQ(Spool(path, {}, dir / "no-such-machine-id").epoch(), original);
    EXPECT_EQ(Spool(path, {}, machineA).epoch(), original);
}

// A version-2 spool (one epoch, no binding) becomes one range of its epoch
// and is bound at that first open, without a new epoch.
TEST_F(ACopiedSpool, MigratesAVersionTwoSpoolInPlace)
{
    const std::string epochHex = Epoch::random().hex();
    {
        Database db(path);
        db.exec("CREATE TABLE records (seq INTEGER PRIMARY KEY, time_ms INTEGER NOT NULL, kind TEXT NOT NULL,"
                " payload BLOB NOT NULL, size INTEGER NOT NULL);"
                "CREATE TABLE meta (key TEXT PRIMARY KEY, value INTEGER NOT NULL);"
                "CREATE TABLE spool_info (key TEXT PRIMARY KEY, value TEXT NOT NULL);"
                "INSERT INTO meta VALUES ('next_seq', 3), ('bytes', 10), ('dropped_records', 0),"
                " ('dropped_bytes', 0), ('dropped_age', 0), ('dropped_size', 0), ('reset_reported', 1);"
                "INSERT INTO records VALUES (1, 1000, 'load', 'a', 5), (2, 2000, 'load', 'b', 5);"
                "PRAGMA user_version = 2;");
        Statement(db, "INSERT INTO spool_info VALUES ('epoch', ?1)").bind(1, epochHex).run();
    }
    Spool s(path, {SpoolLimits{}.maxBytes, std::chrono::hours(24 * 365 * 100)}, machineA);
    EXPECT_EQ(s.epoch().hex(), epochHex);
    EXPECT_EQ(s.stats().records, 2u);
    EXPECT_EQ(s.epochRanges().size(), 1u);
    EXPECT_EQ(s.append("load", "c", nowMs()), 3u);
    EXPECT_TRUE(s.stats().lastReset.empty());
    EXPECT_EQ(Spool(path, {}, machineA).epoch().hex(), epochHex) << "bound at the first open, no new epoch";
}

} // namespace
} // namespace ferry
