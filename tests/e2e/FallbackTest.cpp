// The pull-absence fallback through the bus, with a shortened interval: what
// ferry-push-fallback.timer and the pull login shell do, done by hand; and
// the same through ferry-push-once, as the timers start it.

#include <sys/stat.h>

#include <gtest/gtest.h>

#include <filesystem>
#include <map>
#include <sstream>
#include <thread>

#include "PushFixture.h"

namespace ferry::test {
namespace {

class TheFallback : public PushFixture {
protected:
    void SetUp() override
    {
        PushFixture::SetUp();
        if (IsSkipped())
            return;
        std::string yml = readFile(m_nodeConfig + "/ferry.yml");
        yml.replace(yml.find("mode: push"), 10, "mode: auto\n  pull_absence: 2");
        writeFile(m_nodeConfig + "/ferry.yml", yml);
    }
    std::string call(const std::string& method)
    {
        return run({"busctl", "--system", "call", "org.ferry.Push1", "/org/ferry/Push1", "org.ferry.Push1", method},
                   {{"DBUS_SYSTEM_BUS_ADDRESS", m_bus->address()}})
            .out;
    }
};

TEST_F(TheFallback, TurnsPushOnWhenNoPullCameAndOffWhenPullsResume)
{
    ASSERT_EQ(sample().exitCode, 0);
    // Fresh node: waiting for a first pull, push off, scheduled pushes skip.
    const auto first = call("Evaluate");
    EXPECT_NE(first.find("bs false \"waiting for a first pull"), std::string::npos) << first;
    auto r = ferryctl({"push", "--scheduled"});
    EXPECT_EQ(r.exitCode, 0) << r.err;
    EXPECT_NE(r.out.find("skipped"), std::string::npos) << r.out;
    EXPECT_EQ(storedAtMaster(), 0u);

    // No pull within the interval: the next evaluation turns push on, and
    // the scheduled push now delivers.
    ASSERT_TRUE(waitUntil([&] { return call("Evaluate").find("bs true") != std::string::npos; }, std::chrono::seconds(10)));
    EXPECT_NE(busProperty("Reason").find("no pull since"), std::string::npos) << busProperty("Reason");
    r = ferryctl({"push", "--scheduled"});
    ASSERT_EQ(r.exitCode, 0) << r.err;
    EXPECT_GT(storedAtMaster(), 0u);

    // A pull arrives (the login shell calls NotePull): push turns off again.
    call("NotePull");
    EXPECT_EQ(busProperty("Active"), "b false\n");
    EXPECT_NE(busProperty("Reason").find("last pull at"), std::string::npos);
    const auto status = ferryctl({"status"});
    EXPECT_NE(status.out.find("Push: off (last pull at"), std::string::npos) << status.out;
    // …and on again once pulls stop for the interval.
    EXPECT_TRUE(waitUntil([&] { return call("Evaluate").find("bs true") != std::string::npos; }, std::chrono::seconds(10)));
}

// ferry-push.service and ferry-push-fallback.service run ferry-push-once,
// without the bus, while a daemon started by the bus may be running beside
// them: both must see one state, and neither may undo what the other wrote.
TEST_F(TheFallback, WorksTheSameWhenItsTimersRunPushdOnceWithoutTheBus)
{
    ASSERT_EQ(sample().exitCode, 0);
    // The property read activates a daemon that stays up through the test.
    EXPECT_EQ(busProperty("Active"), "b false\n");
    auto r = pushdOnce("--cycle");
    EXPECT_EQ(r.exitCode, 0) << r.err;
    EXPECT_NE(r.err.find("Push skipped: waiting for a first pull"), std::string::npos) << r.err;
    EXPECT_EQ(storedAtMaster(), 0u);

    ASSERT_TRUE(
        waitUntil([&] { return pushdOnce("--evaluate").err.find("Push on: no pull since") != std::string::npos; },
                  std::chrono::seconds(10)));
    r = pushdOnce("--cycle");
    ASSERT_EQ(r.exitCode, 0) << r.err << collectorLog();
    EXPECT_NE(r.err.find("pushed "), std::string::npos) << r.err;
    EXPECT_GT(storedAtMaster(), 0u);
    // The running daemon reports the cycle that another process ran.
    EXPECT_NE(busProperty("LastResult").find("success: pushed "), std::string::npos) << busProperty("LastResult");
    EXPECT_NE(ferryctl({"status"}).out.find("success: pushed "), std::string::npos);

    // A pull noted through the daemon holds for the next one-shot run.
    call("NotePull");
    r = pushdOnce("--cycle");
    EXPECT_EQ(r.exitCode, 0) << r.err;
    EXPECT_NE(r.err.find("Push skipped: last pull at"), std::string::npos) << r.err;
    EXPECT_NE(busProperty("LastPull"), "t 0\n");
    EXPECT_EQ(busProperty("Active"), "b false\n");
}

// Every scheduled cycle evaluates the fallback first: a state that did not
// change is not written again (a write is two syncs before the push).
TEST_F(TheFallback, WritesItsStateOnlyWhenItChanges)
{
    const std::string state = m_nodeState + "/push-state";
    auto inode = [&] {
        struct stat st {};
        return ::stat(state.c_str(), &st) == 0 ? st.st_ino : 0;
    };
    auto r = pushdOnce("--evaluate");
    ASSERT_EQ(r.exitCode, 0) << r.err;
    const auto first = inode();
    ASSERT_NE(first, 0u) << "the first evaluation starts the absence clock and writes it";
    r = pushdOnce("--evaluate");
    ASSERT_EQ(r.exitCode, 0) << r.err;
    EXPECT_EQ(inode(), first) << "nothing changed: the file was not replaced";
    // A change (the interval passes: push turns on) is written.
    ASSERT_TRUE(
        waitUntil([&] { return pushdOnce("--evaluate").err.find("Push on: no pull since") != std::string::npos; },
                  std::chrono::seconds(10)));
    EXPECT_NE(inode(), first);
}

// Started by systemd, stderr is the journal's stream: each line then leads
// with its syslog priority, which journald keeps as the entry's PRIORITY
// (no libsystemd needed). A JOURNAL_STREAM that names another file (one a
// parent had) is not ours: then the lines are plain, with the program's name.
TEST_F(TheFallback, LogsWithPrioritiesOnlyWhenStderrIsTheJournalStream)
{
    const std::string bin = buildPath("services/pushd/ferry-push-once");
    const std::string log = *m_root / "journal-stream";
    const std::map<std::string, std::string> env{{"DBUS_SYSTEM_BUS_ADDRESS", "unix:path=" + *m_root / "no-bus-here"}};
    auto r = run({"sh", "-c", "exec 2>\"$1\"; export JOURNAL_STREAM=$(stat -c %d:%i \"$1\"); exec \"$2\" --evaluate",
                  "sh", log, bin},
                 env);
    ASSERT_EQ(r.exitCode, 0) << readFile(log);
    const std::string lines = readFile(log);
    // The fixture's ferry.yml uses deprecated keys: a warning comes first.
    EXPECT_EQ(lines.rfind("<4>Deprecated keys in ", 0), 0u) << lines;
    EXPECT_NE(lines.find("\n<6>Push off: waiting for a first pull"), std::string::npos) << lines;
    std::istringstream in(lines);
    for (std::string line; std::getline(in, line);)
        EXPECT_EQ(line.rfind("<", 0), 0u) << line;
    EXPECT_EQ(lines.find("ferry-push-once["), std::string::npos) << lines;

    r = run({"sh", "-c", "export JOURNAL_STREAM=1:2; exec \"$1\" --evaluate", "sh", bin}, env);
    ASSERT_EQ(r.exitCode, 0) << r.err;
    EXPECT_NE(r.err.find("ferry-push-once["), std::string::npos) << r.err;
    EXPECT_EQ(r.err.find("<6>"), std::string::npos) << r.err;
}

TEST_F(TheFallback, AsksForAFreshReachabilityCheckAndItsFirstPushCarriesTheVerdict)
{
    // A verdict from before the pulls stopped: it must not be what the
    // master is told while pulls fail.
    const std::string result = m_nodeState + "/fwcheck.json";
    writeFile(result, R"({"verdict":"reachable","lastCheck":1000,"findings":[],"masters":[]})");
    ASSERT_EQ(sample().exitCode, 0);
    EXPECT_FALSE(std::filesystem::exists(m_nodeState + "/fwcheck-request"));
    ASSERT_TRUE(
        waitUntil([&] { return call("Evaluate").find("bs true") != std::string::npos; }, std::chrono::seconds(10)));
    // Push turned on: pushd asked (ferry-fwcheckd.path starts fwcheckd for
    // this file; fwcheckd itself is tested in tests/fwcheck).
    const auto request = readFile(m_nodeState + "/fwcheck-request");
    EXPECT_NE(request.find("requested_ms="), std::string::npos) << request;
    EXPECT_NE(request.find("no pull since"), std::string::npos) << request;
    // Asked once: further evaluations while push stays on do not ask again.
    const auto asked = std::filesystem::last_write_time(m_nodeState + "/fwcheck-request");
    call("Evaluate");
    EXPECT_EQ(std::filesystem::last_write_time(m_nodeState + "/fwcheck-request"), asked);

    // fwcheckd answers a moment later, while the scheduled push waits for it.
    std::thread fwcheckd([&] {
        std::this_thread::sleep_for(std::chrono::milliseconds(700));
        const auto now =
            std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::system_clock::now().time_since_epoch())
                .count();
        writeFile(result + ".tmp", R"({"verdict":"blocked","lastCheck":)" + std::to_string(now) +
                                       R"(,"findings":[{"id":"firewall.blocked","severity":"error","message":)"
                                       R"("INPUT drops 192.0.2.10","fix":"iptables -D INPUT 1"}],"masters":[]})");
        std::filesystem::rename(result + ".tmp", result);
    });
    const auto r = ferryctl({"push", "--scheduled"});
    fwcheckd.join();
    ASSERT_EQ(r.exitCode, 0) << r.err;
    const auto show = ferryctlMaster({"show", "test-node"});
    EXPECT_NE(show.out.find("Diagnosis:    blocked (checked"), std::string::npos) << show.out << show.err;
    EXPECT_NE(show.out.find("iptables -D INPUT 1"), std::string::npos) << show.out;
}

} // namespace
} // namespace ferry::test
