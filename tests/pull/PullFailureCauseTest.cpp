// The cause pulld records for a failed pull, from the errors SshSession,
// SshNodeConnector and PullClient really throw (their messages as written
// there), and where it is kept.
#include <gtest/gtest.h>

#include <unistd.h>

#include <filesystem>

#include "FailureCause.h"
#include "ferry/Error.h"
#include "ferry/Sqlite.h"

using pulld::classifyPullFailure;
using pulld::FailureCause;

namespace {
FailureCause of(const std::exception& e)
{
    return classifyPullFailure(e);
}
} // namespace

TEST(APullFailure, IsConnectionRefusedWhenNothingListens)
{
    EXPECT_EQ(of(ferry::Error("Failed to connect to ferry@192.0.2.11:22: Connection refused")),
              FailureCause::ConnectionRefused);
}

TEST(APullFailure, IsTimeoutWhenTheConnectOrAReadTimesOut)
{
    EXPECT_EQ(of(ferry::Error("Failed to connect to ferry@192.0.2.12:22: timed out after 3000 ms")),
              FailureCause::Timeout);
    EXPECT_EQ(of(ferry::TimeoutError("Failed to connect to ferry@192.0.2.12:22: Timeout connecting")),
              FailureCause::Timeout);
    EXPECT_EQ(of(ferry::TimeoutError("Timed out reading from 192.0.2.12:22")), FailureCause::Timeout);
}

TEST(APullFailure, IsUnreachableWithoutARoute)
{
    EXPECT_EQ(of(ferry::Error("Failed to connect to ferry@192.0.2.99:22: No route to host")),
              FailureCause::Unreachable);
}

TEST(APullFailure, TellsAChangedHostKeyFromAMissingPin)
{
    EXPECT_EQ(of(ferry::AuthError("Refusing ferry@192.0.2.11:22: its host key differs from the pinned one "
                                  "(offered SHA256:abc)")),
              FailureCause::HostKeyMismatch);
    EXPECT_EQ(of(ferry::AuthError("Refusing ferry@192.0.2.11:22: its host key is not pinned in "
                                  "/var/lib/ferry/pull_known_hosts (offered SHA256:abc)")),
              FailureCause::HostKeyUnknown);
}

TEST(APullFailure, IsAuthRefusedWhenSshdRefusesTheKey)
{
    EXPECT_EQ(of(ferry::AuthError("Failed to authenticate to ferry@192.0.2.13:22: the master refused this node's key")),
              FailureCause::AuthRefused);
}

TEST(APullFailure, IsShellRefusedWhenTheSessionEndsBeforeThePullProtocol)
{
    EXPECT_EQ(of(ferry::ClosedError("Lost ferry@192.0.2.13:22: Socket error: disconnected")),
              FailureCause::ShellRefused);
    EXPECT_EQ(of(ferry::Error("Failed to run 'fetch 0' on ferry@192.0.2.13:22: Channel request exec failed")),
              FailureCause::ShellRefused);
}

TEST(APullFailure, IsSecretMismatchWhenTheNodesProofFails)
{
    EXPECT_EQ(of(ferry::AuthError("Failed to authenticate to node n1 (is the node secret right?)")),
              FailureCause::SecretMismatch);
}

TEST(APullFailure, IsRecordedPerNodeReplacingTheLastOne)
{
    const auto path = std::filesystem::temp_directory_path() / ("pull-failure-" + std::to_string(::getpid()) + ".db");
    std::filesystem::remove(path);
    {
        ferry::Database db(path.string());
        pulld::recordPullFailure(db, "n1", 1000, ferry::Error("Failed to connect to x: Connection refused"));
        pulld::recordPullFailure(db, "n1", 2000, ferry::Error("Failed to connect to x: timed out after 3000 ms"));
        ferry::Statement s(db, "SELECT count(*), max(at), max(cause) FROM pull_failure WHERE node = 'n1'");
        ASSERT_TRUE(s.step());
        EXPECT_EQ(s.int64(0), 1);
        EXPECT_EQ(s.int64(1), 2000);
        EXPECT_EQ(s.text(2), "timeout");
    }
    std::filesystem::remove(path);
}
