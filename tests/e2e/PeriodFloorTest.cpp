// The period floor, enforced by the master (issue 15), end to end: a real
// sshd with the shipped drop-in, a real collectord reading the floor from
// registry.yml, pushd activated on a private bus, ferryctl. A push that comes
// before the floor has passed is stored like any other and told when to come
// back; pushd then skips its scheduled pushes until that time, and
// `ferryctl status` says why.

#include <filesystem>

#include <gtest/gtest.h>

#include "PushFixture.h"
#include "ferry/Clock.h"
#include "ferry/Spool.h"
#include "ferry/Sqlite.h"

namespace ferry::test {
namespace {

// Short enough to wait out in a test, long enough that two pushes in a row
// are clearly early (the master tolerates a tenth of the floor).
constexpr int kFloorSeconds = 20;

class APushUnderAPeriodFloor : public PushFixture {
protected:
    void SetUp() override
    {
        PushFixture::SetUp();
        if (IsSkipped())
            return;
        m_masterConfig = *m_root / "master-etc";
        std::filesystem::create_directories(m_masterConfig);
        // The registry's other settings are registryd's; collectord reads the floor alone.
        writeFile(m_masterConfig + "/registry.yml", "registry:\n  unknown_nodes: refuse\n  min_push_period: " +
                                                        std::to_string(kFloorSeconds) + "s\n  max_pending: 10\n");
        m_collector.reset();
        startCollector({{"FERRY_CONFIG_DIR", m_masterConfig}});
    }

    std::uint64_t queuedAtNode() { return ferry::Spool(m_nodeState + "/spool.db", {}).stats().records; }

    std::uint64_t notBeforeUsec()
    {
        const std::string p = busProperty("NotBefore"); // "t 123\n"
        return std::stoull(p.substr(2));
    }

    std::string m_masterConfig;
};

TEST_F(APushUnderAPeriodFloor, StoresAnEarlyPushAndTellsTheNodeWhenToComeBack)
{
    spoolRecords(5);
    auto r = ferryctl({"push", "--scheduled"});
    ASSERT_EQ(r.exitCode, 0) << r.err << collectorLog();
    EXPECT_NE(r.out.find("pushed 5 records"), std::string::npos) << r.out;
    EXPECT_EQ(r.out.find("asks for the next one"), std::string::npos) << "the first push is on time: " << r.out;
    const std::int64_t firstPush = ferry::nowMs();
    EXPECT_EQ(notBeforeUsec(), 0u);

    // An operator's push right after: early. Its records are stored all the same.
    spoolRecords(5);
    r = ferryctl({"push"});
    ASSERT_EQ(r.exitCode, 0) << r.err << collectorLog();
    EXPECT_NE(r.out.find("pushed 5 records"), std::string::npos) << r.out;
    EXPECT_NE(r.out.find("the master allows a push every " + std::to_string(kFloorSeconds) + " s"), std::string::npos)
        << r.out;
    EXPECT_EQ(storedAtMaster(), 10u);
    EXPECT_EQ(queuedAtNode(), 0u);
    EXPECT_NE(collectorLog().find("pushed before its period floor of 20 s was up: its records are stored"),
              std::string::npos)
        << collectorLog();
    EXPECT_EQ(collectorLog().find("Session with"), std::string::npos) << "no error of any kind: " << collectorLog();

    // "Come back at T": T is the first push plus the floor.
    const std::int64_t notBeforeMs = static_cast<std::int64_t>(notBeforeUsec() / 1000);
    EXPECT_GE(notBeforeMs, firstPush - 2000 + kFloorSeconds * 1000);
    EXPECT_LE(notBeforeMs, firstPush + kFloorSeconds * 1000);
    const auto status = ferryctl({"status"});
    RecordProperty("early_push", r.out);
    RecordProperty("ferryctl_status", status.out);
    EXPECT_NE(status.out.find("Next push: not before " + ferry::formatTime(notBeforeMs) +
                              " (master 127.0.0.1:" + std::to_string(m_sshd->port()) + " allows a push every 20 s)"),
              std::string::npos)
        << status.out;

    // The timer's pushes before T reach no master at all.
    spoolRecords(3);
    const auto sshdBefore = m_sshd->log();
    r = ferryctl({"push", "--scheduled"});
    ASSERT_EQ(r.exitCode, 0) << r.err;
    RecordProperty("skipped", r.out);
    EXPECT_NE(r.out.find("skipped: master 127.0.0.1:" + std::to_string(m_sshd->port()) +
                         " allows a push every 20 s, and asked for no push before"),
              std::string::npos)
        << r.out;
    EXPECT_EQ(queuedAtNode(), 3u);
    EXPECT_EQ(storedAtMaster(), 10u);
    EXPECT_EQ(m_sshd->log().size(), sshdBefore.size()) << "a skipped push must not even connect";

    // At T the scheduled push goes, on time: nothing more to wait for.
    ASSERT_TRUE(waitUntil([&] { return ferry::nowMs() >= notBeforeMs; }, std::chrono::seconds(kFloorSeconds + 5)));
    r = ferryctl({"push", "--scheduled"});
    ASSERT_EQ(r.exitCode, 0) << r.err << collectorLog();
    EXPECT_NE(r.out.find("pushed 3 records"), std::string::npos) << r.out;
    EXPECT_EQ(r.out.find("asks for the next one"), std::string::npos) << r.out;
    EXPECT_EQ(storedAtMaster(), 13u);
    EXPECT_EQ(notBeforeUsec(), 0u);
    EXPECT_EQ(ferryctl({"status"}).out.find("Next push:"), std::string::npos);
}

TEST_F(APushUnderAPeriodFloor, FollowsTheNodesOwnFloorOverTheDefault)
{
    // The operator lifts the floor for this node: `ferryctl master set-policy`
    // writes node_policy, which every push session reads.
    auto r = ferryctlMaster({"set-policy", "test-node", "--min-push-period", "0"});
    ASSERT_EQ(r.exitCode, 0) << r.err << r.out;
    spoolRecords(2);
    ASSERT_EQ(ferryctl({"push"}).exitCode, 0);
    spoolRecords(2);
    r = ferryctl({"push"});
    ASSERT_EQ(r.exitCode, 0) << r.err << collectorLog();
    EXPECT_EQ(r.out.find("asks for the next one"), std::string::npos) << r.out;
    EXPECT_EQ(notBeforeUsec(), 0u);
    EXPECT_EQ(storedAtMaster(), 4u);
}

} // namespace
} // namespace ferry::test
