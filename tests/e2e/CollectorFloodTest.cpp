// Issue 12, item 3: idle connections must not stop genuine pushes. A local
// user on the master (or an enrolled node through its tunnel) opens 500
// connections to the collector and sends nothing; a genuine push must still
// get through at once, and the flood must not flood the journal.

#include <gtest/gtest.h>

#include <pwd.h>
#include <signal.h>

#include <filesystem>
#include <sstream>

#include "CollectorConnector.h"
#include "PushCycle.h"
#include "ferry/Bus.h"
#include "ferry/Crypto.h"
#include "ferry/MasterStore.h"
#include "support/IdleFlood.h"
#include "support/TestSupport.h"

namespace ferry::test {
namespace {

class ACollectorUnderAnIdleFlood : public ::testing::Test {
protected:
    void SetUp() override
    {
        if (!isRoot())
            GTEST_SKIP() << "needs root (the attacker runs as another uid)";
        std::filesystem::create_directories(m_dir / "master");
        m_secret = generateSecret();
        MasterStore(m_dir / "master/master.db").addNode("web1", m_secret);
        m_port = freePort();
        m_collector.emplace(
            std::vector<std::string>{"/usr/bin/systemd-socket-activate", "-l", "127.0.0.1:" + std::to_string(m_port),
                                     "-E", "FERRY_STATE_DIR=" + (m_dir / "master"), "-E",
                                     "DBUS_SYSTEM_BUS_ADDRESS=" + m_bus.address(),
                                     buildPath("services/collectord/ferry-collectord"), "--idle-timeout=60"},
            std::map<std::string, std::string>{}, m_dir / "collectord.log");
        m_spool.emplace(m_dir / "spool.db", SpoolLimits{});
        // The first push starts collectord and shows the normal time.
        ASSERT_TRUE(waitUntil([&] { return push(); }, std::chrono::seconds(10))) << log();
        const auto started = Clock::now();
        ASSERT_TRUE(push()) << log();
        m_normal = Clock::now() - started;
    }

    bool push()
    {
        for (int i = 0; i < 20; ++i)
            m_spool->append("k", "v", nowMs());
        pushd::TcpCollectorConnector connector("127.0.0.1", static_cast<std::uint16_t>(m_port));
        pushd::PushCycleOptions o;
        o.nodeName = "web1";
        o.secret = m_secret;
        o.ioTimeout = std::chrono::seconds(5);
        try {
            auto link = connector.connect({});
            pushd::runPushCycle(link->stream(), *m_spool, o);
            return true;
        } catch (const std::exception& e) {
            m_lastError = e.what();
            return false;
        }
    }

    std::string log() const { return readFile(m_dir / "collectord.log"); }

    static int countLines(const std::string& text, const std::string& needle)
    {
        std::istringstream in(text);
        int n = 0;
        for (std::string line; std::getline(in, line);)
            n += line.find(needle) != std::string::npos;
        return n;
    }

    void genuinePushSucceedsAtOnce()
    {
        const auto started = Clock::now();
        EXPECT_TRUE(push()) << m_lastError << "\n" << log();
        const auto took = Clock::now() - started;
        EXPECT_LT(took, m_normal + std::chrono::seconds(1))
            << "normal " << std::chrono::duration_cast<std::chrono::milliseconds>(m_normal).count() << " ms, took "
            << std::chrono::duration_cast<std::chrono::milliseconds>(took).count() << " ms";
        std::cout << "push under the flood: "
                  << std::chrono::duration_cast<std::chrono::milliseconds>(took).count() << " ms (normal "
                  << std::chrono::duration_cast<std::chrono::milliseconds>(m_normal).count() << " ms)\n";
    }

    TempDir m_dir;
    TestBus m_bus;
    std::string m_secret;
    int m_port = 0;
    std::optional<Process> m_collector;
    std::optional<Spool> m_spool;
    std::chrono::steady_clock::duration m_normal{};
    std::string m_lastError;
};

TEST_F(ACollectorUnderAnIdleFlood, StillTakesAGenuinePushWhileAnotherLocalUserHolds500Connections)
{
    const passwd* nobody = ::getpwnam("nobody");
    ASSERT_NE(nobody, nullptr);
    IdleFlood flood({"127.0.0.1", m_port, 500, {}, static_cast<int>(nobody->pw_uid), static_cast<int>(nobody->pw_gid)});
    std::cout << "flood: " << flood.connected() << " connected, " << flood.held() << " held open\n";
    EXPECT_GE(flood.connected(), 400);
    genuinePushSucceedsAtOnce();
    // Another uid cannot take more than its own share of the slots.
    EXPECT_LE(flood.stillOpen(), 16);
}

TEST_F(ACollectorUnderAnIdleFlood, StillTakesAGenuinePushWhileItsOwnUidHolds500Connections)
{
    // The same uid as the genuine client: what an enrolled node can do
    // through the tunnel every node shares. Its idle connections are the
    // oldest unauthenticated ones, so the newcomer takes their place.
    IdleFlood flood({"127.0.0.1", m_port, 500, {}, -1, -1});
    std::cout << "flood: " << flood.connected() << " connected, " << flood.held() << " held open\n";
    EXPECT_GE(flood.connected(), 400);
    genuinePushSucceedsAtOnce();
}

TEST_F(ACollectorUnderAnIdleFlood, SummarisesTheRefusalsInOneLineInsteadOfOnePerConnection)
{
    {
        const passwd* nobody = ::getpwnam("nobody");
        ASSERT_NE(nobody, nullptr);
        IdleFlood flood(
            {"127.0.0.1", m_port, 500, {}, static_cast<int>(nobody->pw_uid), static_cast<int>(nobody->pw_gid)});
        ASSERT_GE(flood.connected(), 400);
    }
    m_collector->signal(SIGTERM);
    ASSERT_TRUE(m_collector->wait(std::chrono::seconds(20)).has_value()) << log();
    const auto text = log();
    // Today: one "Refusing a connection" line per refused connection.
    EXPECT_LE(countLines(text, "Refus"), 0) << text;
    EXPECT_LE(countLines(text, ": warning: "), 2) << text;
    EXPECT_EQ(countLines(text, "collector connections:"), 1) << text;
    EXPECT_NE(text.find("uid " + std::to_string(::getpwnam("nobody")->pw_uid) + " on loopback"), std::string::npos)
        << text;
}

} // namespace
} // namespace ferry::test
