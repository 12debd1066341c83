// The push protocol between pushd's cycle and collectord's session, in one
// process over a socketpair, with real SQLite files on both sides.

#include <sys/socket.h>

#include <thread>

#include <gtest/gtest.h>

#include "CollectorSession.h"
#include "Fallback.h"
#include "PushCycle.h"
#include "ferry/Bus.h"
#include "ferry/Crypto.h"
#include "ferry/Error.h"
#include "ferry/MasterStore.h"
#include "support/TestSupport.h"

namespace ferry {
namespace {

class APushSession : public ::testing::Test {
protected:
    void SetUp() override
    {
        int sv[2];
        ASSERT_EQ(::socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
        node = std::make_unique<FdStream>(sv[0], sv[0], "collector", true);
        master = std::make_unique<FdStream>(sv[1], sv[1], "node", true);
        secret = generateSecret();
        MasterStore(dir / "master.db").addNode("web1", secret);
        Spool spool(dir / "spool.db", {});
        for (int i = 0; i < 120; ++i)
            spool.append("k", "v" + std::to_string(i), nowMs());
    }

    pushd::PushCycleOptions options(const std::string& s)
    {
        pushd::PushCycleOptions o;
        o.nodeName = "web1";
        o.secret = s;
        o.batchRecords = 50;
        o.ioTimeout = std::chrono::seconds(5);
        return o;
    }

    test::TempDir dir;
    std::unique_ptr<FdStream> node, master;
    std::string secret;
};

TEST_F(APushSession, StoresEveryRecordAndEmptiesTheSpool)
{
    std::thread server([&] {
        MasterStore store(dir / "master.db");
        collectord::serveSession(*master, store, {});
    });
    Spool spool(dir / "spool.db", {});
    const auto r = pushd::runPushCycle(*node, spool, options(secret));
    server.join();
    EXPECT_EQ(r.recordsSent, 120u);
    EXPECT_EQ(r.batches, 3u);
    EXPECT_EQ(spool.stats().records, 0u);
    EXPECT_EQ(MasterStore(dir / "master.db").countRecords("web1"), 120u);
}

TEST_F(APushSession, IsRefusedWithAWrongSecretAndStoresNothing)
{
    std::string serverError;
    std::thread server([&] {
        MasterStore store(dir / "master.db");
        try {
            collectord::serveSession(*master, store, {});
        } catch (const AuthError& e) {
            serverError = e.what();
        }
    });
    Spool spool(dir / "spool.db", {});
    EXPECT_THROW(pushd::runPushCycle(*node, spool, options(generateSecret())), AuthError);
    server.join();
    EXPECT_EQ(serverError, "Refused node 'web1' from node: wrong proof of its secret");
    EXPECT_EQ(spool.stats().records, 120u);
    EXPECT_EQ(MasterStore(dir / "master.db").countRecords("web1"), 0u);
}

TEST_F(APushSession, KeepsRecordsWhenTheMasterDropsBeforeTheAck)
{
    // A collector that authenticates properly, reads one batch, and vanishes.
    std::thread server([&] {
        HelloMessage hello{randomBytes(kNonceSize), "flaky"};
        writeFrame(*master, MessageType::Hello, encode(hello), deadlineIn(std::chrono::seconds(5)));
        const auto auth = decodeAuth(readFrame(*master, deadlineIn(std::chrono::seconds(5))).payload, "node");
        writeFrame(*master, MessageType::AuthOk,
                   encode(AuthOkMessage{sessionProof(secret, "server", "push", hello.challenge, auth.nonce, "web1")}),
                   deadlineIn(std::chrono::seconds(5)));
        readFrame(*master, deadlineIn(std::chrono::seconds(5)));
        master.reset();
    });
    Spool spool(dir / "spool.db", {});
    EXPECT_THROW(pushd::runPushCycle(*node, spool, options(secret)), ClosedError);
    server.join();
    EXPECT_EQ(spool.stats().records, 120u);
}

TEST_F(APushSession, RefusesACollectorThatCannotProveTheSecret)
{
    std::thread server([&] {
        HelloMessage hello{randomBytes(kNonceSize), "impostor"};
        writeFrame(*master, MessageType::Hello, encode(hello), deadlineIn(std::chrono::seconds(5)));
        readFrame(*master, deadlineIn(std::chrono::seconds(5)));
        writeFrame(*master, MessageType::AuthOk, encode(AuthOkMessage{randomBytes(kMacSize)}),
                   deadlineIn(std::chrono::seconds(5)));
    });
    Spool spool(dir / "spool.db", {});
    EXPECT_THROW(pushd::runPushCycle(*node, spool, options(secret)), AuthError);
    server.join();
    EXPECT_EQ(spool.stats().records, 120u);
}

TEST_F(APushSession, StoresARetriedBatchOnlyOnce)
{
    MasterStore store(dir / "master.db");
    std::vector<Record> batch{{1, 0, "k", "a"}, {2, 0, "k", "b"}};
    const auto first = store.storeBatch("web1", batch, "push");
    const auto again = store.storeBatch("web1", batch, "pull");
    EXPECT_EQ(first.newlyStored, 2u);
    EXPECT_EQ(again.newlyStored, 0u);
    EXPECT_EQ(again.duplicates, 2u);
    EXPECT_EQ(again.storedUpTo, 2u);
    EXPECT_EQ(store.countRecords("web1"), 2u);
}

TEST(TheFallback, TurnsPushOnOnlyAfterTheAbsenceInterval)
{
    using ferry::TransportMode;
    const std::int64_t t0 = 1'000'000'000'000;
    const auto absence = std::chrono::minutes(15);
    EXPECT_FALSE(pushd::decideFallback(TransportMode::Auto, absence, 0, t0, t0 + 14 * 60'000).active);
    EXPECT_TRUE(pushd::decideFallback(TransportMode::Auto, absence, 0, t0, t0 + 15 * 60'000).active);
    const auto d = pushd::decideFallback(TransportMode::Auto, absence, t0, t0, t0 + 16 * 60'000);
    EXPECT_TRUE(d.active);
    EXPECT_NE(d.reason.find("no pull since"), std::string::npos) << d.reason;
    EXPECT_FALSE(pushd::decideFallback(TransportMode::Auto, absence, t0 + 16 * 60'000, t0, t0 + 17 * 60'000).active);
    EXPECT_TRUE(pushd::decideFallback(TransportMode::Push, absence, t0, t0, t0).active);
    EXPECT_FALSE(pushd::decideFallback(TransportMode::Pull, absence, 0, t0, t0 + 99 * 60'000).active);
}

} // namespace
} // namespace ferry
