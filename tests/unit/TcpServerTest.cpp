// ferry::TcpServer on a real loopback socket: stop() returns only once the
// threads that served the connections have exited. Found by the sanitizer
// suite: serving threads were detached, so a daemon could exit while one of
// them was still ending, and LeakSanitizer reported that thread's OpenSSL
// random generator (a per-thread object) as leaked.

#include <gtest/gtest.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <thread>

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
    ferry::TcpServerOptions options;
    options.sourceRate = 0;
    ferry::TcpServer server("test", {listenFd}, options, [&](ferry::TcpConnection&) {
        thread_local SlowThreadExit state;
        state.armed = true;
        ++served;
    });
    server.start();
    int clients[3];
    for (int& c : clients)
        c = connectTo(port);
    ASSERT_TRUE(ferry::test::waitUntil([&] { return served == 3; }, 10s));
    server.stop();
    // Before: stop() returned when the connections were closed, while their
    // threads were still exiting (0 ended here).
    EXPECT_EQ(g_threadsEnded, 3);
    for (int c : clients)
        ::close(c);
}

} // namespace
