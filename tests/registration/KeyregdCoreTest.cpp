// keyregd's core: the known_hosts text it pins for pushd (OpenSSH's format)
// and the backoff between failed rounds.

#include <gtest/gtest.h>

#include <set>

#include "Manager.h"
#include "support/TestSupport.h"

namespace keyregd {
namespace {

const std::string kKey = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIHcvOvN3ZMbPqg0zKXz6gYvXz5xC0mJ0W3pZrN2y8c4L";

TEST(PinnedHostKeys, UseOpenSshHostFormsAndOnlyAcceptedMasters)
{
    std::vector<MasterRecord> masters{
        {"192.0.2.10", 22, 50010, "accepted", "", {kKey}, 0, 0, "", ""},
        {"2001:db8::1", 22, 50010, "accepted", "", {kKey}, 0, 0, "", ""},
        {"2001:db8::2", 2222, 50010, "accepted", "", {kKey}, 0, 0, "", ""},
        {"master.example", 2200, 50010, "accepted", "", {kKey, kKey}, 0, 0, "", ""},
        {"192.0.2.11", 22, 50010, "declined", "no", {kKey}, 0, 0, "", ""},
        {"192.0.2.12", 22, 50010, "pending", "", {}, 0, 0, "", ""},
    };
    EXPECT_EQ(Manager::knownHostsText(masters),
              "192.0.2.10 " + kKey + "\n" + "2001:db8::1 " + kKey + "\n" + "[2001:db8::2]:2222 " + kKey + "\n" +
                  "[master.example]:2200 " + kKey + "\n" + "[master.example]:2200 " + kKey + "\n");
    EXPECT_EQ(Manager::knownHostsText({masters[4], masters[5]}), "");
}

} // namespace
} // namespace keyregd

namespace keyregd {
namespace {

TEST(RetriesAfterFailedRounds, BackOffExponentiallyWithJitterUpToTheCap)
{
    ferry::test::TempDir dir;
    ferry::Paths paths;
    paths.configDir = dir.path();
    paths.stateDir = dir.path();
    ferry::NodeConfig config;
    config.nodeName = "n1";
    // A closed loopback port: every round fails at once with "connection refused".
    config.masters.push_back({"127.0.0.1", 22, static_cast<std::uint16_t>(ferry::test::freePort())});
    config.connectTimeout = std::chrono::seconds(2);
    Manager manager(paths, config, {std::chrono::milliseconds(100), std::chrono::milliseconds(1000)});
    manager.prepare();
    const std::vector<std::pair<int, int>> bounds{{50, 100}, {100, 200}, {200, 400}, {400, 800}, {500, 1000}, {500, 1000}};
    for (const auto& [low, high] : bounds) {
        ASSERT_TRUE(manager.registerOnce()) << "a failed round asks for another";
        const auto d = manager.nextDelay().count();
        EXPECT_GE(d, low);
        EXPECT_LE(d, high);
    }
    EXPECT_EQ(manager.status().state, "failing");
    EXPECT_NE(manager.status().lastError.find("127.0.0.1:" + std::to_string(config.masters[0].registryPort)),
              std::string::npos)
        << manager.status().lastError;
    // The jitter spreads nodes that failed together.
    std::set<long> delays;
    for (int i = 0; i < 20; ++i)
        delays.insert(manager.nextDelay().count());
    EXPECT_GT(delays.size(), 5u);
}

} // namespace
} // namespace keyregd
