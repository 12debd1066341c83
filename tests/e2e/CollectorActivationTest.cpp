// collectord as systemd starts it: the listening socket passed in
// (systemd-socket-activate implements the same sd_listen_fds protocol as
// PID 1), and exit after an idle period.

#include <gtest/gtest.h>

#include <filesystem>

#include "CollectorConnector.h"
#include "PushCycle.h"
#include "ferry/Bus.h"
#include "ferry/Crypto.h"
#include "ferry/MasterStore.h"
#include "support/TestSupport.h"

namespace ferry::test {
namespace {

TEST(ASocketActivatedCollector, ServesTheSocketItIsGivenAndExitsWhenIdle)
{
    TempDir dir;
    TestBus bus;
    std::filesystem::create_directories(dir / "master");
    const std::string secret = generateSecret();
    MasterStore(dir / "master/master.db").addNode("web1", secret);
    const int port = freePort();
    // systemd-socket-activate passes on only the environment named with -E.
    Process collector({"/usr/bin/systemd-socket-activate", "-l", "127.0.0.1:" + std::to_string(port), "-E",
                       "FERRY_STATE_DIR=" + (dir / "master"), "-E", "DBUS_SYSTEM_BUS_ADDRESS=" + bus.address(),
                       buildPath("services/collectord/ferry-collectord"), "-v", "--idle-timeout=2"},
                      {{"FERRY_STATE_DIR", dir / "master"}}, dir / "collectord.log");

    Spool spool(dir / "spool.db", {});
    for (int i = 0; i < 30; ++i)
        spool.append("k", "v", nowMs());
    pushd::TcpCollectorConnector connector("127.0.0.1", static_cast<std::uint16_t>(port));
    pushd::PushCycleOptions o;
    o.nodeName = "web1";
    o.secret = secret;
    ASSERT_TRUE(waitUntil([&] {
        try {
            auto link = connector.connect({});
            pushd::runPushCycle(link->stream(), spool, o);
            return true;
        } catch (const std::exception&) {
            return false;
        }
    }, std::chrono::seconds(10))) << readFile(dir / "collectord.log");
    EXPECT_EQ(MasterStore(dir / "master/master.db").countRecords("web1"), 30u);
    EXPECT_NE(readFile(dir / "collectord.log").find("the sockets from systemd"), std::string::npos)
        << readFile(dir / "collectord.log");
    // Nothing to do: it leaves, and systemd would keep the socket.
    EXPECT_TRUE(collector.wait(std::chrono::seconds(15)).has_value()) << "collectord did not exit when idle";
}

std::int64_t counter(const std::string& db, const std::string& name, const std::string& labels)
{
    for (const auto& c : MasterStore(db).counters())
        if (c.name == name && c.labels == labels)
            return c.value;
    return 0;
}

TEST(ASocketActivatedCollector, CountsSessionsRecordsAndEpochsInTheStoreAcrossRestarts)
{
    TempDir dir;
    TestBus bus;
    std::filesystem::create_directories(dir / "master");
    const std::string db = dir / "master/master.db";
    const std::string secret = generateSecret();
    MasterStore(db).addNode("web1", secret);
    Spool spool(dir / "spool.db", {});
    // Two collectord lives, as systemd would start them on two connections
    // far apart: a good push and a refused one in each.
    for (int life = 1; life <= 2; ++life) {
        const int port = freePort();
        Process collector({"/usr/bin/systemd-socket-activate", "-l", "127.0.0.1:" + std::to_string(port), "-E",
                           "FERRY_STATE_DIR=" + (dir / "master"), "-E", "DBUS_SYSTEM_BUS_ADDRESS=" + bus.address(),
                           buildPath("services/collectord/ferry-collectord"), "-v", "--idle-timeout=2"},
                          {{"FERRY_STATE_DIR", dir / "master"}}, dir / "collectord.log");
        for (int i = 0; i < 10; ++i)
            spool.append("k", "v", nowMs());
        pushd::TcpCollectorConnector connector("127.0.0.1", static_cast<std::uint16_t>(port));
        pushd::PushCycleOptions o;
        o.nodeName = "web1";
        o.secret = secret;
        ASSERT_TRUE(waitUntil(
            [&] {
                try {
                    auto link = connector.connect({});
                    pushd::runPushCycle(link->stream(), spool, o);
                    return true;
                } catch (const std::exception&) {
                    return false;
                }
            },
            std::chrono::seconds(10)))
            << readFile(dir / "collectord.log");
        pushd::PushCycleOptions wrong = o;
        wrong.secret = generateSecret();
        auto link = connector.connect({});
        EXPECT_ANY_THROW(pushd::runPushCycle(link->stream(), spool, wrong));
        link.reset();
        EXPECT_TRUE(waitUntil(
            [&] {
                return counter(db, "sessions", counterLabels({{"transport", "push"}, {"outcome", "refused"}})) == life;
            },
            std::chrono::seconds(10)))
            << readFile(dir / "collectord.log");
        EXPECT_TRUE(collector.wait(std::chrono::seconds(15)).has_value()) << "collectord did not exit when idle";
    }
    EXPECT_EQ(counter(db, "sessions", counterLabels({{"transport", "push"}, {"outcome", "ok"}})), 2);
    EXPECT_EQ(counter(db, "sessions", counterLabels({{"transport", "push"}, {"outcome", "refused"}})), 2);
    EXPECT_EQ(counter(db, "records_stored", counterLabels({{"via", "push"}})), 20);
    EXPECT_EQ(counter(db, "epochs_new", counterLabels({{"kind", "first"}})), 1);
    EXPECT_EQ(counter(db, "duplicates_refused", counterLabels({{"via", "push"}})), 0);
}

} // namespace
} // namespace ferry::test
