// ferry::BackgroundJobs behind a real async D-Bus method on a private
// dbus-daemon: the documented error past the limit and when no thread can
// start, every kind of exception mapped to its documented name, and the
// loop's idle exit held while a job runs or a timer (EventLoop::after) is
// pending.

#include <gtest/gtest.h>

#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <condition_variable>
#include <future>
#include <mutex>
#include <stdexcept>
#include <thread>

#include <sdbus-c++/sdbus-c++.h>

#include "ferry/BackgroundJobs.h"
#include "support/TestSupport.h"

namespace {

using namespace ferry::test;

const std::string kName = "org.ferry.Test1";
const std::string kPath = "/org/ferry/Test1";

// What a core would throw: the test's adaptor maps it to a name.
class NoSuchThing : public ferry::Error {
public:
    using Error::Error;
};

struct Reply {
    std::string errorName; // "" on success
    std::string text;      // the result or the error message
};

// Opens when told; jobs in "block" mode wait for it.
class Gate {
public:
    void open()
    {
        std::lock_guard lock(m_mutex);
        m_open = true;
        m_cv.notify_all();
    }
    void wait()
    {
        std::unique_lock lock(m_mutex);
        m_cv.wait(lock, [this] { return m_open; });
    }

private:
    std::mutex m_mutex;
    std::condition_variable m_cv;
    bool m_open = false;
};

class BackgroundJobsOnABus : public ::testing::Test {
protected:
    void start(std::size_t limit, std::chrono::milliseconds idle)
    {
        m_connection = sdbus::createSystemBusConnection();
        m_loop = std::make_unique<ferry::EventLoop>(*m_connection, idle);
        m_jobs = std::make_unique<ferry::BackgroundJobs>(
            *m_loop, kName, limit, [](const std::exception& e) -> std::optional<ferry::BusError> {
                if (dynamic_cast<const NoSuchThing*>(&e))
                    return ferry::BusError(kName + ".Error.NoSuchThing", e.what());
                return std::nullopt;
            });
        m_object = sdbus::createObject(*m_connection, kPath);
        m_object->registerMethod("Run").onInterface(kName).implementedAs(
            [this](sdbus::Result<std::string>&& result, const std::string& mode) {
                m_jobs->reply("Run", std::move(result), [this, mode]() -> std::string {
                    ++m_started;
                    if (mode == "block")
                        m_gate.wait();
                    else if (mode == "domain")
                        throw NoSuchThing("Failed to find thing 7: there is none");
                    else if (mode == "named")
                        throw ferry::BusError(kName + ".Error.Named", "a BusError keeps its name");
                    else if (mode == "other")
                        throw std::runtime_error("Failed to do something: disk on fire");
                    else if (mode == "int")
                        throw 42;
                    return "done " + mode;
                });
            });
        m_object->finishRegistration();
        m_loopThread = std::thread([this] {
            m_loop->run(kName);
            m_loopEnded = true;
        });
        ASSERT_TRUE(waitUntil([] { return call("ping").errorName.empty(); }, std::chrono::seconds(30)))
            << "the test service did not come up on the private bus";
    }

    void TearDown() override
    {
        m_gate.open();
        if (m_loopThread.joinable()) {
            if (!m_loopEnded)
                m_loop->stop();
            m_loopThread.join();
        }
        m_object.reset();
        m_jobs.reset();
        m_loop.reset();
    }

    // One call on a connection of its own (so that calls can overlap).
    static Reply call(const std::string& mode)
    {
        try {
            auto proxy = sdbus::createProxy(kName, kPath);
            std::string out;
            proxy->callMethod("Run")
                .onInterface(kName)
                .withArguments(mode)
                .withTimeout(std::chrono::seconds(20))
                .storeResultsTo(out);
            return {"", out};
        } catch (const sdbus::Error& e) {
            return {e.getName(), e.getMessage()};
        }
    }

    TestBus m_bus;
    std::unique_ptr<sdbus::IConnection> m_connection;
    std::unique_ptr<ferry::EventLoop> m_loop;
    std::unique_ptr<ferry::BackgroundJobs> m_jobs;
    std::unique_ptr<sdbus::IObject> m_object;
    std::thread m_loopThread;
    std::atomic<bool> m_loopEnded{false};
    std::atomic<int> m_started{0};
    Gate m_gate;
};

TEST_F(BackgroundJobsOnABus, RefusesAJobPastItsLimitWithTheDocumentedBusyError)
{
    start(2, std::chrono::milliseconds(0));
    const int before = m_started;
    auto first = std::async(std::launch::async, [] { return call("block"); });
    auto second = std::async(std::launch::async, [] { return call("block"); });
    ASSERT_TRUE(waitUntil([&] { return m_started == before + 2; })) << "the two jobs did not start";

    const Reply third = call("quick");
    EXPECT_EQ(third.errorName, kName + ".Error.Busy");
    EXPECT_NE(third.text.find("2 jobs are running"), std::string::npos) << third.text;
    EXPECT_EQ(m_started, before + 2) << "the refused job ran anyway";

    m_gate.open();
    EXPECT_EQ(first.get().text, "done block");
    EXPECT_EQ(second.get().text, "done block");
    // A slot is free again once a job has answered.
    const Reply fourth = call("quick");
    EXPECT_EQ(fourth.errorName, "");
    EXPECT_EQ(fourth.text, "done quick");
}

TEST_F(BackgroundJobsOnABus, MapsEveryExceptionToADocumentedError)
{
    start(4, std::chrono::milliseconds(0));
    const Reply domain = call("domain");
    EXPECT_EQ(domain.errorName, kName + ".Error.NoSuchThing");
    EXPECT_EQ(domain.text, "Failed to find thing 7: there is none");

    const Reply named = call("named");
    EXPECT_EQ(named.errorName, kName + ".Error.Named");
    EXPECT_EQ(named.text, "a BusError keeps its name");

    const Reply other = call("other");
    EXPECT_EQ(other.errorName, kName + ".Error.Internal");
    EXPECT_EQ(other.text, "Failed to do something: disk on fire");

    const Reply unknown = call("int");
    EXPECT_EQ(unknown.errorName, kName + ".Error.Internal");

    // The daemon is still there and answers.
    EXPECT_EQ(call("after").text, "done after");
}

TEST_F(BackgroundJobsOnABus, HoldsIdleExitWhileAJobRuns)
{
    const auto idle = std::chrono::milliseconds(200);
    start(2, idle);
    auto blocked = std::async(std::launch::async, [] { return call("block"); });
    ASSERT_TRUE(waitUntil([&] { return m_started >= 2; })) << "the job did not start"; // ping + block

    // Many idle periods pass with nothing but the job: the loop stays.
    EXPECT_FALSE(waitUntil([&] { return m_loopEnded.load(); }, idle * 8))
        << "the loop exited for idleness while a job ran";

    m_gate.open();
    EXPECT_EQ(blocked.get().text, "done block");
    // With the job done, idleness ends the loop.
    EXPECT_TRUE(waitUntil([&] { return m_loopEnded.load(); }, std::chrono::seconds(10)))
        << "the loop did not exit once idle";
    EXPECT_TRUE(m_loop->exitedIdle());
}

std::int64_t msSinceEpochOfSteadyClock()
{
    return std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now().time_since_epoch())
        .count();
}

// EventLoop::after, the way a retry with backoff waits (keyregd's rounds):
// it runs once, on the loop thread, after its delay; a pending timer holds
// idle exit; a cancelled one neither runs nor holds.
TEST_F(BackgroundJobsOnABus, RunsATimerOnceAfterItsDelayAndHoldsIdleExitUntilThen)
{
    const auto idle = std::chrono::milliseconds(200);
    start(2, idle);
    std::atomic<int> fired{0};
    std::atomic<int> cancelledFired{0};
    std::atomic<bool> onLoopThread{false};
    std::atomic<std::int64_t> scheduledAt{0};
    std::atomic<std::int64_t> firedAt{0};
    const auto loopThread = m_loopThread.get_id();
    m_loop->post([&] {
        scheduledAt = msSinceEpochOfSteadyClock();
        m_loop->after(idle * 8, [&] {
            firedAt = msSinceEpochOfSteadyClock();
            onLoopThread = std::this_thread::get_id() == loopThread;
            ++fired;
        });
        const auto dropped = m_loop->after(idle * 30, [&] { ++cancelledFired; });
        m_loop->after(idle, [this, dropped] { m_loop->cancel(dropped); });
    });
    // Many idle periods pass with nothing but the timer: the loop stays.
    ASSERT_TRUE(waitUntil([&] { return fired.load() == 1 || m_loopEnded.load(); }, std::chrono::seconds(20)));
    EXPECT_EQ(fired, 1) << "the loop exited for idleness while a timer was pending";
    EXPECT_GE(firedAt - scheduledAt, (idle * 8).count()) << "the timer ran before its delay";
    EXPECT_TRUE(onLoopThread) << "the timer ran off the loop thread";
    // The cancelled timer holds nothing: idleness ends the loop long before it was due.
    EXPECT_TRUE(waitUntil([&] { return m_loopEnded.load(); }, idle * 20)) << "a cancelled timer held the loop";
    EXPECT_EQ(fired, 1) << "the timer ran twice";
    EXPECT_EQ(cancelledFired, 0) << "a cancelled timer ran";
}

// Under a task limit the kernel refuses the thread (EAGAIN): the job is
// refused with the documented error instead of std::system_error escaping
// into sdbus-c++, which aborts the daemon.
TEST(BackgroundJobs, RefusesWithBusyWhenNoThreadCanBeCreated)
{
    if (!isRoot())
        GTEST_SKIP() << "needs root to run a child as nobody under RLIMIT_NPROC (root ignores the limit)";
    TestBus bus;
    auto connection = sdbus::createSystemBusConnection();
    const pid_t pid = ::fork();
    ASSERT_GE(pid, 0);
    if (pid == 0) {
        // The child has one thread; no other thread can hold a lock here.
        if (::setgid(65534) != 0 || ::setuid(65534) != 0)
            ::_exit(10);
        const rlimit none{0, 0};
        if (::setrlimit(RLIMIT_NPROC, &none) != 0)
            ::_exit(11);
        ferry::EventLoop loop(*connection, std::chrono::milliseconds(0));
        ferry::BackgroundJobs jobs(loop, kName, 4);
        std::string name;
        bool ran = false;
        jobs.start(
            "Run", [] { return 1; }, [&](int) { ran = true; }, [&](const sdbus::Error& e) { name = e.getName(); });
        if (ran)
            ::_exit(12);
        if (name != kName + ".Error.Busy")
            ::_exit(13);
        if (jobs.running() != 0)
            ::_exit(14);
        ::_exit(0);
    }
    int status = 0;
    ASSERT_EQ(::waitpid(pid, &status, 0), pid);
    ASSERT_TRUE(WIFEXITED(status)) << "the child died of signal " << WTERMSIG(status) << " (an abort?)";
    EXPECT_EQ(WEXITSTATUS(status), 0) << "10/11: could not drop to nobody under RLIMIT_NPROC; 12: the job ran;"
                                         " 13: not refused with Error.Busy; 14: still counted as running";
}

} // namespace
