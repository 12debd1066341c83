// org.ferry.Push1's shipped bus policy on a bus with the system defaults:
// pushd (user ferry) owns the name; anyone may read properties; only root
// and ferry may start pushes; only ferry may report a pull.

#include <sys/stat.h>

#include <filesystem>

#include <gtest/gtest.h>

#include "support/PolicyBus.h"
#include "support/TestSshd.h"

namespace ferry::test {
namespace {

TEST(ThePushPolicy, LetsAnyoneReadButOnlyRootAndFerryPushAndOnlyFerryReportPulls)
{
    if (!isRoot())
        GTEST_SKIP() << "needs root: runs clients as users ferry and nobody";
    ensureUser("ferry", "/usr/sbin/nologin");
    TempDir dir;
    ::chmod(dir.path().c_str(), 0755);
    std::filesystem::create_directories(dir / "state");
    writeFile(dir / "etc/ferry.yml", "node:\n  name: policy-test\n  mode: auto\n");
    ASSERT_EQ(run({"chown", "ferry:ferry", dir / "state"}).exitCode, 0);
    PolicyBus bus({"dbus/org.ferry.Push1.conf"});

    auto argv = PolicyBus::asUser("ferry");
    argv.push_back(buildPathForAnyUser("services/pushd/ferry-pushd"));
    Process pushd(argv, {{"FERRY_STATE_DIR", dir / "state"}, {"FERRY_CONFIG_DIR", dir / "etc"}}, dir / "pushd.log");
    ASSERT_TRUE(waitUntil([&] {
        return bus.busctlAs("root", {"status", "org.ferry.Push1"}).exitCode == 0 || !pushd.running();
    })) << readFile(dir / "pushd.log");
    ASSERT_TRUE(pushd.running()) << readFile(dir / "pushd.log");

    const std::vector<std::string> push{"call", "org.ferry.Push1", "/org/ferry/Push1", "org.ferry.Push1", "PushNow"};
    const std::vector<std::string> note{"call", "org.ferry.Push1", "/org/ferry/Push1", "org.ferry.Push1", "NotePull"};
    const std::vector<std::string> get{"get-property", "org.ferry.Push1", "/org/ferry/Push1", "org.ferry.Push1", "Mode"};

    auto r = bus.busctlAs("nobody", get);
    EXPECT_EQ(r.out, "s \"auto\"\n") << r.err;
    r = bus.busctlAs("nobody", push);
    EXPECT_NE(r.err.find("Access denied"), std::string::npos) << r.err;
    r = bus.busctlAs("nobody", note);
    EXPECT_NE(r.err.find("Access denied"), std::string::npos) << r.err;
    r = bus.busctlAs("root", note);
    EXPECT_NE(r.err.find("Access denied"), std::string::npos) << "only the login shell's user reports pulls: " << r.err;
    // Root may push; this node is not registered, and says so.
    r = bus.busctlAs("root", push);
    EXPECT_NE(r.err.find("not registered"), std::string::npos) << r.err;
    r = bus.busctlAs("ferry", note);
    EXPECT_EQ(r.exitCode, 0) << r.err;
    EXPECT_EQ(bus.busctlAs("nobody", {"get-property", "org.ferry.Push1", "/org/ferry/Push1", "org.ferry.Push1", "Active"}).out,
              "b false\n");
}

TEST(ThePushPolicy, KeepsTheNameFromEveryoneButFerry)
{
    if (!isRoot())
        GTEST_SKIP() << "needs root: runs pushd as user nobody";
    TempDir dir;
    ::chmod(dir.path().c_str(), 0777);
    PolicyBus bus({"dbus/org.ferry.Push1.conf"});
    auto argv = PolicyBus::asUser("nobody");
    argv.push_back(buildPathForAnyUser("services/pushd/ferry-pushd"));
    Process pushd(argv, {{"FERRY_STATE_DIR", dir.path()}, {"FERRY_CONFIG_DIR", dir.path()}}, dir / "pushd.log");
    ASSERT_TRUE(pushd.wait(std::chrono::seconds(10)).has_value()) << "pushd as nobody must not get the name";
    EXPECT_NE(readFile(dir / "pushd.log").find("Failed to acquire bus name org.ferry.Push1"), std::string::npos)
        << readFile(dir / "pushd.log");
}

} // namespace
} // namespace ferry::test
