// The pull protocol over a socket pair: the node side (PullServer, on a real
// spool) against the master side (PullClient, into a real MasterStore).
#include <sys/socket.h>
#include <unistd.h>

#include <filesystem>
#include <future>
#include <thread>

#include <gtest/gtest.h>

#include "ferry/Bus.h"
#include "ferry/Crypto.h"
#include "ferry/Error.h"
#include "ferry/MasterStore.h"
#include "ferry/PullClient.h"
#include "ferry/PullServer.h"
#include "ferry/Session.h"
#include "support/TestSupport.h"

using namespace ferry;
using ferry::test::TempDir;

namespace {

class APullSession : public ::testing::Test {
protected:
    void SetUp() override
    {
        spool.emplace(dir / "spool.db", SpoolLimits{1ull << 30, std::chrono::hours(24 * 365)});
        store.emplace(dir / "master.db");
        store->addNode("node1", secret);
    }

    void fill(std::size_t count)
    {
        std::vector<Record> records;
        const std::int64_t now = nowMs();
        for (std::size_t i = 0; i < count; ++i)
            records.push_back(Record{0, now + static_cast<std::int64_t>(i), "load",
                                     "sample " + std::to_string(i) + " " + std::string(100, 'x')});
        spool->appendAll(records);
    }

    // Runs the node side on one end of a socket pair in a thread; the
    // returned stream is the master's end.
    std::future<PullServerResult> startNode(PullCommand command, std::string nodeSecret = {})
    {
        int sv[2];
        if (::socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) != 0)
            throw std::runtime_error("socketpair");
        master = std::make_unique<FdStream>(sv[0], sv[0], "node1 (test)", true);
        PullServerOptions options;
        options.nodeName = "node1";
        options.secret = nodeSecret.empty() ? secret : nodeSecret;
        options.batchRecords = 100;
        options.ioTimeout = std::chrono::seconds(5);
        return std::async(std::launch::async, [this, fd = sv[1], command, options] {
            FdStream stream{fd, fd, "master (test)", true};
            PullServer server{stream, *spool, options};
            return server.run(command);
        });
    }

    PullClientOptions clientOptions(std::string clientSecret = {})
    {
        return PullClientOptions{"node1", clientSecret.empty() ? secret : clientSecret, std::chrono::seconds(5),
                                 "192.0.2.10:22"};
    }

    // What PullClient runs, with the test hook reachable.
    MasterSessionOptions sessionOptions()
    {
        MasterSessionOptions o;
        o.protocol = kPullProtocol;
        o.side = SessionSide::Initiator;
        o.via = "pull";
        o.expectedNode = "node1";
        o.secret = secret;
        o.masterId = "test-master"; // the store holds the node secret itself (a legacy credential)
        o.ioTimeout = std::chrono::seconds(5);
        return o;
    }

    // Plays the master's opening by hand: reads the node's Hello and proves
    // as master id "m", offering capabilities (and proving over them).
    void proveAsMaster(std::uint32_t capabilities = 0)
    {
        const auto hello = decodeHello(readFrame(*master, deadlineIn(std::chrono::seconds(5))).payload, "n");
        AuthMessage auth;
        auth.node = "node1";
        auth.nonce = randomBytes(kNonceSize);
        auth.version = kSessionVersion;
        auth.capabilities = capabilities;
        auth.masterId = "m";
        auth.mac = sessionProofV3(deriveMasterKey(secret, "m"), "master", kPullProtocol, kSessionVersion, capabilities,
                                  hello.challenge, auth.nonce, "node1", "", "m", "");
        writeFrame(*master, MessageType::Auth, encode(auth), deadlineIn(std::chrono::seconds(5)));
    }

    TempDir dir;
    std::string secret = generateSecret();
    std::optional<Spool> spool;
    std::optional<MasterStore> store;
    std::unique_ptr<FdStream> master;
};

} // namespace

TEST_F(APullSession, MovesEveryRecordAndEmptiesTheSpool)
{
    fill(1234);
    auto node = startNode(PullCommand{PullVerb::Fetch, 0});
    PullClient client{*master, clientOptions()};
    const auto result = client.fetch(*store);
    const auto served = node.get();
    EXPECT_EQ(result.records, 1234u);
    EXPECT_EQ(result.newlyStored, 1234u);
    EXPECT_EQ(result.batches, 13u);
    EXPECT_EQ(result.cursor, 1234u);
    EXPECT_EQ(result.epoch, spool->epoch());
    EXPECT_EQ(store->pullCursor("node1", spool->epoch()), 1234u);
    EXPECT_EQ(served.recordsSent, 1234u);
    EXPECT_EQ(served.deleted, 1234u);
    EXPECT_EQ(store->countRecords("node1", spool->epoch()), 1234u);
    EXPECT_EQ(spool->stats().records, 0u);
    const auto stored = store->records("node1", spool->epoch(), 0, 2);
    ASSERT_EQ(stored.size(), 2u);
    EXPECT_EQ(stored[1].payload, "sample 1 " + std::string(100, 'x'));
    EXPECT_EQ(store->report("node1")->transportMode, "") << "the shell's report arrived (mode filled by ferry-login)";
}

TEST_F(APullSession, MovesTheCursorPastTheHeadInTheTransactionOfTheBacklogBatchThatReachesIt)
{
    // Newest first: the head lane 1135–1234, then the backlog 1–1134. The
    // batch that ends at 1134 moves the cursor to 1234 as it commits, so
    // that Bye needs no transaction of its own.
    fill(1234);
    auto node = startNode(PullCommand{PullVerb::Fetch, 0});
    auto o = sessionOptions();
    std::vector<std::uint64_t> cursors; // after each group's commit, before its Acks
    o.afterCommit = [&] { cursors.push_back(store->pullCursor("node1", spool->epoch())); };
    const auto result = runMasterSession(*master, *store, o);
    node.get();
    EXPECT_EQ(result.headRecords, 100u);
    EXPECT_EQ(result.cursor, 1234u);
    ASSERT_FALSE(cursors.empty());
    EXPECT_EQ(cursors.front(), 0u) << "the head lane alone does not move the cursor";
    EXPECT_EQ(cursors.back(), 1234u) << "moved past the head with the last backlog batch";
    EXPECT_EQ(store->countRecords("node1", spool->epoch()), 1234u);
    EXPECT_EQ(spool->stats().records, 0u);
}

TEST_F(APullSession, RefusesAMasterWithTheWrongSecretAndKeepsTheSpool)
{
    fill(10);
    auto node = startNode(PullCommand{PullVerb::Fetch, 0});
    PullClient client{*master, clientOptions(generateSecret())};
    EXPECT_THROW(client.fetch(*store), AuthError);
    EXPECT_THROW(node.get(), AuthError);
    EXPECT_EQ(spool->stats().records, 10u);
    EXPECT_EQ(store->countRecords("node1"), 0u);
}

TEST_F(APullSession, RefusesANodeThatCannotProveTheSecret)
{
    // A fake node: it cannot check the master's proof, and answers with a
    // made-up one.
    int sv[2];
    ASSERT_EQ(::socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv), 0);
    FdStream masterEnd{sv[0], sv[0], "fake node", true};
    std::thread fake([fd = sv[1]] {
        FdStream s{fd, fd, "master", true};
        writeFrame(s, MessageType::Hello, encode(HelloMessage{randomBytes(kNonceSize), "node1"}),
                   deadlineIn(std::chrono::seconds(5)));
        readFrame(s, deadlineIn(std::chrono::seconds(5)));
        AuthOkMessage ok;
        ok.mac = randomBytes(kMacSize);
        ok.version = kSessionVersion;
        ok.epoch = Epoch::random().bytes();
        writeFrame(s, MessageType::AuthOk, encode(ok), deadlineIn(std::chrono::seconds(5)));
        writeFrame(s, MessageType::Batch, encode(std::vector<Record>{{1, 1, "load", "forged"}}),
                   deadlineIn(std::chrono::seconds(5)));
        try {
            readFrame(s, deadlineIn(std::chrono::seconds(5)));
        } catch (const std::exception&) {
        }
    });
    PullClient client{masterEnd, clientOptions()};
    EXPECT_THROW(client.fetch(*store), AuthError);
    fake.join();
    EXPECT_EQ(store->countRecords("node1"), 0u);
}

TEST_F(APullSession, LosesNothingAndStoresNothingTwiceWhenTheMasterDiesBetweenCommitAndAck)
{
    fill(1000);
    {
        auto node = startNode(PullCommand{PullVerb::Fetch, 0});
        auto o = sessionOptions();
        int commits = 0;
        // Newest first: the head lane (901–1000) is committed alone, then
        // the backlog from 1 in groups of the batches that have arrived
        // (group commit). The first backlog group is committed, then the
        // master dies before its Acks.
        o.afterCommit = [&] {
            if (++commits == 2)
                throw ClosedError("test: master died after the commit");
        };
        EXPECT_THROW(runMasterSession(*master, *store, o), ClosedError);
        master.reset();
        EXPECT_ANY_THROW(node.get());
    }
    const std::uint64_t cursor = store->pullCursor("node1", spool->epoch());
    EXPECT_GE(cursor, 100u) << "the cursor commits with the backlog batches; the head lane does not move it";
    EXPECT_LE(cursor, (kSessionWindow - 1) * 100u)
        << "at most the node's window of batches, less the head's, was in that group";
    EXPECT_EQ(cursor % 100, 0u) << "whole batches";
    EXPECT_EQ(store->countRecords("node1"), 100u + cursor);
    EXPECT_EQ(store->records("node1", spool->epoch(), 900, 1).at(0).seq, 901u) << "the head lane went first";
    // Only acknowledged batches left the spool: the head lane's Ack went
    // out, the group's did not.
    EXPECT_EQ(spool->stats().records, 900u);

    const auto remaining = spool->stats().records;
    auto node = startNode(PullCommand{PullVerb::Fetch, 0});
    PullClient client{*master, clientOptions()};
    const auto result = client.fetch(*store);
    EXPECT_EQ(node.get().deleted, remaining) << "the rest by Acks, the committed group by the cursor";
    EXPECT_EQ(result.records, 900u - cursor) << "the master's cursor (its Policy) deleted the committed group first";
    EXPECT_EQ(result.duplicates, 0u);
    EXPECT_EQ(store->countRecords("node1"), 1000u);
    EXPECT_EQ(spool->stats().records, 0u);
    const auto all = store->records("node1", spool->epoch(), 0, 2000);
    ASSERT_EQ(all.size(), 1000u);
    for (std::size_t i = 0; i < all.size(); ++i)
        ASSERT_EQ(all[i].seq, i + 1);
}

TEST_F(APullSession, SendsTheNewestRecordsFirstAndTheBacklogBehindThemEachOnce)
{
    // A node back from an outage: 1000 records queued, batches of 100.
    fill(1000);
    auto node = startNode(PullCommand{PullVerb::Fetch, 0});
    auto o = sessionOptions();
    std::vector<std::uint64_t> storedAfterFirstCommit;
    o.afterCommit = [&] {
        if (storedAfterFirstCommit.empty())
            for (const auto& r : store->records("node1", spool->epoch(), 0, 2000))
                storedAfterFirstCommit.push_back(r.seq);
    };
    const auto result = runMasterSession(*master, *store, o);
    const auto served = node.get();
    ASSERT_EQ(storedAfterFirstCommit.size(), 100u);
    EXPECT_EQ(storedAfterFirstCommit.front(), 901u) << "the first batch stored is the newest";
    EXPECT_EQ(storedAfterFirstCommit.back(), 1000u);
    EXPECT_EQ(result.headRecords, 100u);
    EXPECT_EQ(result.records, 1000u);
    EXPECT_EQ(result.newlyStored, 1000u);
    EXPECT_EQ(result.duplicates, 0u);
    EXPECT_EQ(served.recordsSent, 1000u);
    EXPECT_EQ(served.deleted, 1000u);
    EXPECT_EQ(spool->stats().records, 0u);
    EXPECT_EQ(store->pullCursor("node1", spool->epoch()), 1000u)
        << "the cursor passes the head once the backlog met it";
    const auto all = store->records("node1", spool->epoch(), 0, 2000);
    ASSERT_EQ(all.size(), 1000u);
    for (std::size_t i = 0; i < all.size(); ++i)
        ASSERT_EQ(all[i].seq, i + 1);
}

TEST_F(APullSession, SendsInSequenceOrderWhenEverythingFitsOneBatch)
{
    fill(80);
    auto node = startNode(PullCommand{PullVerb::Fetch, 0});
    PullClient client{*master, clientOptions()};
    const auto result = client.fetch(*store);
    node.get();
    EXPECT_EQ(result.headRecords, 0u);
    EXPECT_EQ(result.records, 80u);
    EXPECT_EQ(store->pullCursor("node1", spool->epoch()), 80u);
}

TEST_F(APullSession, DeletesUpToTheEpochsCursorAtTheStartOfAFetch)
{
    fill(50);
    store->storeBatch("node1", spool->epoch(), spool->readAfter(0, 20, 1 << 20), "pull");
    store->setPullCursor("node1", spool->epoch(), 20);
    auto node = startNode(PullCommand{PullVerb::Fetch, 0});
    PullClient client{*master, clientOptions()};
    const auto result = client.fetch(*store);
    const auto served = node.get();
    EXPECT_EQ(result.records, 30u);
    EXPECT_EQ(served.deleted, 50u);
    EXPECT_EQ(spool->stats().records, 0u);
    EXPECT_EQ(store->countRecords("node1"), 50u);
}

// Regression: the release deleted records up to the master's cursor even
// when that cursor belonged to the node's previous spool, so a reinstalled
// node whose new spool had passed it lost records the master never had.
TEST_F(APullSession, NeverDeletesARecordOfANewSpoolThatTheMasterDidNotStore)
{
    const Epoch old = Epoch::random();
    store->setPullCursor("node1", old, 20);  // the previous spool's progress
    fill(50);                                // the new spool is past it
    // Even a command line naming the old cursor deletes nothing unstored.
    auto node = startNode(PullCommand{PullVerb::Fetch, 20});
    PullClient client{*master, clientOptions()};
    const auto result = client.fetch(*store);
    const auto served = node.get();
    EXPECT_EQ(result.records, 50u);
    EXPECT_EQ(result.newlyStored, 50u);
    EXPECT_EQ(served.deleted, 50u) << "deleted only by Acks";
    EXPECT_EQ(store->countRecords("node1", spool->epoch()), 50u);
    EXPECT_EQ(store->records("node1", spool->epoch(), 0, 1).front().seq, 1u);
}

TEST_F(APullSession, RefusesACursorBeyondTheSpool)
{
    fill(5);
    store->setPullCursor("node1", spool->epoch(), 6);
    auto node = startNode(PullCommand{PullVerb::Fetch, 0});
    PullClient client{*master, clientOptions()};
    EXPECT_THROW(client.fetch(*store), ProtocolError);
    EXPECT_THROW(node.get(), ProtocolError);
    EXPECT_EQ(spool->stats().records, 5u);
}

TEST_F(APullSession, KeepsRecordsWhenAnAckClaimsMoreThanWasSent)
{
    fill(300);
    auto node = startNode(PullCommand{PullVerb::Fetch, 0});
    // A master that acknowledges everything at once after the first batch.
    proveAsMaster();
    EXPECT_EQ(readFrame(*master, deadlineIn(std::chrono::seconds(5))).type, MessageType::AuthOk);
    EXPECT_EQ(readFrame(*master, deadlineIn(std::chrono::seconds(5))).type, MessageType::Report);
    writeFrame(*master, MessageType::Policy, encode(PolicyMessage{}), deadlineIn(std::chrono::seconds(5)));
    EXPECT_EQ(readFrame(*master, deadlineIn(std::chrono::seconds(5))).type, MessageType::Batch);
    writeFrame(*master, MessageType::Ack, encode(AckMessage{300, 300, 0}), deadlineIn(std::chrono::seconds(5)));
    EXPECT_THROW(node.get(), ProtocolError);
    EXPECT_EQ(spool->stats().records, 300u);
}

TEST_F(APullSession, RefusesAVersionOneMasterWithAClearMessage)
{
    fill(3);
    auto node = startNode(PullCommand{PullVerb::Fetch, 0});
    const auto hello = decodeHello(readFrame(*master, deadlineIn(std::chrono::seconds(5))).payload, "n");
    AuthMessage v1;
    v1.node = "node1";
    v1.nonce = randomBytes(kNonceSize);
    v1.mac = sessionProof(secret, kPullMasterLabel, kPullProtocol, hello.challenge, v1.nonce, "node1");
    writeFrame(*master, MessageType::Auth, encode(v1), deadlineIn(std::chrono::seconds(5)));
    const Frame reply = readFrame(*master, deadlineIn(std::chrono::seconds(5)));
    ASSERT_EQ(reply.type, MessageType::Error);
    const auto err = decodeError(reply.payload, "node");
    EXPECT_EQ(err.code, "unsupported-version");
    EXPECT_NE(err.message.find("upgrade ferry-master"), std::string::npos) << err.message;
    EXPECT_THROW(node.get(), VersionError);
    EXPECT_EQ(spool->stats().records, 3u);
}

TEST_F(APullSession, AuthenticatesAMasterThatOffersACapabilityThisNodeDoesNotKnow)
{
    // A later master offers a bit this node does not know and proves over
    // everything it offers: the node checks the proof over the bits as sent
    // and answers with the ones both know.
    fill(3);
    auto node = startNode(PullCommand{PullVerb::Fetch, 0});
    proveAsMaster(kSessionCapabilities | (1u << 30));
    const Frame reply = readFrame(*master, deadlineIn(std::chrono::seconds(5)));
    master.reset(); // the node, on with its Report, sees the end
    EXPECT_ANY_THROW(node.get());
    ASSERT_EQ(reply.type, MessageType::AuthOk) << "a proof over a capability the node does not know is refused";
    const AuthOkMessage ok = decodeAuthOk(reply.payload, "n");
    EXPECT_EQ(ok.capabilities, kSessionCapabilities);
    EXPECT_EQ(spool->stats().records, 3u);
}

TEST_F(APullSession, AnswersStatusWithTheSpoolFigures)
{
    fill(7);
    auto node = startNode(PullCommand{PullVerb::Status, 0});
    PullClient client{*master, clientOptions()};
    const PullStatus s = client.status(*store);
    node.get();
    EXPECT_EQ(s.node, "node1");
    EXPECT_EQ(s.records, 7u);
    EXPECT_EQ(s.lastSeq, 7u);
    EXPECT_GT(s.bytes, 7u * 100);
}

namespace {

constexpr SpoolLimits kRoomy{1ull << 30, std::chrono::hours(24 * 365)};

// Closes the node's spool, copies its file the way `cp` does (a new file, a
// new inode) to copy.db and opens the copy as the node's spool. Returns the
// epoch of the original.
Epoch cloneSpool(std::optional<Spool>& spool, const TempDir& dir)
{
    const Epoch original = spool->epoch();
    spool.reset();
    for (const char* suffix : {"", "-wal"})
        if (std::filesystem::exists(dir / ("spool.db" + std::string(suffix))))
            std::filesystem::copy_file(dir / ("spool.db" + std::string(suffix)),
                                       dir / ("copy.db" + std::string(suffix)));
    spool.emplace(dir / "copy.db", kRoomy);
    return original;
}

} // namespace

// A copied spool (a cloned machine) keeps the epoch of the records it held
// and appends under a new one: a pull serves each epoch in its own session,
// the old one first, every record under the epoch it was written under.
TEST_F(APullSession, ServesACopiedSpoolsRecordsUnderTheirOwnEpochsOldestFirst)
{
    fill(30);
    const Epoch original = cloneSpool(spool, dir);
    const Epoch copied = spool->epoch();
    ASSERT_NE(copied, original);
    fill(20);

    auto first = startNode(PullCommand{PullVerb::Fetch, 0});
    const auto r1 = PullClient{*master, clientOptions()}.fetch(*store);
    const auto s1 = first.get();
    EXPECT_EQ(r1.epoch, original);
    EXPECT_EQ(r1.records, 30u);
    EXPECT_TRUE(s1.laterEpochQueued);
    EXPECT_EQ(spool->stats().records, 20u);

    auto second = startNode(PullCommand{PullVerb::Fetch, 0});
    const auto r2 = PullClient{*master, clientOptions()}.fetch(*store);
    const auto s2 = second.get();
    EXPECT_EQ(r2.epoch, copied);
    EXPECT_EQ(r2.records, 20u);
    EXPECT_FALSE(s2.laterEpochQueued);
    EXPECT_EQ(spool->stats().records, 0u);

    EXPECT_EQ(store->countRecords("node1", original), 30u);
    EXPECT_EQ(store->countRecords("node1", copied), 20u);
    const auto newer = store->records("node1", copied, 0, 1);
    ASSERT_EQ(newer.size(), 1u);
    EXPECT_EQ(newer.front().seq, 31u) << "the sequence goes on: no (epoch, seq) is shared";
    EXPECT_FALSE(store->node("node1")->suspect) << "one copy only, its old epoch ended before the new began";
}

// The original went on under the old epoch and the master's cursor for it is
// past everything the copy holds of it: those records are stored (they are
// the same records), so the copy deletes them instead of refusing.
TEST_F(APullSession, DeletesACopysOldEpochRecordsThatTheOriginalDelivered)
{
    fill(10);
    const Epoch original = cloneSpool(spool, dir);
    {
        Spool orig(dir / "spool.db", kRoomy);
        orig.append("load", "after the copy", nowMs());
        store->storeBatch("node1", original, orig.readAfter(0, 100, 1 << 20), "pull");
        store->setPullCursor("node1", original, 11);
    }
    ASSERT_NE(spool->epoch(), original);
    fill(3);

    auto node = startNode(PullCommand{PullVerb::Fetch, 0});
    const auto result = PullClient{*master, clientOptions()}.fetch(*store);
    const auto served = node.get();
    EXPECT_EQ(result.epoch, original);
    EXPECT_EQ(result.records, 0u);
    EXPECT_EQ(served.deleted, 10u);
    EXPECT_EQ(spool->stats().records, 3u) << "the new epoch's records wait for their own session";
    EXPECT_EQ(store->countRecords("node1", original), 11u);
}
