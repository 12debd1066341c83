// The push transport end to end on one machine: real sshd with the shipped
// settings, real collectord, pushd activated on a private bus, ferryctl.

#include <signal.h>

#include <gtest/gtest.h>

#include "PushFixture.h"
#include "ferry/Crypto.h"
#include "ferry/Error.h"
#include "ferry/Spool.h"
#include "ferry/SshSession.h"

namespace ferry::test {
namespace {

class APushCycle : public PushFixture {};

TEST_F(APushCycle, DeliversSampledRecordsToTheMasterOnce)
{
    for (int i = 0; i < 3; ++i)
        ASSERT_EQ(sample().exitCode, 0);
    // Each sampler run spools at least one record of samples (several when
    // plugins or a large machine need more room).
    const auto queued = ferry::Spool(m_nodeState + "/spool.db", {}).stats();
    ASSERT_GE(queued.records, 3u);

    const auto r = ferryctl({"push"});
    ASSERT_EQ(r.exitCode, 0) << r.err << collectorLog();
    EXPECT_NE(r.out.find("pushed " + std::to_string(queued.records) + " records"), std::string::npos) << r.out;
    EXPECT_EQ(storedAtMaster(), queued.records);
    EXPECT_EQ(busProperty("QueuedRecords"), "t 0\n");

    // A second cycle has nothing to send and stores nothing twice.
    ASSERT_EQ(ferryctl({"push"}).exitCode, 0);
    EXPECT_EQ(storedAtMaster(), queued.records);

    const auto status = ferryctl({"status"});
    EXPECT_EQ(status.exitCode, 0) << status.err;
    EXPECT_NE(status.out.find("success: pushed 0 records"), std::string::npos) << status.out;
}

TEST_F(APushCycle, IsSummarisedByTheCollectorInOneInfoLineNotOnePerPush)
{
    ASSERT_EQ(sample().exitCode, 0);
    const auto queued = ferry::Spool(m_nodeState + "/spool.db", {}).stats();
    ASSERT_GE(queued.records, 1u);
    ASSERT_EQ(ferryctl({"push"}).exitCode, 0) << collectorLog();
    ASSERT_EQ(ferryctl({"push"}).exitCode, 0) << collectorLog();
    ASSERT_EQ(storedAtMaster(), queued.records);
    // The per-push detail is at debug (this collectord runs with -v).
    const std::string perPush = "Stored " + std::to_string(queued.records) + " records from ";
    const std::string before = collectorLog();
    const auto detail = before.find(perPush);
    ASSERT_NE(detail, std::string::npos) << before;
    const std::string level = "debug: ";
    ASSERT_GE(detail, level.size());
    EXPECT_EQ(before.substr(detail - level.size(), level.size()), level) << before;
    EXPECT_EQ(before.find("In the last "), std::string::npos) << "no summary before a minute has passed:\n" << before;
    // Stopping writes what the current minute has not summarised yet.
    m_collector->signal(SIGTERM);
    ASSERT_TRUE(m_collector->wait(std::chrono::seconds(20)).has_value()) << collectorLog();
    const std::string log = collectorLog();
    const std::string summary = "2 push sessions, " + std::to_string(queued.records) +
                                " records stored (0 already stored), 0 sessions held, 0 early";
    EXPECT_NE(log.find(summary), std::string::npos) << log;
    EXPECT_EQ(log.find(summary, log.find(summary) + 1), std::string::npos) << "one summary line:\n" << log;
}

TEST_F(APushCycle, StoresEveryRecordExactlyOnceWhenPushdIsKilledMidBatch)
{
    writeNodeConfig({m_sshd->port()}, "  batch_records: 20\n");
    spoolRecords(4000, 200);
    Process push({buildPath("services/ferryctl/ferryctl"), "push"}, {}, *m_root / "push.log");
    // Kill pushd once the master holds part of the backlog.
    ASSERT_TRUE(waitUntil([&] { return storedAtMaster() >= 200; }, std::chrono::seconds(30))) << collectorLog();
    const auto pid = pushdPid();
    ASSERT_TRUE(pid);
    ::kill(*pid, SIGKILL);
    push.wait(std::chrono::seconds(10));
    const auto partial = storedAtMaster();
    EXPECT_LT(partial, 4000u) << "the kill came too late to interrupt the cycle";

    // The next cycle (a fresh pushd, activated again) finishes the job.
    const auto r = ferryctl({"push"}, std::chrono::seconds(120));
    ASSERT_EQ(r.exitCode, 0) << r.err << collectorLog();
    ferry::MasterStore store(m_masterState + "/master.db");
    EXPECT_EQ(store.countRecords("test-node"), 4000u);
    const auto last = store.records("test-node", ferry::Spool(m_nodeState + "/spool.db", {}).epoch(), 3999, 10);
    ASSERT_EQ(last.size(), 1u);
    EXPECT_EQ(last[0].seq, 4000u);
    EXPECT_EQ(ferry::Spool(m_nodeState + "/spool.db", {}).stats().records, 0u);
}

// Regression: reading stderr inside SshChannel::readSome could move an Ack
// into libssh's buffer and then sleep on the socket, losing the wake-up;
// large batches made it likely.
TEST_F(APushCycle, DrainsABacklogInLargeBatchesWithoutStalling)
{
    writeNodeConfig({m_sshd->port()}, "  batch_records: 500\n");
    spoolRecords(6000, 150);
    const auto r = ferryctl({"push"}, std::chrono::seconds(120));
    ASSERT_EQ(r.exitCode, 0) << r.err << collectorLog();
    EXPECT_EQ(storedAtMaster(), 6000u);
}

TEST_F(APushCycle, KeepsRecordsQueuedWhileTheMasterIsUnreachableAndDrainsWhenItReturns)
{
    m_sshd->stop();
    ASSERT_EQ(sample().exitCode, 0);
    auto r = ferryctl({"push"});
    EXPECT_NE(r.exitCode, 0);
    EXPECT_NE(r.err.find("no master reachable"), std::string::npos) << r.err;
    const auto first = std::stoull(busProperty("QueuedRecords").substr(2));
    ASSERT_EQ(sample().exitCode, 0);
    EXPECT_NE(ferryctl({"push"}).exitCode, 0);
    const auto second = std::stoull(busProperty("QueuedRecords").substr(2));
    EXPECT_GT(second, first);
    EXPECT_EQ(storedAtMaster(), 0u);

    m_sshd->start();
    r = ferryctl({"push"});
    ASSERT_EQ(r.exitCode, 0) << r.err;
    EXPECT_EQ(storedAtMaster(), second);
    EXPECT_EQ(busProperty("QueuedRecords"), "t 0\n");
}

TEST_F(APushCycle, RunByItsTimerFailsWithAnExitCodeAndRecordsWhyWhenNoMasterAnswers)
{
    spoolRecords(10);
    writeNodeConfig({freePort()});
    const auto r = pushdOnce("--cycle");
    EXPECT_EQ(r.exitCode, 1) << r.err;
    EXPECT_NE(r.err.find("Push started to fail: no master reachable"), std::string::npos) << r.err;
    EXPECT_NE(busProperty("LastResult").find("failed: no master reachable"), std::string::npos);
    EXPECT_EQ(busProperty("QueuedRecords"), "t 10\n");

    writeNodeConfig({m_sshd->port()});
    const auto again = pushdOnce("--cycle");
    EXPECT_EQ(again.exitCode, 0) << again.err << collectorLog();
    EXPECT_NE(again.err.find("Push working again: pushed 10 records"), std::string::npos) << again.err;
    EXPECT_EQ(storedAtMaster(), 10u);
}

TEST_F(APushCycle, ShowsItsProgressOnATerminalAndOnlyThere)
{
    writeNodeConfig({m_sshd->port()}, "  batch_records: 100\n");
    spoolRecords(3000, 200);
    // script(1) gives ferryctl a terminal; what it writes there comes back
    // as script's output, stdout and stderr together.
    const auto onTty = run({"script", "-qefc", buildPath("services/ferryctl/ferryctl") + " push", "/dev/null"}, {}, {},
                           std::chrono::seconds(120));
    ASSERT_EQ(onTty.exitCode, 0) << onTty.out << onTty.err << collectorLog();
    EXPECT_NE(onTty.out.find("Pushing: 0 of 3,000 records, 0 B of "), std::string::npos) << onTty.out;
    EXPECT_NE(onTty.out.find("Pushing: 3,000 of 3,000 records, "), std::string::npos) << onTty.out;
    // The progress line is erased before the result, which stands alone.
    EXPECT_NE(onTty.out.find("\r\033[Kpushed 3000 records to "), std::string::npos) << onTty.out;
    EXPECT_EQ(storedAtMaster(), 3000u);

    // Not on a terminal, or with --json: the result alone.
    spoolRecords(300, 200);
    const auto piped = ferryctl({"push"});
    ASSERT_EQ(piped.exitCode, 0) << piped.err;
    EXPECT_EQ(piped.err, "");
    EXPECT_EQ(piped.out.rfind("pushed 300 records to ", 0), 0u) << piped.out;
    spoolRecords(300, 200);
    const auto json = run({"script", "-qefc", buildPath("services/ferryctl/ferryctl") + " --json push", "/dev/null"},
                          {}, {}, std::chrono::seconds(120));
    ASSERT_EQ(json.exitCode, 0) << json.out;
    EXPECT_EQ(json.out.find("Pushing"), std::string::npos) << json.out;
    EXPECT_EQ(json.out.rfind("{\"success\":true", 0), 0u) << json.out;
}

TEST_F(APushCycle, FailsOverToTheSecondMasterWhenTheFirstIsDown)
{
    const int deadPort = freePort();
    writeNodeConfig({deadPort, m_sshd->port()});
    ASSERT_EQ(sample().exitCode, 0);
    const auto r = ferryctl({"push"});
    ASSERT_EQ(r.exitCode, 0) << r.err;
    EXPECT_GT(storedAtMaster(), 0u);
    EXPECT_EQ(busProperty("Master"), "s \"127.0.0.1:" + std::to_string(m_sshd->port()) + "\"\n");
}

TEST_F(APushCycle, RefusesAMasterWhoseHostKeyIsNotThePinnedOne)
{
    TempDir other;
    ASSERT_EQ(run({"ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", other / "k"}).exitCode, 0);
    std::string otherKey = readFile(other / "k.pub");
    otherKey = otherKey.substr(0, otherKey.find(' ', otherKey.find(' ') + 1));
    pinHostKey("[127.0.0.1]:" + std::to_string(m_sshd->port()) + " " + otherKey);
    ASSERT_EQ(sample().exitCode, 0);
    const auto r = ferryctl({"push"});
    EXPECT_NE(r.exitCode, 0);
    EXPECT_NE(r.err.find("host key differs from the pinned one"), std::string::npos) << r.err;
    EXPECT_EQ(storedAtMaster(), 0u);
    // Nothing identifying was sent: sshd never saw a key offered.
    EXPECT_EQ(m_sshd->log().find("Accepted publickey"), std::string::npos);
}

TEST_F(APushCycle, IsRefusedByTheCollectorWhenTheNodeSecretIsWrong)
{
    enrol(ferry::generateSecret());  // the master holds a different secret
    ASSERT_EQ(sample().exitCode, 0);
    const auto r = ferryctl({"push"});
    EXPECT_NE(r.exitCode, 0);
    // The node learns only that authentication failed (an unknown name
    // would read the same); the master's log says why.
    EXPECT_NE(r.err.find("authentication failed"), std::string::npos) << r.err;
    EXPECT_EQ(storedAtMaster(), 0u);
    EXPECT_TRUE(waitUntil([&] { return collectorLog().find("wrong proof of its key") != std::string::npos; }))
        << collectorLog();
    EXPECT_GT(ferry::Spool(m_nodeState + "/spool.db", {}).stats().records, 0u);
}

TEST_F(APushCycle, ShippedSshSettingsRefuseEveryForwardAndRemoteListenersAndRunOnlyTheRelay)
{
    ferry::SshOptions o;
    o.privateKeyFile = m_nodeState + "/id_ed25519";
    o.knownHostsFile = m_nodeState + "/known_hosts";
    ferry::SshSession session({"127.0.0.1", static_cast<std::uint16_t>(m_sshd->port()), "ferry-tunnel"}, o);
    // The collector's TCP port included (where this test's collector
    // listens, and the default one): pushes go through the relay.
    EXPECT_THROW(session.openForward("127.0.0.1", static_cast<std::uint16_t>(m_collectorPort), 50011), ferry::Error);
    EXPECT_THROW(session.openForward("127.0.0.1", 50009, 50011), ferry::Error);
    EXPECT_THROW(session.openForward("127.0.0.1", 50008, 50011), ferry::Error);
    EXPECT_THROW(session.openForward("127.0.0.1", 22, 50011), ferry::Error);
    {
        // A command runs the forced relay, never what was asked.
        auto channel = session.exec("id");
        // Nothing to send: the relay passes the end on, and the collector
        // ends the session at once instead of at its authentication deadline.
        channel->closeWrite();
        std::string out;
        char buf[512];
        for (std::size_t n; (n = channel->readSome(buf, sizeof buf, ferry::deadlineIn(std::chrono::seconds(10)))) > 0;)
            out.append(buf, n);
        EXPECT_EQ(out.find("uid="), std::string::npos) << out;
    }

    // -R with OpenSSH's own client: refused by PermitListen none.
    const auto r =
        run({"ssh", "-F", "/dev/null", "-i", m_nodeState + "/id_ed25519", "-p", std::to_string(m_sshd->port()), "-o",
             "UserKnownHostsFile=" + m_nodeState + "/known_hosts", "-o", "BatchMode=yes", "-o",
             "ExitOnForwardFailure=yes", "-N", "-R", "0:127.0.0.1:22", "ferry-tunnel@127.0.0.1"},
            {}, {}, std::chrono::seconds(20));
    EXPECT_NE(r.exitCode, 0);
    EXPECT_NE(r.err.find("remote port forwarding failed"), std::string::npos) << r.err;
    // And a pty or shell is refused too.
    const auto shell = run({"ssh", "-F", "/dev/null", "-i", m_nodeState + "/id_ed25519", "-p",
                            std::to_string(m_sshd->port()), "-o", "UserKnownHostsFile=" + m_nodeState + "/known_hosts",
                            "-o", "BatchMode=yes", "-tt", "ferry-tunnel@127.0.0.1", "id"},
                           {}, {}, std::chrono::seconds(20));
    EXPECT_EQ(shell.out.find("uid="), std::string::npos) << shell.out;
}

} // namespace
} // namespace ferry::test
