// The cause pulld records for a failed pull, from the errors SshSession,
// SshNodeConnector and PullClient really throw (their messages as written
// there), and where it is kept.
#include <gtest/gtest.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <thread>

#include "FailureCause.h"
#include "ferry/Error.h"
#include "ferry/Sqlite.h"
#include "ferry/SshKeys.h"
#include "ferry/SshSession.h"

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
        ferry::SqliteConnection db(path.string());
        pulld::recordPullFailure(db, "n1", 1000, ferry::Error("Failed to connect to x: Connection refused"));
        pulld::recordPullFailure(db, "n1", 2000, ferry::Error("Failed to connect to x: timed out after 3000 ms"));
        ferry::Statement s(db.database(), "SELECT count(*), max(at), max(cause) FROM pull_failure WHERE node = 'n1'");
        ASSERT_TRUE(s.step());
        EXPECT_EQ(s.int64(0), 1);
        EXPECT_EQ(s.int64(1), 2000);
        EXPECT_EQ(s.text(2), "timeout");
    }
    std::filesystem::remove(path);
}

// sshd refusing a client through hosts_access accepts the TCP connection and
// closes it at once. The real SshSession against a real listener that does
// just that: the error says so, well before the connect timeout, and the
// cause is not "timeout" (the multi-host suite's node-hosts check).
TEST(APullFailure, IsClosedBeforeTheHandshakeWhenTheServerHangsUpAtOnce)
{
    const int listener = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    ASSERT_GE(listener, 0);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    ASSERT_EQ(::bind(listener, reinterpret_cast<sockaddr*>(&a), sizeof a), 0);
    ASSERT_EQ(::listen(listener, 8), 0);
    socklen_t len = sizeof a;
    ASSERT_EQ(::getsockname(listener, reinterpret_cast<sockaddr*>(&a), &len), 0);
    std::thread closer([listener] {
        const int c = ::accept(listener, nullptr, nullptr);
        if (c >= 0)
            ::close(c);
    });
    const std::string dir = std::filesystem::temp_directory_path() / ("ferry-closer-" + std::to_string(::getpid()));
    std::filesystem::create_directories(dir);
    ferry::ensureKeyPair(dir + "/id_ed25519");
    {
        std::ofstream(dir + "/known_hosts") << "";
    }
    ferry::SshOptions o;
    o.privateKeyFile = dir + "/id_ed25519";
    o.knownHostsFile = dir + "/known_hosts";
    o.connectTimeout = std::chrono::seconds(10);
    const auto start = std::chrono::steady_clock::now();
    std::string message;
    try {
        ferry::SshSession session({"127.0.0.1", ntohs(a.sin_port), "ferry"}, o);
    } catch (const std::exception& e) {
        message = e.what();
        EXPECT_EQ(of(e), FailureCause::ClosedBeforeHandshake) << message;
    }
    const auto took = std::chrono::steady_clock::now() - start;
    closer.join();
    ::close(listener);
    std::filesystem::remove_all(dir);
    EXPECT_NE(message.find("closed the connection before the SSH handshake"), std::string::npos) << message;
    EXPECT_LT(took, std::chrono::seconds(5)) << "a closed connection must not wait out the connect timeout";
}
