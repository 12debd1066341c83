// ferry::FileWatch on real files: a file replaced by rename (as
// writeFileAtomic and fwcheckd write) wakes a waiter at once, other names in
// the same directory do not, and the wait ends at its deadline.

#include <gtest/gtest.h>

#include <chrono>
#include <future>
#include <thread>

#include "ferry/FileWatch.h"
#include "ferry/Files.h"
#include "support/TestSupport.h"

namespace {

using namespace ferry::test;
using Clock = std::chrono::steady_clock;

TEST(AFileWatch, WakesAWaiterWhenTheFileIsReplacedByRename)
{
    TempDir dir;
    ferry::FileWatch watch({dir / "fwcheck.json"});
    auto writer = std::async(std::launch::async, [&] {
        std::this_thread::sleep_for(std::chrono::milliseconds(100));
        ferry::writeFileAtomic(dir / "fwcheck.json", "{}\n");
    });
    const auto start = Clock::now();
    EXPECT_TRUE(watch.waitForChange(std::chrono::seconds(10)));
    // Woken by the rename, not by the deadline.
    EXPECT_LT(Clock::now() - start, std::chrono::seconds(5));
    writer.get();
}

TEST(AFileWatch, IgnoresOtherNamesInTheDirectoryAndEndsAtItsDeadline)
{
    TempDir dir;
    ferry::FileWatch watch({dir / "fwcheck.json"});
    writeFile(dir / "push-state", "x\n");
    ferry::writeFileAtomic(dir / "other.json", "{}\n");
    EXPECT_FALSE(watch.changed());
    const auto start = Clock::now();
    EXPECT_FALSE(watch.waitForChange(std::chrono::milliseconds(300)));
    EXPECT_GE(Clock::now() - start, std::chrono::milliseconds(300));
    writeFile(dir / "fwcheck.json", "{}\n");
    EXPECT_TRUE(watch.changed());
}

TEST(AFileWatch, WatchesEveryEntryOfADirectoryGivenWithASlash)
{
    TempDir dir;
    ferry::FileWatch watch({dir.path() + "/"});
    EXPECT_FALSE(watch.changed());
    writeFile(dir / "sshd_config.conf", "Port 22\n");
    EXPECT_TRUE(watch.waitForChange(std::chrono::seconds(5)));
}

} // namespace
