// freePort() (tests/support): the ports that tests start their servers on.
// Two tests running at once must not be handed the same port, so a port
// comes from a block of this process's own, below the kernel's ephemeral
// range (whose ports any port-0 bind or outgoing connection may take), and
// never one that someone holds.

#include <gtest/gtest.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <fstream>
#include <set>
#include <vector>

#include "support/TestSupport.h"

namespace ferry::test {
namespace {

// A socket listening on 127.0.0.1:port, or -1 when that port is taken.
int listenOn(int port)
{
    const int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_port = htons(static_cast<std::uint16_t>(port));
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (::bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0 || ::listen(fd, 4) != 0) {
        ::close(fd);
        return -1;
    }
    return fd;
}

TEST(AFreePort, HandsOutDistinctPortsBelowTheEphemeralRange)
{
    int ephemeralLow = 0;
    std::ifstream("/proc/sys/net/ipv4/ip_local_port_range") >> ephemeralLow;
    ASSERT_GT(ephemeralLow, 0);
    std::set<int> seen;
    for (int i = 0; i < 20; ++i) {
        const int port = freePort();
        EXPECT_GE(port, 1024);
        EXPECT_LT(port, ephemeralLow);
        EXPECT_TRUE(seen.insert(port).second) << "port " << port << " handed out twice";
    }
}

TEST(AFreePort, NeverHandsOutAPortSomeoneHolds)
{
    // Hold the ports that would come next (those still free), as another
    // process would that took them meanwhile.
    const int last = freePort();
    std::vector<int> held;
    std::set<int> heldPorts;
    for (int port = last + 1; port <= last + 8; ++port) {
        const int fd = listenOn(port);
        if (fd >= 0) {
            held.push_back(fd);
            heldPorts.insert(port);
        }
    }
    ASSERT_FALSE(held.empty());
    const int next = freePort();
    EXPECT_EQ(heldPorts.count(next), 0u) << "port " << next << " is held";
    EXPECT_NE(next, last);
    const int fd = listenOn(next);
    EXPECT_GE(fd, 0) << "port " << next << " cannot be bound";
    ::close(fd);
    for (const int h : held)
        ::close(h);
}

} // namespace
} // namespace ferry::test
