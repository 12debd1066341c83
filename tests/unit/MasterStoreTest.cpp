// master.db's one owner: creation, the migration of files made by the
// release before epochs (their exact statements are copied below as
// fixtures), and the epochs of a node (reinstall, clone, the operator's
// decision), driven through real push sessions over a socketpair.

#include <sys/socket.h>

#include <thread>

#include <map>

#include <gtest/gtest.h>

#include "CollectorSession.h"
#include "PushCycle.h"
#include "ferry/Bus.h"
#include "ferry/Crypto.h"
#include "ferry/Error.h"
#include "ferry/MasterQueries.h"
#include "ferry/MasterSchema.h"
#include "ferry/MasterStore.h"
#include "ferry/RegistryStore.h"
#include "support/TestSupport.h"

namespace ferry {
namespace {

// ---- The release before epochs (1205f77), statement for statement ----

// common/src/MasterStore.cpp (collectord, pulld, registryd, ferryctl)
constexpr const char* kReleaseMasterStore =
    "CREATE TABLE IF NOT EXISTS nodes ("
    " name TEXT PRIMARY KEY, secret TEXT NOT NULL, state TEXT NOT NULL DEFAULT 'accepted',"
    " mode TEXT NOT NULL DEFAULT 'push', public_key TEXT NOT NULL DEFAULT '',"
    " ssh_host TEXT NOT NULL DEFAULT '', ssh_port INTEGER NOT NULL DEFAULT 22,"
    " first_seen INTEGER NOT NULL DEFAULT 0, last_seen INTEGER NOT NULL DEFAULT 0,"
    " last_push INTEGER NOT NULL DEFAULT 0, last_pull INTEGER NOT NULL DEFAULT 0,"
    " records_stored INTEGER NOT NULL DEFAULT 0, reason TEXT NOT NULL DEFAULT '');"
    "CREATE TABLE IF NOT EXISTS records ("
    " node TEXT NOT NULL, seq INTEGER NOT NULL, time_ms INTEGER NOT NULL, kind TEXT NOT NULL,"
    " payload BLOB NOT NULL, received_ms INTEGER NOT NULL, via TEXT NOT NULL,"
    " PRIMARY KEY (node, seq)) WITHOUT ROWID;";
// common/src/RegistryStore.cpp (registryd, ferryctl)
constexpr const char* kReleaseRegistry =
    "ALTER TABLE nodes ADD COLUMN pending_request BLOB;"
    "ALTER TABLE nodes ADD COLUMN pending_mac BLOB;"
    "CREATE TABLE IF NOT EXISTS registry_nonces ("
    " node TEXT NOT NULL, nonce BLOB NOT NULL, time_ms INTEGER NOT NULL,"
    " PRIMARY KEY (node, nonce)) WITHOUT ROWID;"
    "CREATE INDEX IF NOT EXISTS nodes_public_key ON nodes(public_key);";
// services/pulld/PullState.cpp (pulld)
constexpr const char* kReleasePullState =
    "CREATE TABLE IF NOT EXISTS pull_state ("
    " node TEXT PRIMARY KEY, cursor INTEGER NOT NULL DEFAULT 0,"
    " last_attempt INTEGER NOT NULL DEFAULT 0, last_success INTEGER NOT NULL DEFAULT 0,"
    " last_result TEXT NOT NULL DEFAULT '', last_records INTEGER NOT NULL DEFAULT 0,"
    " total_records INTEGER NOT NULL DEFAULT 0)";

int userVersion(const std::string& path)
{
    Database db(path);
    Statement s(db, "PRAGMA user_version");
    return s.step() ? static_cast<int>(s.int64(0)) : -1;
}

class AMasterStore : public ::testing::Test {
protected:
    test::TempDir dir;
    std::string path = dir / "master.db";
    Epoch legacy;  // all zero
};

std::map<std::string, std::int64_t> byName(const std::vector<CounterValue>& values)
{
    std::map<std::string, std::int64_t> out;
    for (const auto& c : values)
        out[c.name + "{" + c.labels + "}"] = c.value;
    return out;
}

// master_counters has one upsert (MasterQueries::addCounters): the session
// store, the registry and a plain SqlConnection add to the same rows, and
// the upsert joins the caller's transaction instead of opening its own.
TEST_F(AMasterStore, AddsCountersThroughTheOneUpsertEveryStoreShares)
{
    const std::string ok = counterLabels({{"outcome", "ok"}});
    {
        MasterStore store(path);
        store.addCounters({{"registrations", ok, 2}, {"epochs_suspect", "", 1}});
        RegistryStore registry(path);
        registry.addCounters({{"registrations", ok, 3}});
        SqliteConnection sql(path);
        MasterQueries(sql).addCounters({{"registrations", ok, 5}, {"sessions", "", 1}});
        {
            SqlTransaction tx(sql);
            MasterQueries(sql).addCounters({{"sessions", "", 100}});
            // No commit: the counters roll back with the caller's work.
        }
        EXPECT_EQ(byName(MasterQueries(sql).counters()), byName(store.counters()));
    }
    const auto counts = byName(MasterStore(path).counters());
    EXPECT_EQ(counts.at("registrations{outcome=\"ok\"}"), 10);
    EXPECT_EQ(counts.at("epochs_suspect{}"), 1);
    EXPECT_EQ(counts.at("sessions{}"), 1) << "the rolled-back delta stayed out";
    EXPECT_EQ(counts.size(), 3u);
}

TEST_F(AMasterStore, CreatesTheCurrentSchemaInANewFile)
{
    MasterStore store(path);
    EXPECT_EQ(userVersion(path), schema::kMasterSchemaVersion);
    Database db(path);
    for (const char* table : {"nodes", "records", "node_epochs", "node_reports", "pull_state", "pull_cursors",
                              "registry_nonces"}) {
        Statement s(db, "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = ?1");
        s.bind(1, table);
        EXPECT_TRUE(s.step()) << table;
    }
}

TEST_F(AMasterStore, MigratesACollectorOnlyReleaseFileToTheLegacyEpoch)
{
    {
        Database db(path);
        db.exec(kReleaseMasterStore);
        db.exec("INSERT INTO nodes (name, secret, records_stored) VALUES ('web1', 'aa', 3);"
                "INSERT INTO records VALUES ('web1', 1, 10, 'k', 'a', 100, 'push'),"
                " ('web1', 2, 20, 'k', 'b', 200, 'push'), ('web1', 3, 30, 'k', 'c', 300, 'pull');");
    }
    MasterStore store(path);
    EXPECT_EQ(userVersion(path), schema::kMasterSchemaVersion);
    EXPECT_EQ(store.countRecords("web1", legacy), 3u);
    EXPECT_EQ(store.records("web1", legacy, 0, 10).at(2).payload, "c");
    // A node on a migrated (legacy) spool resends record 3 after a lost Ack:
    // it collides with itself instead of being stored twice.
    const auto ack = store.storeBatch("web1", legacy, {{3, 30, "k", "c"}, {4, 40, "k", "d"}}, "push");
    EXPECT_EQ(ack.duplicates, 1u);
    EXPECT_EQ(ack.newlyStored, 1u);
    const auto epochs = store.epochs("web1");
    ASSERT_EQ(epochs.size(), 1u);
    EXPECT_EQ(epochs[0].epoch, schema::kLegacyEpochHex);
    EXPECT_EQ(epochs[0].state, "active");
    EXPECT_EQ(epochs[0].lastSeq, 4u);
    // Version 4: the release's records were stored in sequence order, so
    // their store order is their seq, and the next record follows them.
    Statement order(store.database(), "SELECT seq, stored_order FROM records WHERE node = 'web1' ORDER BY seq");
    for (std::int64_t seq = 1; seq <= 4; ++seq) {
        ASSERT_TRUE(order.step());
        EXPECT_EQ(order.int64(0), seq);
        EXPECT_EQ(order.int64(1), seq);
    }
}

TEST_F(AMasterStore, MigratesAFullReleaseFileWithRegistryAndPullState)
{
    {
        Database db(path);
        db.exec(kReleaseMasterStore);
        db.exec(kReleaseRegistry);
        db.exec(kReleasePullState);
        db.exec("INSERT INTO nodes (name, secret, state, public_key, pending_request) VALUES"
                " ('web1', 'aa', 'accepted', 'ssh-ed25519 AAAA', x'01');"
                "INSERT INTO registry_nonces VALUES ('web1', x'0102', 5);"
                "INSERT INTO records VALUES ('web1', 7, 10, 'k', 'a', 100, 'pull');"
                "INSERT INTO pull_state VALUES ('web1', 7, 1000, 1000, 'success: pulled', 1, 7);");
    }
    MasterStore store(path);
    EXPECT_EQ(store.pullCursor("web1", legacy), 7u) << "the release's cursor belongs to the legacy epoch";
    EXPECT_EQ(store.pullCursor("web1", Epoch::random()), 0u) << "a new spool starts from its beginning";
    Database db(path);
    Statement ps(db, "SELECT last_result, total_records FROM pull_state WHERE node = 'web1'");
    ASSERT_TRUE(ps.step());
    EXPECT_EQ(ps.text(0), "success: pulled");
    EXPECT_EQ(ps.int64(1), 7);
    Statement n(db, "SELECT COUNT(*) FROM registry_nonces");
    ASSERT_TRUE(n.step());
    EXPECT_EQ(n.int64(0), 1);
    EXPECT_TRUE(RegistryStore(path).node("web1").has_value()) << "registration still reads the migrated file";
    // Version 7: the key moved to node-keys.db; master.db's column is blank.
    EXPECT_EQ(store.nodeSecret("web1"), "aa");
    Statement blank(db, "SELECT secret FROM nodes WHERE name = 'web1'");
    ASSERT_TRUE(blank.step());
    EXPECT_EQ(blank.text(0), "");
}

TEST_F(AMasterStore, MigratesAReleaseFileThatRegistrationNeverTouched)
{
    {
        Database db(path);
        db.exec(kReleaseMasterStore);
        db.exec("INSERT INTO nodes (name, secret) VALUES ('web1', 'aa')");
    }
    RegistryStore registry(path);
    Database db(path);
    Statement s(db, "SELECT pending_request, pending_mac FROM nodes WHERE name = 'web1'");
    EXPECT_TRUE(s.step()) << "the registry's columns were added by the migration";
}

TEST_F(AMasterStore, MovesAVersion7FilesCertificatesIntoARowidTable)
{
    // A version 7 file: node_certificates WITHOUT ROWID, one certificate row
    // as large as one an RSA CA signs (1.6 KB), which spilled to an overflow
    // page of its own.
    {
        MasterStore fresh(path);
    }
    const std::string certificate = "ssh-ed25519-cert-v01@openssh.com " + std::string(1500, 'A') + " node-a";
    {
        Database db(path);
        db.exec("DROP TABLE node_certificates;"
                "CREATE TABLE node_certificates (node TEXT PRIMARY KEY, serial INTEGER NOT NULL UNIQUE,"
                " public_key TEXT NOT NULL, certificate TEXT NOT NULL, valid_to_ms INTEGER NOT NULL) WITHOUT ROWID;"
                "INSERT INTO node_certificates VALUES ('node-a', 7, 'ssh-ed25519 AAAA', '" +
                certificate +
                "', 1234);"
                "PRAGMA user_version = 7;");
    }
    RegistryStore registry(path);
    EXPECT_EQ(userVersion(path), 8);
    const auto kept = registry.certificate("node-a");
    ASSERT_TRUE(kept.has_value());
    EXPECT_EQ(kept->serial, 7u);
    EXPECT_EQ(kept->line, certificate);
    EXPECT_EQ(kept->validToMs, 1234);
    Database db(path);
    Statement t(db, "SELECT sql FROM sqlite_master WHERE type = 'table' AND name = 'node_certificates'");
    ASSERT_TRUE(t.step());
    EXPECT_EQ(t.text(0).find("WITHOUT ROWID"), std::string::npos) << t.text(0);
    // The serial stays unique across nodes (the UNIQUE of the column).
    EXPECT_THROW(db.exec("INSERT INTO node_certificates VALUES ('node-b', 7, 'k', 'c', 1)"), SqliteError);
}

TEST_F(AMasterStore, RefusesAFileNewerThanItKnows)
{
    {
        MasterStore store(path);
        store.database().exec("PRAGMA user_version = 99");
    }
    EXPECT_THROW(MasterStore{path}, Error);
}

std::vector<Record> recordsFrom(std::uint64_t first, std::uint64_t count)
{
    std::vector<Record> out;
    for (std::uint64_t seq = first; seq < first + count; ++seq)
        out.push_back({seq, 1700000000000 + static_cast<std::int64_t>(seq), "k", "v" + std::to_string(seq)});
    return out;
}

std::int64_t counterValue(MasterStore& store, const std::string& name, const std::string& labels)
{
    for (const auto& c : store.counters())
        if (c.name == name && c.labels == labels)
            return c.value;
    return 0;
}

// Group commit (issue 16): several batches in one transaction, each
// answered as storeBatch would answer it alone.
// collectord's sessions counter after the last Ack: kept in memory, written
// with the next write transaction (a batch's, an admission's), by
// flushPending, or at the close; a transaction that rolls back keeps it.
// Before, each was a write transaction of its own.
TEST_F(AMasterStore, WritesCountersAddedLaterWithItsNextWriteTransactionOrAtItsClose)
{
    const std::string ok = counterLabels({{"transport", "push"}, {"outcome", "ok"}});
    const Epoch epoch = Epoch::random();
    auto written = [&] {
        SqliteConnection sql(path);
        return byName(MasterQueries(sql).counters())["sessions{" + ok + "}"];
    };
    {
        MasterStore store(path);
        store.addNode("web1", generateSecret());
        store.addCountersLater({{"sessions", ok, 1}});
        store.addCountersLater({{"sessions", ok, 1}});
        EXPECT_EQ(written(), 0) << "kept, not written";
        // A batch whose transaction cannot begin (another connection holds
        // the write lock past the busy timeout) keeps them.
        store.database().exec("PRAGMA busy_timeout = 0");
        {
            Database other(path);
            other.exec("BEGIN IMMEDIATE");
            EXPECT_THROW(store.storeBatch("web1", epoch, recordsFrom(1, 3), "push"), Error);
            other.exec("ROLLBACK");
        }
        EXPECT_EQ(written(), 0);
        store.storeBatch("web1", epoch, recordsFrom(1, 3), "push");
        EXPECT_EQ(written(), 2) << "written with the batch, after the rollback kept them";
        store.addCountersLater({{"sessions", ok, 1}});
        store.flushPending();
        EXPECT_EQ(written(), 3);
        store.addCountersLater({{"sessions", ok, 4}});
    }
    EXPECT_EQ(written(), 7) << "written at the close";
}

// With keepSessionNotes (collectord's shared connection), an admission that
// changes no state writes nothing; its notes (the epoch's last_seen and
// address, the on-time push under a floor) are read back by the same
// connection at once and written with the session's batch.
TEST_F(AMasterStore, KeepsTheNotesOfAnAdmissionThatChangesNothingForTheBatchsTransaction)
{
    MasterStore store(path);
    store.addNode("web1", generateSecret());
    store.keepSessionNotes();
    const Epoch epoch = Epoch::random();
    SessionStart start;
    start.node = "web1";
    start.epoch = epoch;
    start.address = "192.0.2.1:22";
    start.pacing = true;
    start.defaultMinPushPeriodS = 240;
    start.nowMs = 1'000'000;
    // The first session of an epoch changes its state: written at once.
    const auto first = store.admitSession(start);
    EXPECT_FALSE(first.pacing.early);
    auto fromFile = [&] {
        MasterStore other(path);
        return std::make_pair(other.pushPacing("web1").lastPacedPushMs, other.epochs("web1").at(0).fromAddress);
    };
    EXPECT_EQ(fromFile(), std::make_pair(std::int64_t{1'000'000}, std::string("192.0.2.1:22")));
    // Later ones change nothing: kept.
    start.address = "192.0.2.2:22";
    start.nowMs += 300'000;
    EXPECT_FALSE(store.admitSession(start).pacing.early);
    EXPECT_EQ(fromFile(), std::make_pair(std::int64_t{1'000'000}, std::string("192.0.2.1:22"))) << "nothing written";
    // The same connection judges the next push by the kept note: early.
    start.nowMs += 1'000;
    const auto early = store.admitSession(start);
    EXPECT_TRUE(early.pacing.early);
    EXPECT_EQ(early.pacing.comeBackAtMs, 1'300'000 + 240'000);
    store.storeBatch("web1", epoch, recordsFrom(1, 2), "push");
    EXPECT_EQ(fromFile(), std::make_pair(std::int64_t{1'300'000}, std::string("192.0.2.2:22")))
        << "written with the batch";
}

TEST_F(AMasterStore, StoresAGroupOfBatchesInOneTransactionWithAnAckPerBatch)
{
    MasterStore store(path);
    store.addNode("web1", generateSecret());
    const Epoch epoch = Epoch::random();
    EXPECT_EQ(store.storeBatch("web1", epoch, recordsFrom(11, 5), "pull").newlyStored, 5u);
    const auto head = recordsFrom(91, 10);
    const auto first = recordsFrom(1, 15); // 11–15 are stored already
    const auto second = recordsFrom(16, 20);
    const auto acks = store.storeBatches(
        "web1", epoch, {{&head, BatchLane::Head}, {&first, BatchLane::Backlog}, {&second, BatchLane::Backlog}}, "pull");
    ASSERT_EQ(acks.size(), 3u);
    EXPECT_EQ(acks[0].newlyStored, 10u);
    EXPECT_EQ(acks[0].storedUpTo, 100u);
    EXPECT_EQ(acks[1].newlyStored, 10u);
    EXPECT_EQ(acks[1].duplicates, 5u);
    EXPECT_EQ(acks[1].storedUpTo, 15u);
    EXPECT_EQ(acks[2].newlyStored, 20u);
    EXPECT_EQ(acks[2].duplicates, 0u);
    EXPECT_EQ(acks[2].storedUpTo, 35u);
    EXPECT_EQ(store.countRecords("web1", epoch), 45u);
    EXPECT_EQ(store.pullCursor("web1", epoch), 35u) << "the last backlog batch of the group moves the cursor";
    EXPECT_EQ(store.node("web1")->recordsStored, 45u);
    EXPECT_EQ(counterValue(store, "records_stored", "via=\"pull\""), 45);
    EXPECT_EQ(counterValue(store, "duplicates_refused", "via=\"pull\""), 5);
    // Store orders follow the order of storing within the group: the head
    // lane's records first, then the backlog's.
    Database db(path);
    Statement order(db, "SELECT seq FROM records WHERE epoch = ?1 ORDER BY stored_order");
    order.bind(1, epoch.hex());
    std::vector<std::uint64_t> seqs;
    while (order.step())
        seqs.push_back(static_cast<std::uint64_t>(order.int64(0)));
    ASSERT_EQ(seqs.size(), 45u);
    EXPECT_EQ(seqs[5], 91u);
    EXPECT_EQ(seqs[15], 1u);
    EXPECT_EQ(seqs[44], 35u);
}

// storeBatches writes MasterStore::kRowsPerInsert records per INSERT and
// the rest of a batch one by one: the counts, the rows and the store order
// are those of one statement per record.
TEST_F(AMasterStore, StoresABatchInMultiRowInsertsWithTheCountsOfOneRowAtATime)
{
    const std::size_t chunk = MasterStore::kRowsPerInsert;
    MasterStore store(path);
    store.addNode("web1", generateSecret());
    const Epoch epoch = Epoch::random();
    // Three chunks and 8 records alone.
    const auto first = recordsFrom(1, 3 * chunk + 8);
    const auto ack = store.storeBatch("web1", epoch, first, "push");
    EXPECT_EQ(ack.newlyStored, 3 * chunk + 8);
    EXPECT_EQ(ack.duplicates, 0u);
    EXPECT_EQ(ack.storedUpTo, 3 * chunk + 8);
    // Again, overlapping: duplicates inside chunks and new rows after them.
    const auto again = recordsFrom(chunk / 2, 3 * chunk);
    const auto ack2 = store.storeBatch("web1", epoch, again, "push");
    const std::uint64_t old = 3 * chunk + 8 - chunk / 2 + 1;
    EXPECT_EQ(ack2.duplicates, old);
    EXPECT_EQ(ack2.newlyStored, 3 * chunk - old);
    EXPECT_EQ(store.countRecords("web1", epoch), chunk / 2 - 1 + 3 * chunk);
    EXPECT_EQ(store.node("web1")->recordsStored, chunk / 2 - 1 + 3 * chunk);
    const auto rows = store.records("web1", epoch, 0, 10 * chunk);
    ASSERT_EQ(rows.size(), chunk / 2 - 1 + 3 * chunk);
    for (std::size_t i = 0; i < rows.size(); ++i) {
        EXPECT_EQ(rows[i].seq, i + 1);
        EXPECT_EQ(rows[i].payload, "v" + std::to_string(i + 1));
        EXPECT_EQ(rows[i].timeMs, 1700000000000 + static_cast<std::int64_t>(i + 1));
    }
    // The store order grows with the order of storing.
    Database db(path);
    Statement order(db, "SELECT seq FROM records WHERE epoch = ?1 ORDER BY stored_order");
    order.bind(1, epoch.hex());
    std::uint64_t expected = 1;
    while (order.step())
        EXPECT_EQ(static_cast<std::uint64_t>(order.int64(0)), expected++);
    EXPECT_EQ(expected, rows.size() + 1);
}

TEST_F(AMasterStore, StoresNothingOfAGroupWhoseTransactionFails)
{
    MasterStore store(path);
    store.addNode("web1", generateSecret());
    const Epoch epoch = Epoch::random();
    const auto good = recordsFrom(1, 10);
    const auto next = recordsFrom(11, 10);
    // Another connection holds the write lock past the busy timeout's
    // reach: the group's transaction cannot begin, and no batch of it is
    // stored (none of them would be acked).
    store.database().exec("PRAGMA busy_timeout = 0");
    Database other(path);
    other.exec("BEGIN IMMEDIATE");
    EXPECT_THROW(store.storeBatches("web1", epoch, {{&good, BatchLane::Backlog}, {&next, BatchLane::Backlog}}, "push"),
                 Error);
    other.exec("ROLLBACK");
    EXPECT_EQ(store.countRecords("web1", epoch), 0u);
    EXPECT_EQ(store.storeBatches("web1", epoch, {{&good, BatchLane::Backlog}, {&next, BatchLane::Backlog}}, "push")
                  .back()
                  .newlyStored,
              10u);
    EXPECT_EQ(store.countRecords("web1", epoch), 20u);
}

// Issue 12, item 9: a key proven with one secret must not survive the
// operator enrolling the node again with another.
TEST_F(AMasterStore, DropsTheOldKeyWhenANodeIsEnrolledWithANewSecret)
{
    RegistryStore registry(path);
    const std::string first = generateSecret();
    registry.addNode("web1", first);
    registry.recordKey("web1", "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOld", "push", "192.0.2.1", 22, nowMs());
    registry.addNode("web1", first);
    EXPECT_EQ(registry.node("web1")->publicKey, "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOld") << "same secret, same key";
    registry.addNode("web1", generateSecret());
    EXPECT_EQ(registry.node("web1")->publicKey, "") << "a new secret is a new install";

    MasterStore store(path);
    registry.recordKey("web1", "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAINew", "push", "192.0.2.1", 22, nowMs());
    store.addNode("web1", generateSecret());
    EXPECT_EQ(store.node("web1")->publicKey, "");
}

// ---- Epochs through real sessions ----

class ANodesEpochs : public ::testing::Test {
protected:
    void SetUp() override
    {
        secret = generateSecret();
        MasterStore(dir / "master.db").addNode("web1", secret);
    }

    // One push session from the spool at spoolPath.
    pushd::PushCycleResult push(const std::string& spoolPath)
    {
        int sv[2];
        EXPECT_EQ(::socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
        FdStream n(sv[0], sv[0], "collector", true);
        FdStream m(sv[1], sv[1], "node", true);
        std::thread server([&] {
            MasterStore store(dir / "master.db");
            collectord::serveSession(m, store, {});
        });
        Spool spool(spoolPath, {});
        pushd::PushCycleOptions o;
        o.nodeName = "web1";
        o.secret = secret;
        o.ioTimeout = std::chrono::seconds(5);
        auto r = pushd::runPushCycle(n, spool, o);
        server.join();
        return r;
    }

    void spoolRecords(const std::string& spoolPath, int count)
    {
        Spool spool(spoolPath, {});
        for (int i = 0; i < count; ++i)
            spool.append("k", "v" + std::to_string(i), nowMs());
    }

    test::TempDir dir;
    std::string secret;
};

TEST_F(ANodesEpochs, StoresAReinstalledNodesNewRecordsFromSequenceOne)
{
    spoolRecords(dir / "a.db", 5);
    EXPECT_EQ(push(dir / "a.db").recordsNew, 5u);
    // Reinstall: a new spool, sequences 1–5 again.
    spoolRecords(dir / "b.db", 5);
    const auto r = push(dir / "b.db");
    EXPECT_EQ(r.recordsNew, 5u);
    EXPECT_EQ(r.duplicates, 0u);
    MasterStore store(dir / "master.db");
    EXPECT_EQ(store.countRecords("web1"), 10u);
    const auto epochs = store.epochs("web1");
    ASSERT_EQ(epochs.size(), 2u);
    EXPECT_EQ(epochs[0].state, "retired");
    EXPECT_EQ(epochs[1].state, "active");
    EXPECT_EQ(epochs[1].epoch, Spool(dir / "b.db", {}).epoch().hex());
    const auto node = store.node("web1");
    EXPECT_EQ(node->epochs, 2u);
    EXPECT_FALSE(node->suspect);
}

TEST_F(ANodesEpochs, FlagsAClonedNodeAsSuspectAndHoldsItsDataUntilResolved)
{
    spoolRecords(dir / "a.db", 3);
    EXPECT_EQ(push(dir / "a.db").recordsNew, 3u);
    spoolRecords(dir / "b.db", 4);
    EXPECT_EQ(push(dir / "b.db").recordsNew, 4u);
    // A speaks again while B is alive: two spools for one identity.
    spoolRecords(dir / "a.db", 2);
    const auto held = push(dir / "a.db");
    EXPECT_TRUE(held.held);
    EXPECT_EQ(held.recordsSent, 0u);
    EXPECT_EQ(Spool(dir / "a.db", {}).stats().records, 2u) << "held data stays on the node";
    spoolRecords(dir / "b.db", 1);
    EXPECT_TRUE(push(dir / "b.db").held) << "both live epochs are held: only the operator knows which is right";
    EXPECT_EQ(Spool(dir / "b.db", {}).stats().records, 1u);
    {
        MasterStore store(dir / "master.db");
        EXPECT_TRUE(store.node("web1")->suspect);
        for (const auto& e : store.epochs("web1"))
            EXPECT_EQ(e.state, "suspect");
        EXPECT_EQ(store.countRecords("web1"), 7u) << "nothing mixed in";
        store.resolveEpochs("web1", Spool(dir / "b.db", {}).epoch().shortHex());
    }
    EXPECT_EQ(push(dir / "b.db").recordsNew, 1u) << "the kept epoch flows again";
    EXPECT_TRUE(push(dir / "a.db").held) << "the other stays held, its records on its machine";
    MasterStore store(dir / "master.db");
    EXPECT_EQ(store.countRecords("web1"), 8u);
    EXPECT_FALSE(store.node("web1")->suspect);
    EXPECT_THROW(store.resolveEpochs("web1", "ffffffff"), Error);
    // The master's counters saw each decision, and a reopened store (a
    // restarted daemon) still has them.
    std::map<std::string, std::int64_t> counts;
    for (const auto& c : store.counters())
        counts[c.name + "{" + c.labels + "}"] = c.value;
    EXPECT_EQ(counts["epochs_new{kind=\"first\"}"], 1);
    EXPECT_EQ(counts["epochs_new{kind=\"reinstall\"}"], 1);
    EXPECT_EQ(counts["epochs_suspect{}"], 2) << "the retired epoch that came back and the live one";
    EXPECT_EQ(counts["records_stored{via=\"push\"}"], 8);
}

TEST_F(ANodesEpochs, ReportsASpoolResetToTheMasterOnce)
{
    test::writeFile(dir / "c.db", "not a database at all, just text", 0600);
    spoolRecords(dir / "c.db", 2);
    push(dir / "c.db");
    MasterStore store(dir / "master.db");
    const auto r = store.report("web1");
    ASSERT_TRUE(r.has_value());
    EXPECT_EQ(r->spoolResets, 1u);
    EXPECT_NE(r->lastReset.find("moved aside"), std::string::npos) << r->lastReset;
    EXPECT_TRUE(Spool(dir / "c.db", {}).stats().lastResetReported);
    EXPECT_EQ(store.countRecords("web1"), 2u);
}

} // namespace
} // namespace ferry
