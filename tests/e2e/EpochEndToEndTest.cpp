// Exactly once across a node's life, end to end on one machine: real sshd,
// real collectord, pushd activated on a private bus, the sampler and
// ferryctl. Each test counts records on both sides.

#include <signal.h>

#include <filesystem>

#include <gtest/gtest.h>

#include "PushFixture.h"
#include "ferry/Spool.h"

namespace ferry::test {
namespace {

class ANodesLife : public PushFixture {
protected:
    std::string spoolPath() const { return m_nodeState + "/spool.db"; }

    // Moves the spool's files (with -wal and -shm) to prefix*, pushd stopped.
    void moveSpool(const std::string& to)
    {
        stopPushd();
        for (const char* suffix : {"", "-wal", "-shm"}) {
            std::error_code ec;
            std::filesystem::rename(spoolPath() + suffix, to + suffix, ec);
        }
    }
    void restoreSpool(const std::string& from)
    {
        stopPushd();
        for (const char* suffix : {"", "-wal", "-shm"}) {
            std::error_code ec;
            std::filesystem::remove(spoolPath() + suffix, ec);
            std::filesystem::rename(from + suffix, spoolPath() + suffix, ec);
        }
    }
    std::uint64_t queued() { return ferry::Spool(spoolPath(), {}).stats().records; }
    ferry::Epoch epoch() { return ferry::Spool(spoolPath(), {}).epoch(); }
};

TEST_F(ANodesLife, StoresEveryRecordOfAReinstalledNodeFromSequenceOne)
{
    spoolRecords(5);
    ASSERT_EQ(ferryctl({"push"}).exitCode, 0) << collectorLog();
    ASSERT_EQ(storedAtMaster(), 5u);
    const auto first = epoch();

    // Reinstall: the package purge takes the spool with it.
    moveSpool(*m_root / "purged.db");
    spoolRecords(5);
    const auto second = epoch();
    ASSERT_NE(first, second);
    const auto r = ferryctl({"push"});
    ASSERT_EQ(r.exitCode, 0) << r.err << collectorLog();
    EXPECT_NE(r.out.find("pushed 5 records"), std::string::npos) << r.out;
    EXPECT_EQ(r.out.find("already stored"), std::string::npos) << r.out;
    ferry::MasterStore store(m_masterState + "/master.db");
    EXPECT_EQ(store.countRecords("test-node"), 10u);
    EXPECT_EQ(store.countRecords("test-node", first), 5u);
    EXPECT_EQ(store.countRecords("test-node", second), 5u);
    EXPECT_EQ(queued(), 0u);
    EXPECT_TRUE(waitUntil([&] { return collectorLog().find("started a new spool") != std::string::npos; }))
        << collectorLog();

    const auto nodes = ferryctlMaster({"nodes"});
    EXPECT_NE(nodes.out.find(second.shortHex()), std::string::npos) << nodes.out;
    const auto status = ferryctl({"status"});
    EXPECT_NE(status.out.find("Spool: epoch " + second.shortHex()), std::string::npos) << status.out;
}

TEST_F(ANodesLife, FlagsAClonedIdentityAsSuspectAndMixesOrDropsNothing)
{
    spoolRecords(3);
    ASSERT_EQ(ferryctl({"push"}).exitCode, 0) << collectorLog();
    const auto a = epoch();
    // The clone's spool (A) is set aside; B speaks for the node.
    moveSpool(*m_root / "clone-a.db");
    spoolRecords(4);
    const auto b = epoch();
    ASSERT_EQ(ferryctl({"push"}).exitCode, 0) << collectorLog();
    moveSpool(*m_root / "clone-b.db");
    // A is alive again, with new records.
    restoreSpool(*m_root / "clone-a.db");
    spoolRecords(2);
    const auto held = ferryctl({"push"});
    EXPECT_NE(held.exitCode, 0);
    EXPECT_NE(held.err.find("held by the master"), std::string::npos) << held.out << held.err;
    EXPECT_EQ(queued(), 2u) << "held data stays on the node";
    EXPECT_EQ(storedAtMaster(), 7u);

    const auto nodes = ferryctlMaster({"nodes"});
    EXPECT_NE(nodes.out.find("SUSPECT"), std::string::npos) << nodes.out;
    const auto epochs = ferryctlMaster({"epochs", "test-node"});
    EXPECT_NE(epochs.out.find(a.hex()), std::string::npos) << epochs.out;
    EXPECT_NE(epochs.out.find(b.hex()), std::string::npos) << epochs.out;
    EXPECT_NE(epochs.out.find("suspect"), std::string::npos) << epochs.out;
    EXPECT_NE(epochs.out.find("127.0.0.1"), std::string::npos) << epochs.out;

    // The operator keeps A; its two records flow, B's spool would be held.
    const auto resolved = ferryctlMaster({"resolve", "test-node", "--keep", a.shortHex()});
    ASSERT_EQ(resolved.exitCode, 0) << resolved.err;
    ASSERT_EQ(ferryctl({"push"}).exitCode, 0) << collectorLog();
    EXPECT_EQ(queued(), 0u);
    ferry::MasterStore store(m_masterState + "/master.db");
    EXPECT_EQ(store.countRecords("test-node", a), 5u);
    EXPECT_EQ(store.countRecords("test-node", b), 4u);
    EXPECT_FALSE(store.node("test-node")->suspect);
}

// A real clone: the node's state directory copied file by file (cp: new
// inodes) to a second node with its own pushd on its own bus, both pushing
// to the same master. The clone's records from before the copy keep the old
// epoch, its new ones get a new epoch; the master stores every record once
// and flags the node suspect as soon as both are alive.
TEST_F(ANodesLife, GivesACopiedStateDirectoryANewEpochAndStoresEveryRecordOnce)
{
    spoolRecords(5);
    ASSERT_EQ(ferryctl({"push"}).exitCode, 0) << collectorLog();
    const auto a = epoch();
    spoolRecords(3); // 6..8, queued when the machine is cloned
    stopPushd();
    const std::string cloneState = *m_root / "clone-state";
    const std::string cloneConfig = *m_root / "clone-etc";
    std::filesystem::copy(m_nodeState, cloneState, std::filesystem::copy_options::recursive);
    std::filesystem::copy(m_nodeConfig, cloneConfig, std::filesystem::copy_options::recursive);
    const std::string cloneServices = *m_root / "clone-services";
    std::filesystem::create_directories(cloneServices);
    writeFile(cloneServices + "/org.ferry.Push1.service",
              "[D-BUS Service]\nName=org.ferry.Push1\nExec=/usr/bin/env FERRY_STATE_DIR=" + cloneState +
                  " FERRY_CONFIG_DIR=" + cloneConfig + " " + buildPath("services/pushd/ferry-pushd") +
                  " -v --idle-timeout=5\nUser=root\n");
    const std::string originalBus = m_bus->address();
    TestBus cloneBus({cloneServices});
    const std::map<std::string, std::string> onOriginal{{"DBUS_SYSTEM_BUS_ADDRESS", originalBus}};
    const std::map<std::string, std::string> onClone{{"DBUS_SYSTEM_BUS_ADDRESS", cloneBus.address()},
                                                     {"FERRY_STATE_DIR", cloneState},
                                                     {"FERRY_CONFIG_DIR", cloneConfig}};
    const std::string ctl = buildPath("services/ferryctl/ferryctl");
    const std::string cloneSpool = cloneState + "/spool.db";

    // The clone's first open sees another file: new records, new epoch.
    ferry::Epoch b;
    {
        ferry::Spool spool(cloneSpool, {});
        b = spool.epoch();
        std::vector<ferry::Record> records;
        for (int i = 0; i < 4; ++i)
            records.push_back({0, ferry::nowMs(), "test", "clone " + std::to_string(i)});
        EXPECT_EQ(spool.appendAll(records).front(), 9u);
        EXPECT_EQ(spool.sendingRange().epoch, a) << "the copied records keep the original's epoch";
    }
    ASSERT_NE(b, a);
    const auto status = run({ctl, "status"}, onClone);
    EXPECT_NE(status.out.find("Spool: epoch " + b.shortHex()), std::string::npos) << status.out << status.err;
    EXPECT_NE(status.out.find("3 queued record(s) of an older epoch"), std::string::npos) << status.out;
    EXPECT_NE(status.out.find("Spool copy: spool copied"), std::string::npos) << status.out;

    // The clone pushes first: the old epoch's records, then the new epoch.
    const auto clonePush = run({ctl, "push"}, onClone);
    ASSERT_EQ(clonePush.exitCode, 0) << clonePush.out << clonePush.err << collectorLog();
    EXPECT_NE(clonePush.out.find("pushed 7 records"), std::string::npos) << clonePush.out;
    EXPECT_EQ(ferry::Spool(cloneSpool, {}).stats().records, 0u);

    // The original goes on under its epoch: the master now sees both alive.
    spoolRecords(2); // 9..10 of epoch a: the same sequences as the clone's, another epoch
    EXPECT_EQ(epoch(), a) << "the original's spool is where it was made: no new epoch";
    const auto held = run({ctl, "push"}, onOriginal);
    EXPECT_NE(held.exitCode, 0);
    EXPECT_NE(held.err.find("held by the master"), std::string::npos) << held.out << held.err;
    EXPECT_EQ(queued(), 5u) << "held data stays on the node";
    const auto epochs = ferryctlMaster({"epochs", "test-node"});
    EXPECT_NE(epochs.out.find(a.hex()), std::string::npos) << epochs.out;
    EXPECT_NE(epochs.out.find(b.hex()), std::string::npos) << epochs.out;
    EXPECT_NE(epochs.out.find("suspect"), std::string::npos) << epochs.out;
    EXPECT_NE(ferryctlMaster({"nodes"}).out.find("SUSPECT"), std::string::npos);
    EXPECT_TRUE(waitUntil([&] { return collectorLog().find("is suspect") != std::string::npos; })) << collectorLog();

    // The operator keeps the original: its records flow, none twice.
    ASSERT_EQ(ferryctlMaster({"resolve", "test-node", "--keep", a.shortHex()}).exitCode, 0);
    const auto after = run({ctl, "push"}, onOriginal);
    ASSERT_EQ(after.exitCode, 0) << after.out << after.err << collectorLog();
    EXPECT_NE(after.out.find("(3 already stored)"), std::string::npos) << after.out;
    EXPECT_EQ(queued(), 0u);
    {
        ferry::Spool spool(cloneSpool, {});
        spool.append("test", "clone after the decision", ferry::nowMs());
    }
    EXPECT_NE(run({ctl, "push"}, onClone).exitCode, 0) << "the clone's epoch is retired: held";
    EXPECT_EQ(ferry::Spool(cloneSpool, {}).stats().records, 1u);
    // The clone's spool moved to another machine (two machine ids of the
    // test's own, so that the move is seen with or without /etc/machine-id):
    // its next record gets a later epoch, queued behind the held one, and
    // the node says that it waits there too.
    const std::string firstId = *m_root / "first-machine-id";
    const std::string movedId = *m_root / "moved-machine-id";
    writeFile(firstId, "00112233445566778899aabbccddeeff\n");
    writeFile(movedId, "0123456789abcdef0123456789abcdef\n");
    {
        ferry::Spool first(cloneSpool, {}, firstId);
    }
    {
        ferry::Spool spool(cloneSpool, {}, movedId);
        EXPECT_NE(spool.epoch(), b);
        spool.append("test", "clone after a move", ferry::nowMs());
    }
    const auto behind = run({ctl, "push"}, onClone);
    EXPECT_NE(behind.exitCode, 0);
    EXPECT_NE(behind.err.find("the records of a later epoch are queued behind it and stay here too"), std::string::npos)
        << behind.out << behind.err;
    EXPECT_EQ(ferry::Spool(cloneSpool, {}).stats().records, 2u);

    ferry::MasterStore store(m_masterState + "/master.db");
    const auto ofA = store.records("test-node", a, 0, 100);
    const auto ofB = store.records("test-node", b, 0, 100);
    ASSERT_EQ(ofA.size(), 10u);
    ASSERT_EQ(ofB.size(), 4u);
    for (std::size_t i = 0; i < ofA.size(); ++i)
        EXPECT_EQ(ofA[i].seq, i + 1);
    for (std::size_t i = 0; i < ofB.size(); ++i) {
        EXPECT_EQ(ofB[i].seq, i + 9);
        EXPECT_EQ(ofB[i].payload, "clone " + std::to_string(i));
    }
    EXPECT_EQ(ofA[8].payload, std::string(100, 'a')) << "the original's sequence 9 is its own record";
    EXPECT_EQ(store.countRecords("test-node"), 14u);
    stopPushd();
}

TEST_F(ANodesLife, MovesACorruptSpoolAsideReportsItAndStartsANewEpoch)
{
    spoolRecords(3);
    ASSERT_EQ(ferryctl({"push"}).exitCode, 0) << collectorLog();
    const auto before = epoch();
    stopPushd();
    for (const char* suffix : {"-wal", "-shm"})
        std::filesystem::remove(spoolPath() + suffix);
    writeFile(spoolPath(), std::string(16384, '\x5a'), 0600);

    ASSERT_EQ(sample().exitCode, 0);  // the sampler is the first to open it
    bool aside = false;
    for (const auto& e : std::filesystem::directory_iterator(m_nodeState))
        aside |= e.path().filename().string().rfind("spool.db.corrupt-", 0) == 0;
    EXPECT_TRUE(aside);
    const auto after = epoch();
    EXPECT_NE(after, before);
    const auto sampled = queued();
    ASSERT_GT(sampled, 0u);

    const auto r = ferryctl({"push"});
    ASSERT_EQ(r.exitCode, 0) << r.err << collectorLog();
    ferry::MasterStore store(m_masterState + "/master.db");
    EXPECT_EQ(store.countRecords("test-node", after), sampled);
    const auto report = store.report("test-node");
    ASSERT_TRUE(report.has_value());
    EXPECT_EQ(report->spoolResets, 1u);
    EXPECT_NE(report->lastReset.find("moved aside"), std::string::npos) << report->lastReset;
    const auto status = ferryctl({"status"});
    EXPECT_NE(status.out.find("1 unusable spool(s) moved aside"), std::string::npos) << status.out;
}

TEST_F(ANodesLife, StoresEveryRecordOnceWhenTheCollectorIsKilledBetweenCommitAndAck)
{
    writeNodeConfig({m_sshd->port()}, "  batch_records: 20\n");
    m_collector.reset();
    startCollector({{"FERRY_FAILPOINT", "collector-after-commit"}});
    spoolRecords(100);
    const auto failed = ferryctl({"push"});
    EXPECT_NE(failed.exitCode, 0) << failed.out;
    ASSERT_TRUE(waitUntil([&] { return !m_collector->running(); })) << "the failpoint did not fire";
    EXPECT_EQ(storedAtMaster(), 20u) << "the first batch was committed";
    EXPECT_EQ(queued(), 100u) << "and never acknowledged";

    m_collector.reset();
    startCollector();
    const auto r = ferryctl({"push"});
    ASSERT_EQ(r.exitCode, 0) << r.err << collectorLog();
    EXPECT_NE(r.out.find("(20 already stored)"), std::string::npos) << r.out;
    EXPECT_EQ(storedAtMaster(), 100u);
    EXPECT_EQ(queued(), 0u);
    ferry::MasterStore store(m_masterState + "/master.db");
    const auto all = store.records("test-node", epoch(), 0, 1000);
    ASSERT_EQ(all.size(), 100u);
    for (std::size_t i = 0; i < all.size(); ++i)
        ASSERT_EQ(all[i].seq, i + 1);
}

} // namespace
} // namespace ferry::test
