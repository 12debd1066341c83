// ferry::TcpServer on a real loopback socket: stop() returns only once the
// threads that served the connections have exited. Found by the sanitizer
// suite: serving threads were detached, so a daemon could exit while one of
// them was still ending, and LeakSanitizer reported that thread's OpenSSL
// random generator (a per-thread object) as leaked. Its workers serve one
// connection after another, and no more than maxIdleWorkers wait.

#include <gtest/gtest.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <filesystem>
#include <mutex>
#include <set>
#include <thread>
#include <vector>

#include "ferry/TcpServer.h"
#include "support/TestSupport.h"

namespace {

using namespace std::chrono_literals;

// A listening socket on 127.0.0.1 with a port the kernel chose.
int listenOnLoopback(std::uint16_t& port)
{
    const int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t len = sizeof a;
    if (fd < 0 || ::bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0 || ::listen(fd, 16) != 0 ||
        ::getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len) != 0)
        throw std::runtime_error("cannot listen on 127.0.0.1");
    port = ntohs(a.sin_port);
    return fd;
}

int connectTo(std::uint16_t port)
{
    const int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    a.sin_port = htons(port);
    if (fd < 0 || ::connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0)
        throw std::runtime_error("cannot connect to 127.0.0.1:" + std::to_string(port));
    return fd;
}

std::atomic<int> g_threadsEnded{0};

// Thread-local state whose destruction (at the serving thread's exit) takes
// a while, like the per-thread objects libraries free at thread exit.
struct SlowThreadExit {
    bool armed = false;
    ~SlowThreadExit()
    {
        if (!armed)
            return;
        std::this_thread::sleep_for(300ms);
        ++g_threadsEnded;
    }
};

TEST(ATcpServer, StopsOnlyAfterTheThreadsThatServedHaveExited)
{
    g_threadsEnded = 0;
    std::uint16_t port = 0;
    const int listenFd = listenOnLoopback(port);
    std::atomic<int> served{0};
    std::mutex mutex;
    std::set<std::thread::id> servers;
    ferry::TcpServerOptions options;
    options.sourceRate = 0;
    ferry::TcpServer server("test", {listenFd}, options, [&](ferry::TcpConnection&) {
        thread_local SlowThreadExit state;
        state.armed = true;
        {
            std::lock_guard lock(mutex);
            servers.insert(std::this_thread::get_id());
        }
        ++served;
    });
    server.start();
    int clients[3];
    for (int& c : clients)
        c = connectTo(port);
    ASSERT_TRUE(ferry::test::waitUntil([&] { return served == 3; }, 10s));
    server.stop();
    // Before: stop() returned when the connections were closed, while their
    // threads were still exiting (0 ended here). The workers that served
    // (one to three: a worker serves the next connection once its own
    // ended) wait for more until stop() ends them.
    EXPECT_EQ(g_threadsEnded, static_cast<int>(servers.size()));
    EXPECT_GE(servers.size(), 1u);
    for (int c : clients)
        ::close(c);
}

// A connection starts no thread when a worker waits: before, every
// connection had a thread of its own, created and torn down (clone3, a
// stack, thread-local state) for each push.
TEST(ATcpServer, ServesConnectionsOneAfterAnotherOnOneWaitingWorker)
{
    std::uint16_t port = 0;
    const int listenFd = listenOnLoopback(port);
    std::mutex mutex;
    std::vector<std::thread::id> servers;
    ferry::TcpServerOptions options;
    options.sourceRate = 0;
    ferry::TcpServer server("test", {listenFd}, options, [&](ferry::TcpConnection&) {
        std::lock_guard lock(mutex);
        servers.push_back(std::this_thread::get_id());
    });
    server.start();
    for (int i = 0; i < 5; ++i) {
        const int c = connectTo(port);
        // The worker has served it and waits for the next.
        ASSERT_TRUE(ferry::test::waitUntil(
            [&] {
                const auto st = server.stats();
                return st.accepted == static_cast<std::uint64_t>(i + 1) && st.open == 0 && st.idleWorkers == 1;
            },
            10s));
        ::close(c);
    }
    const auto st = server.stats();
    EXPECT_EQ(st.workersStarted, 1u);
    EXPECT_EQ(st.workers, 1u);
    std::lock_guard lock(mutex);
    ASSERT_EQ(servers.size(), 5u);
    for (const auto& id : servers)
        EXPECT_EQ(id, servers.front());
    server.stop();
}

// Busy, every connection has a worker (the limits are maxConnections');
// once they end, maxIdleWorkers of them wait and the rest retire, and a
// waiting one retires after idleWorkerLife.
TEST(ATcpServer, KeepsNoMoreThanMaxIdleWorkersWaitingAndRetiresThemWhenIdle)
{
    std::uint16_t port = 0;
    const int listenFd = listenOnLoopback(port);
    std::mutex mutex;
    std::condition_variable cv;
    bool release = false;
    std::atomic<int> inside{0};
    ferry::TcpServerOptions options;
    options.sourceRate = 0;
    options.maxIdleWorkers = 2;
    options.idleWorkerLife = 1500ms;
    ferry::TcpServer server("test", {listenFd}, options, [&](ferry::TcpConnection&) {
        ++inside;
        std::unique_lock lock(mutex);
        cv.wait(lock, [&] { return release; });
    });
    server.start();
    std::vector<int> clients;
    for (int i = 0; i < 5; ++i)
        clients.push_back(connectTo(port));
    ASSERT_TRUE(ferry::test::waitUntil([&] { return inside == 5; }, 10s));
    EXPECT_EQ(server.stats().workers, 5u);
    {
        std::lock_guard lock(mutex);
        release = true;
    }
    cv.notify_all();
    ASSERT_TRUE(ferry::test::waitUntil(
        [&] {
            const auto st = server.stats();
            return st.open == 0 && st.workers == 2 && st.idleWorkers == 2;
        },
        10s));
    EXPECT_EQ(server.stats().workersStarted, 5u);
    ASSERT_TRUE(ferry::test::waitUntil([&] { return server.stats().workers == 0; }, 10s));
    // A connection after that starts a worker again.
    clients.push_back(connectTo(port));
    ASSERT_TRUE(ferry::test::waitUntil([&] { return inside == 6; }, 10s));
    EXPECT_EQ(server.stats().workersStarted, 6u);
    server.stop();
    for (int c : clients)
        ::close(c);
}

int connectToUnix(const std::string& path)
{
    const int fd = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_un a{};
    a.sun_family = AF_UNIX;
    path.copy(a.sun_path, sizeof a.sun_path - 1);
    if (fd < 0 || ::connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0)
        throw std::runtime_error("cannot connect to " + path);
    return fd;
}

// Sessions through collectord's relay socket all come from one uid, the
// tunnel user's. Limited as that uid, every node of a fleet shared one
// bucket: past its rate the master refused pushes from nodes that had sent
// nothing (bench/master-load's "closed" errors above 50 pushes/s). A
// relay's connections are limited by the node address the relay names.
TEST(ATcpServer, LimitsARelaysConnectionsByTheAddressTheyRelayNotByTheRelaysUid)
{
    const ferry::test::TempDir dir;
    const std::string path = dir / "relay.sock";
    const int listenFd = ferry::bindUnixSocket(path, 0600, -1);
    ferry::TcpServerOptions options;
    // A bucket that does not refill within the test: three connections per source.
    options.sourceRate = 0.001;
    options.sourceBurst = 3;
    options.relayUid = ::getuid();
    std::mutex mutex;
    std::vector<std::string> admitted, refused;
    ferry::TcpServer server("test", {listenFd}, options, [&](ferry::TcpConnection& c) {
        char address[32] = {};
        const auto n = ::recv(c.fd(), address, sizeof address - 1, 0);
        const std::string a(address, n > 0 ? static_cast<std::size_t>(n) : 0);
        const bool ok = c.relayedSource(a);
        std::lock_guard lock(mutex);
        (ok ? admitted : refused).push_back(a);
    });
    server.start();
    std::vector<int> clients;
    // A relayed connection that names address; decided(n): the server has
    // admitted or refused n of them.
    auto relay = [&](const std::string& address) {
        clients.push_back(connectToUnix(path));
        ASSERT_EQ(::send(clients.back(), address.data(), address.size(), MSG_NOSIGNAL),
                  static_cast<ssize_t>(address.size()));
    };
    auto decided = [&](std::size_t n) {
        return ferry::test::waitUntil(
            [&] {
                std::lock_guard lock(mutex);
                return admitted.size() + refused.size() == n;
            },
            10s);
    };
    // Twelve nodes, one push each, at once: more than the burst of one source.
    for (int i = 1; i <= 12; ++i)
        relay("192.0.2." + std::to_string(i));
    ASSERT_TRUE(decided(12));
    EXPECT_EQ(admitted.size(), 12u);
    // One node pushing over and over still meets its own bucket.
    for (int i = 0; i < 6; ++i)
        relay("198.51.100.7");
    ASSERT_TRUE(decided(18));
    std::lock_guard lock(mutex);
    EXPECT_EQ(admitted.size(), 12u + 3u);
    EXPECT_EQ(refused.size(), 3u);
    for (const auto& a : refused)
        EXPECT_EQ(a, "198.51.100.7");
    server.stop();
    for (int c : clients)
        ::close(c);
}

} // namespace
