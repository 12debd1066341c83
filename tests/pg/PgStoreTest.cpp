// The master's store on a real PostgreSQL 15 cluster made by the test:
// several masters storing one batch store it once, a pull lease is held by
// one master at a time and dies with it, the schema is versioned, and a
// SQLite master.db moves over with every node and record.

#include <map>

#include <gtest/gtest.h>

#include <atomic>
#include <thread>

#include "ferry/Crypto.h"
#include "ferry/MasterQueries.h"
#include "ferry/MasterSchema.h"
#include "ferry/MasterStore.h"
#include "ferry/PgSqlConnection.h"
#include "ferry/PgStore.h"
#include "ferry/RegistryStore.h"
#include "support/PgCluster.h"
#include "support/TestSupport.h"

using namespace ferry;
using namespace ferry::test;

namespace {

std::vector<Record> batch(std::uint64_t first, std::uint64_t count)
{
    std::vector<Record> out;
    for (std::uint64_t s = first; s < first + count; ++s)
        out.push_back({s, 1700000000000 + static_cast<std::int64_t>(s), "load",
                       std::string("load1 0.5\0binary\xff", 17) + std::to_string(s)});
    return out;
}

class APostgresStore : public ::testing::Test {
protected:
    void SetUp() override
    {
        if (!PgCluster::available())
            GTEST_SKIP() << "needs root and postgresql-15 (scripts/install-deps installs it)";
        m_cluster = std::make_unique<PgCluster>();
        m_conninfo = m_cluster->conninfo();
    }
    std::unique_ptr<PgCluster> m_cluster;
    std::string m_conninfo;
    const Epoch m_epoch = Epoch::fromHex("0102030405060708090a0b0c0d0e0f00", "test epoch");
};

// The same upsert as on SQLite (MasterQueries::addCounters): the session
// store, the registry and a plain connection add to one row, and it joins
// the caller's transaction.
TEST_F(APostgresStore, AddsCountersThroughTheOneUpsertEveryStoreShares)
{
    const std::string ok = counterLabels({{"outcome", "ok"}});
    PgStore store(m_conninfo);
    store.addCounters({{"registrations", ok, 2}});
    RegistryStore registry(std::make_unique<PgSqlConnection>(m_conninfo));
    registry.addCounters({{"registrations", ok, 3}});
    PgSqlConnection sql(m_conninfo);
    MasterQueries(sql).addCounters({{"registrations", ok, 5}, {"sessions", "", 1}});
    {
        SqlTransaction tx(sql);
        MasterQueries(sql).addCounters({{"sessions", "", 100}});
    }
    std::map<std::string, std::int64_t> counts;
    for (const auto& c : store.counters())
        counts[c.name + "{" + c.labels + "}"] = c.value;
    EXPECT_EQ(counts["registrations{outcome=\"ok\"}"], 10);
    EXPECT_EQ(counts["sessions{}"], 1) << "the rolled-back delta stayed out";
}

// A session whose Report came after its Policy (Session.h, policy first)
// stores it apart from the admission; the newer report replaces the row.
TEST_F(APostgresStore, StoresAReportApartFromTheAdmission)
{
    PgStore store(m_conninfo);
    store.addNode("web1", generateSecret());
    EXPECT_FALSE(store.admitEpoch("web1", m_epoch, "192.0.2.10").held);
    HealthReport report;
    report.spoolRecords = 7;
    report.transportMode = "push";
    store.storeReport("web1", m_epoch, "push", "192.0.2.10", report);
    report.spoolRecords = 9;
    store.storeReport("web1", m_epoch, "push", "192.0.2.10", report);
    PgSqlConnection sql(m_conninfo);
    const auto stored = MasterQueries(sql).report("web1");
    ASSERT_TRUE(stored.has_value());
    EXPECT_EQ(stored->spoolRecords, 9u);
    EXPECT_EQ(stored->transportMode, "push");
}

TEST_F(APostgresStore, StoresABatchSentToTwoMastersOnce)
{
    PgStore masterA(m_conninfo);
    PgStore masterB(m_conninfo);
    masterA.addNode("web1", generateSecret());
    const auto first = masterA.storeBatch("web1", m_epoch, batch(1, 50), "push");
    const auto again = masterB.storeBatch("web1", m_epoch, batch(1, 50), "push");
    EXPECT_EQ(first.newlyStored, 50u);
    EXPECT_EQ(first.storedUpTo, 50u);
    EXPECT_EQ(again.newlyStored, 0u);
    EXPECT_EQ(again.duplicates, 50u);
    EXPECT_EQ(masterB.countRecords("web1"), 50u);
    // Another epoch of the same node is other records, not duplicates.
    const auto reinstalled = masterB.storeBatch("web1", Epoch(), batch(1, 50), "pull");
    EXPECT_EQ(reinstalled.newlyStored, 50u);
    EXPECT_EQ(masterA.countRecords("web1"), 100u);
    // The master's counters are shared by both masters, in the database.
    std::map<std::string, std::int64_t> counts;
    for (const auto& c : masterA.counters())
        counts[c.name + "{" + c.labels + "}"] = c.value;
    EXPECT_EQ(counts["records_stored{via=\"push\"}"], 50);
    EXPECT_EQ(counts["records_stored{via=\"pull\"}"], 50);
    EXPECT_EQ(counts["duplicates_refused{via=\"push\"}"], 50);
    // A head batch (newest first) stored before the backlog gets the lower
    // store orders: remote-write follows the order of storing.
    masterA.storeBatch("web1", m_epoch, batch(91, 10), "push", BatchLane::Head);
    masterA.storeBatch("web1", m_epoch, batch(51, 40), "push");
    PgConnection db(m_conninfo);
    const auto order = db.exec("SELECT seq FROM records WHERE node = 'web1' AND epoch = $1 ORDER BY stored_order",
                               {PgParam::text(m_epoch.hex())});
    ASSERT_EQ(order.rows(), 100);
    EXPECT_EQ(order.int64(50, 0), 91) << "the head came first after the first 50";
    EXPECT_EQ(order.int64(60, 0), 51);
}

TEST_F(APostgresStore, StoresEachRecordOnceWhenTwoMastersStoreOverlappingBatchesAtOnce)
{
    PgStore(m_conninfo).addNode("web1", generateSecret());
    std::atomic<std::uint64_t> newly{0}, duplicates{0};
    auto master = [&](std::uint64_t offset) {
        PgStore store(m_conninfo);
        for (std::uint64_t b = 0; b < 60; ++b) {
            // Batches of 50 overlapping by 25 with the other master's.
            const auto ack = store.storeBatch("web1", m_epoch, batch(1 + b * 25 + offset, 50), "push");
            newly += ack.newlyStored;
            duplicates += ack.duplicates;
        }
    };
    std::thread a(master, 0), b(master, 12);
    a.join();
    b.join();
    PgStore check(m_conninfo);
    const std::uint64_t expected = 12 + 59 * 25 + 50;  // seq 1 … 1487
    EXPECT_EQ(check.countRecords("web1"), expected);
    EXPECT_EQ(newly.load(), expected);
    EXPECT_EQ(newly.load() + duplicates.load(), 2u * 60 * 50);
}

TEST_F(APostgresStore, GivesAPullLeaseToOneMasterAtATimeAndFreesItWhenTheHolderDies)
{
    PgStore masterA(m_conninfo);
    PgStore masterB(m_conninfo);
    {
        auto lease = PgStore::tryPullLease(m_conninfo, "web1");
        ASSERT_NE(lease, nullptr);
        EXPECT_EQ(PgStore::tryPullLease(m_conninfo, "web1"), nullptr);
        EXPECT_NE(PgStore::tryPullLease(m_conninfo, "web2"), nullptr) << "a lease is per node";
    }
    auto leaseB = PgStore::tryPullLease(m_conninfo, "web1");
    ASSERT_NE(leaseB, nullptr) << "released when its holder finished";
    // The holder's backend dies (a master killed with SIGKILL drops its
    // connection the same way): the lease goes with it.
    masterA.connection().exec(
        "SELECT pg_terminate_backend(pid) FROM pg_locks WHERE locktype = 'advisory' AND pid <> pg_backend_pid()");
    EXPECT_TRUE(
        waitUntil([&] { return PgStore::tryPullLease(m_conninfo, "web1") != nullptr; }, std::chrono::seconds(10)));
}

TEST_F(APostgresStore, AppliesTheEpochRulesAcrossMasters)
{
    PgStore masterA(m_conninfo);
    PgStore masterB(m_conninfo);
    masterA.addNode("web1", generateSecret());
    const Epoch first = Epoch::random();
    const Epoch reinstalled = Epoch::random();
    EXPECT_FALSE(masterA.admitEpoch("web1", first, "192.0.2.10").held);
    // A reinstall seen by the other master: stored, the old epoch retired.
    const auto second = masterB.admitEpoch("web1", reinstalled, "192.0.2.10");
    EXPECT_FALSE(second.held);
    EXPECT_TRUE(second.newEpoch);
    EXPECT_EQ(second.previous, first.hex());
    // The retired epoch alive again (a clone), at the first master: both held.
    const auto clone = masterA.admitEpoch("web1", first, "192.0.2.11");
    EXPECT_TRUE(clone.held);
    EXPECT_TRUE(masterB.admitEpoch("web1", reinstalled, "192.0.2.10").held);
    for (const auto& e : masterB.epochs("web1"))
        EXPECT_EQ(e.state, "suspect") << e.epoch;
}

TEST_F(APostgresStore, StoresAGroupOfBatchesInOneTransactionWithAnAckPerBatch)
{
    PgStore store(m_conninfo);
    store.addNode("web1", generateSecret());
    EXPECT_EQ(store.storeBatch("web1", m_epoch, batch(11, 5), "pull").newlyStored, 5u);
    const auto head = batch(91, 10);
    const auto first = batch(1, 15); // 11–15 are stored already
    const auto second = batch(16, 20);
    const auto acks = store.storeBatches(
        "web1", m_epoch, {{&head, BatchLane::Head}, {&first, BatchLane::Backlog}, {&second, BatchLane::Backlog}},
        "pull");
    ASSERT_EQ(acks.size(), 3u);
    EXPECT_EQ(acks[0].newlyStored, 10u);
    EXPECT_EQ(acks[0].storedUpTo, 100u);
    EXPECT_EQ(acks[1].newlyStored, 10u);
    EXPECT_EQ(acks[1].duplicates, 5u);
    EXPECT_EQ(acks[1].storedUpTo, 15u);
    EXPECT_EQ(acks[2].newlyStored, 20u);
    EXPECT_EQ(acks[2].storedUpTo, 35u);
    EXPECT_EQ(store.countRecords("web1"), 45u);
    EXPECT_EQ(store.pullCursor("web1", m_epoch), 35u) << "the last backlog batch of the group moves the cursor";
    // Store orders: the head lane's records, then the backlog's, each order once.
    const auto orders =
        PgConnection(m_conninfo)
            .exec("SELECT seq FROM records WHERE node = 'web1' AND stored_order > 5 ORDER BY stored_order");
    ASSERT_EQ(orders.rows(), 40);
    EXPECT_EQ(orders.int64(0, 0), 91);
    EXPECT_EQ(orders.int64(10, 0), 1);
    EXPECT_EQ(orders.int64(39, 0), 35);
}

TEST_F(APostgresStore, KeepsAnAckedBatchAcrossAServerCrash)
{
    {
        PgStore store(m_conninfo);
        store.addNode("web1", generateSecret());
        EXPECT_EQ(store.storeBatch("web1", m_epoch, batch(1, 20), "push").newlyStored, 20u);
    }
    m_cluster->stop();  // -m immediate: no shutdown checkpoint
    m_cluster->start();
    PgStore after(m_conninfo);
    EXPECT_EQ(after.countRecords("web1"), 20u);
}

TEST_F(APostgresStore, RecordsItsSchemaVersionAndRefusesANewerOne)
{
    PgStore store(m_conninfo);
    EXPECT_EQ(store.schemaVersion(), PgStore::latestSchemaVersion());
    PgStore again(m_conninfo);  // a second master starting: nothing to do
    EXPECT_EQ(again.schemaVersion(), PgStore::latestSchemaVersion());
    store.connection().exec("UPDATE ferry_schema SET version = version + 1");
    try {
        PgStore newer(m_conninfo);
        FAIL() << "a schema newer than the code must be refused";
    } catch (const Error& e) {
        EXPECT_NE(std::string(e.what()).find("newer than this master knows"), std::string::npos) << e.what();
    }
}

TEST_F(APostgresStore, TakesOverASqliteMasterWithEveryNodeAndRecord)
{
    TempDir dir;
    const std::string db = dir / "master.db";
    {
        MasterStore sqlite(db);
        sqlite.addNode("web1", generateSecret());
        sqlite.addNode("web2", generateSecret());
        sqlite.storeBatch("web1", Epoch(), batch(1, 1500), "push");
        sqlite.admitEpoch("web2", Epoch::fromHex("00112233445566778899aabbccddeeff", "test"), "192.0.2.7");
        sqlite.storeBatch("web2", Epoch::fromHex("00112233445566778899aabbccddeeff", "test"), batch(1, 30), "pull");
        sqlite.setPullCursor("web2", Epoch::fromHex("00112233445566778899aabbccddeeff", "test"), 30);
    }
    {
        // What the registry and pulld keep beyond nodes and records.
        RegistryStore registry(db);
        registry.checkHostKeys("web1", {"ssh-ed25519 AAAAHostKeyOfWeb1"}, 1000);
        registry.setPolicy("web2", 240, std::nullopt);
        registry.storeCertificate("web1", {7, "ssh-ed25519 AAAANodeKey", "cert line", 99000}, 1000);
        registry.revokeCertificate("web1", 2000);
        registry.addPending("web3", "ssh-ed25519 AAAAPending", "pull", 2222, std::string("signed request\0", 15), "mac",
                            "192.0.2.9", 3000);
        MasterQueries(registry.connection()).recordPullFailure("web2", 4000, "timeout", "timed out");
    }
    PgStore store(m_conninfo);
    const auto result = migrateSqliteToPostgres(db, store);
    {
        RegistryStore moved(std::make_unique<PgSqlConnection>(store.connection()));
        EXPECT_EQ(moved.hostKeys("web1"), std::vector<std::string>{"ssh-ed25519 AAAAHostKeyOfWeb1"});
        EXPECT_EQ(moved.node("web2")->minPushPeriodS, 240u);
        ASSERT_EQ(moved.revokedCertificates().size(), 1u);
        EXPECT_EQ(moved.revokedCertificates()[0].first, 7u);
        EXPECT_EQ(moved.node("web3")->state, "pending");
        EXPECT_EQ(MasterQueries(moved.connection()).pullFailure("web2")->cause, "timeout");
        const auto pending = store.connection().exec("SELECT pending_request FROM nodes WHERE name = 'web3'");
        EXPECT_EQ(pending.text(0, 0), std::string("signed request\0", 15));
    }
    EXPECT_EQ(result.source.nodes, 3u);
    EXPECT_EQ(result.source.records, 1530u);
    EXPECT_EQ(result.copied.records, 1530u);
    EXPECT_EQ(result.target.nodes, 3u);
    EXPECT_EQ(result.target.records, 1530u);
    EXPECT_EQ(store.countRecords("web1"), 1500u);
    EXPECT_TRUE(store.nodeSecret("web2").has_value());
    const Epoch web2 = Epoch::fromHex("00112233445566778899aabbccddeeff", "test");
    EXPECT_EQ(store.countRecords("web2"), 30u);
    EXPECT_EQ(store.pullCursor("web2", web2), 30u) << "pull cursors move with the records";
    const auto epochs = store.epochs("web2");
    ASSERT_EQ(epochs.size(), 1u);
    EXPECT_EQ(epochs[0].state, "active");
    EXPECT_EQ(epochs[0].fromAddress, "192.0.2.7");
    // Byte-exact payloads, under the legacy epoch.
    const auto row = store.connection().exec(
        "SELECT payload FROM records WHERE node = 'web1' AND seq = 7 AND epoch = $1", {PgParam::text(kLegacyEpoch)}, true);
    ASSERT_EQ(row.rows(), 1);
    EXPECT_EQ(row.text(0, 0), batch(7, 1).front().payload);
    // Run again (an interrupted copy resumed): nothing doubles.
    const auto rerun = migrateSqliteToPostgres(db, store);
    EXPECT_EQ(rerun.copied.records, 0u);
    EXPECT_EQ(rerun.target.records, 1530u);
}

} // namespace

namespace {

TEST_F(APostgresStore, MovesAMasterOverWithFerryctlMasterMigrate)
{
    TempDir dir;
    {
        MasterStore sqlite(dir / "master.db");
        sqlite.addNode("web1", generateSecret());
        sqlite.storeBatch("web1", Epoch(), batch(1, 700), "push");
    }
    writeFile(dir / "store.yml", "postgresql: \"" + m_conninfo + "\"\n");
    const std::map<std::string, std::string> env{{"FERRY_STATE_DIR", dir.path()}, {"FERRY_CONFIG_DIR", dir.path()}};
    const auto first = run({buildPath("services/ferryctl/ferryctl"), "master", "migrate"}, env);
    EXPECT_EQ(first.exitCode, 0) << first.out << first.err;
    EXPECT_NE(first.out.find("Copied 1 of 1 nodes and 700 of 700 records"), std::string::npos) << first.out;
    const auto again = run({buildPath("services/ferryctl/ferryctl"), "master", "migrate"}, env);
    EXPECT_EQ(again.exitCode, 0) << again.out << again.err;
    EXPECT_NE(again.out.find("Copied 0 of 1 nodes and 0 of 700 records"), std::string::npos) << again.out;
    EXPECT_EQ(PgStore(m_conninfo).countRecords("web1"), 700u);
    // A password in store.yml is refused before anything is opened.
    writeFile(dir / "store.yml", "postgresql: \"" + m_conninfo + " password=hunter2\"\n");
    const auto refused = run({buildPath("services/ferryctl/ferryctl"), "master", "migrate"}, env);
    EXPECT_NE(refused.exitCode, 0);
    EXPECT_NE(refused.err.find("store.yml"), std::string::npos) << refused.err;
    EXPECT_EQ(refused.err.find("hunter2"), std::string::npos) << "the password must not be echoed: " << refused.err;
}

} // namespace

namespace {

// Issue 12, item 2 on PostgreSQL: node keys in node_keys, which the
// AuthorizedKeysCommand helper's role (docs/postgresql.md) cannot read,
// while its lookup works.
TEST_F(APostgresStore, KeepsNodeKeysInATableThatTheHelpersRoleCannotRead)
{
    const std::string secret = generateSecret();
    PgStore store(m_conninfo);
    store.addNode("web1", secret);
    {
        RegistryStore registry(std::make_unique<PgSqlConnection>(store.connection()));
        registry.recordKey("web1", "ssh-ed25519 AAAAKeyOfWeb1", "push", "192.0.2.7", 22, 1000);
    }
    EXPECT_EQ(store.nodeSecret("web1"), secret);
    EXPECT_EQ(store.connection().exec("SELECT count(*) FROM nodes WHERE secret <> ''").int64(0, 0), 0);
    // The grants of docs/postgresql.md, by the database's owner.
    store.connection().execScript(R"SQL(
CREATE ROLE "ferry-authkeys" LOGIN;
GRANT USAGE ON SCHEMA public TO "ferry-authkeys";
GRANT SELECT (name, state, public_key) ON nodes TO "ferry-authkeys";
)SQL");
    std::string helperConninfo = m_conninfo;
    helperConninfo.replace(helperConninfo.find("user=postgres"), 13, "user=ferry-authkeys");
    PgConnection helper(helperConninfo);
    std::string lookup = schema::kAuthorizedKeyQuery;
    lookup.replace(lookup.find("?1"), 2, "$1");
    const auto found = helper.exec(lookup, {PgParam::text("ssh-ed25519 AAAAKeyOfWeb1")});
    ASSERT_EQ(found.rows(), 1);
    EXPECT_EQ(found.text(0, 0), "ssh-ed25519 AAAAKeyOfWeb1");
    for (const char* attack : {"SELECT secret FROM node_keys", "SELECT secret FROM nodes", "SELECT * FROM nodes"}) {
        try {
            helper.exec(attack);
            ADD_FAILURE() << "the helper's role ran: " << attack;
        } catch (const Error& e) {
            EXPECT_NE(std::string(e.what()).find("permission denied"), std::string::npos) << attack << ": " << e.what();
        }
    }
}

TEST_F(APostgresStore, MovesTheKeysOfASchema4DatabaseIntoNodeKeysAndBlanksTheColumn)
{
    const std::string secret = generateSecret();
    {
        // A database as schema 4 left it: the key in nodes.secret.
        PgStore store(m_conninfo);
        store.addNode("web1", secret);
        store.connection().execScript(
            "UPDATE nodes SET secret = (SELECT k.secret FROM node_keys k WHERE k.node = nodes.name);"
            "DROP TABLE node_keys; UPDATE ferry_schema SET version = 4;");
    }
    PgStore migrated(m_conninfo);
    EXPECT_EQ(migrated.schemaVersion(), PgStore::latestSchemaVersion());
    EXPECT_EQ(migrated.nodeSecret("web1"), secret);
    EXPECT_EQ(migrated.connection().exec("SELECT count(*) FROM nodes WHERE secret <> ''").int64(0, 0), 0);
}

} // namespace
