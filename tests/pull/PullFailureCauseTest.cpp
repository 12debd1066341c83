// The cause pulld records for a failed pull, from the errors SshSession,
// SshNodeConnector and PullClient really throw (their messages as written
// there), and where it is kept.
#include <gtest/gtest.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <chrono>
#include <condition_variable>
#include <filesystem>
#include <fstream>
#include <mutex>
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

// A loopback listener standing in for sshd's refusals: it accepts each
// connection and closes it after `hold` without a byte (hold < 0: keeps it
// open until the listener goes). backlog 0 with full = true fills the accept
// queue first, so that the kernel drops the next SYN as a firewall would.
class SilentListener {
public:
    explicit SilentListener(std::chrono::milliseconds hold, bool full = false) : m_hold(hold)
    {
        m_fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
        sockaddr_in a{};
        a.sin_family = AF_INET;
        a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        EXPECT_EQ(::bind(m_fd, reinterpret_cast<sockaddr*>(&a), sizeof a), 0);
        EXPECT_EQ(::listen(m_fd, full ? 0 : 8), 0);
        socklen_t len = sizeof a;
        EXPECT_EQ(::getsockname(m_fd, reinterpret_cast<sockaddr*>(&a), &len), 0);
        m_port = ntohs(a.sin_port);
        if (full) {
            // Queued, never accepted: the queue of a backlog-0 socket is full.
            m_filler = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
            EXPECT_EQ(::connect(m_filler, reinterpret_cast<sockaddr*>(&a), sizeof a), 0);
            return;
        }
        m_thread = std::thread([this] {
            const int c = ::accept(m_fd, nullptr, nullptr);
            if (c < 0)
                return;
            std::unique_lock lock(m_mutex);
            if (m_hold.count() >= 0)
                m_stop.wait_for(lock, m_hold, [this] { return m_stopping; });
            else
                m_stop.wait(lock, [this] { return m_stopping; });
            ::close(c);
        });
    }
    ~SilentListener()
    {
        {
            std::lock_guard lock(m_mutex);
            m_stopping = true;
        }
        m_stop.notify_all();
        ::shutdown(m_fd, SHUT_RDWR);
        if (m_thread.joinable())
            m_thread.join();
        ::close(m_fd);
        if (m_filler >= 0)
            ::close(m_filler);
    }
    std::uint16_t port() const { return m_port; }

private:
    std::chrono::milliseconds m_hold;
    int m_fd = -1;
    int m_filler = -1;
    std::uint16_t m_port = 0;
    std::thread m_thread;
    std::mutex m_mutex;
    std::condition_variable m_stop;
    bool m_stopping = false;
};

struct ConnectFailure {
    std::string message;
    FailureCause cause = FailureCause::Other;
    std::chrono::milliseconds took{0};
};

// The real SshSession connecting to port on loopback.
ConnectFailure connectTo(std::uint16_t port, std::chrono::milliseconds connectTimeout)
{
    const std::string dir = std::filesystem::temp_directory_path() / ("ferry-closer-" + std::to_string(::getpid()));
    std::filesystem::create_directories(dir);
    ferry::ensureKeyPair(dir + "/id_ed25519");
    {
        std::ofstream(dir + "/known_hosts") << "";
    }
    ferry::SshOptions o;
    o.privateKeyFile = dir + "/id_ed25519";
    o.knownHostsFile = dir + "/known_hosts";
    o.connectTimeout = connectTimeout;
    ConnectFailure f;
    const auto start = std::chrono::steady_clock::now();
    try {
        ferry::SshSession session({"127.0.0.1", port, "ferry"}, o);
        f.message = "connected";
    } catch (const std::exception& e) {
        f.message = e.what();
        f.cause = classifyPullFailure(e);
    }
    f.took = std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now() - start);
    std::filesystem::remove_all(dir);
    return f;
}

// sshd closing at once (MaxStartups, a reset on the way): the error says so,
// well before the connect timeout, and the cause is not "timeout".
TEST(APullFailure, IsClosedBeforeTheHandshakeWhenTheServerHangsUpAtOnce)
{
    SilentListener sshd(std::chrono::milliseconds(0));
    const auto f = connectTo(sshd.port(), std::chrono::seconds(10));
    EXPECT_EQ(f.cause, FailureCause::ClosedBeforeHandshake) << f.message;
    EXPECT_NE(f.message.find("closed the connection before the SSH handshake"), std::string::npos) << f.message;
    EXPECT_LT(f.took, std::chrono::seconds(5)) << "a closed connection must not wait out the connect timeout";
}

// Debian's sshd refusing the master through hosts.deny (libwrap): accepted,
// "refused connect from …" in its log, 5 s of silence, then closed. With a
// connect timeout shorter than that (the multi-host suite uses 3 s) this
// used to read "timeout", as a firewall's drop does.
TEST(APullFailure, IsClosedBeforeTheHandshakeWhenSshdRefusesThroughHostsAccess)
{
    SilentListener sshd(std::chrono::milliseconds(5000));
    const auto f = connectTo(sshd.port(), std::chrono::seconds(2));
    EXPECT_EQ(f.cause, FailureCause::ClosedBeforeHandshake) << f.message;
    EXPECT_GE(f.took, std::chrono::milliseconds(4500)) << f.message;
    EXPECT_LT(f.took, std::chrono::milliseconds(6500)) << f.message;
}

TEST(APullFailure, IsNoBannerWhenTheServerAcceptsAndStaysSilent)
{
    SilentListener stuck(std::chrono::milliseconds(-1));
    const auto f = connectTo(stuck.port(), std::chrono::seconds(1));
    EXPECT_EQ(f.cause, FailureCause::NoBanner) << f.message;
    EXPECT_NE(f.message.find("accepted the TCP connection but sent no SSH banner"), std::string::npos) << f.message;
    // Bounded: libwrap's hold and a margin, not the silence's length.
    EXPECT_LT(f.took, std::chrono::milliseconds(7000)) << f.message;
}

TEST(APullFailure, IsStillTimeoutWhenTheConnectionIsNeverAccepted)
{
    // The kernel drops SYNs to a listener whose accept queue is full: no
    // TCP connection, as behind a firewall's DROP.
    SilentListener full(std::chrono::milliseconds(0), true);
    const auto f = connectTo(full.port(), std::chrono::seconds(2));
    EXPECT_EQ(f.cause, FailureCause::Timeout) << f.message;
    EXPECT_LT(f.took, std::chrono::milliseconds(3500)) << f.message;
}
