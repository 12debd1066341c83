// ferry-tunnel-relay: what sshd runs for a node's push on the master. It is
// the login shell and the ForceCommand of the tunnel user `ferry-tunnel`
// (units/sshd/ferry-master.conf), so every session of that user runs this
// and nothing else, as that user, which owns no files and can read no
// secrets.
//
// It connects to collectord's relay socket (/run/ferry-collector-relay.sock,
// mode 0660, group ferry-tunnel), sends one header line with the node's
// address as sshd saw it (SSH_CONNECTION; layout in ferry/RelayHeader.h),
// then copies bytes both ways between the SSH channel (fds 0 and 1) and the
// socket until the collector ends the session. collectord believes the
// header because the kernel tells it this process runs as the tunnel user.
//
// Whatever command the client asked for is ignored (sshd passes it as
// `-c COMMAND` to a login shell); only sshd's SetEnv can point the relay at
// another socket (FERRY_RELAY_SOCKET, for tests), since sshd does not accept
// that variable from clients. Bounds: 64 KiB buffered per direction, and the
// relay ends when no byte moved for kIdleTimeout (both peers have their own
// shorter I/O timeouts; this one only reaps a relay whose ends went silent).
// Errors go to syslog and, as one line, to the client's stderr.

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <syslog.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>

#include "ferry/RelayHeader.h"
#include "ferry/StandardFds.h"

namespace {

constexpr const char* kDefaultSocket = "/run/ferry-collector-relay.sock";
constexpr int kIdleTimeoutMs = 300 * 1000;
constexpr std::size_t kBufferSize = 64 * 1024;
// sshd hands the node's bytes to this process through a pipe of 64 KiB: on a
// busy master every 64 KiB of a backlog cost sshd and this relay a wake-up
// each, and a week's backlog crossed sshd's session channel at a tenth of
// the speed of a direct-tcpip channel (bench/backlog). A larger pipe on the
// upstream side and a larger socket buffer toward the collector let both
// sides move more per wake-up. The pipe is charged to the tunnel user, whose
// pipes may hold 64 MiB in all before new ones are cut to a page
// (fs.pipe-user-pages-soft): 256 KiB here plus sshd's two other 64 KiB
// pipes is 384 KiB a session, room for about 170 sessions at once, over
// three times the most bench/master-load saw on one master. A failure
// leaves the default sizes.
constexpr int kUpstreamPipeSize = 256 * 1024;
constexpr int kCollectorSendBuffer = 1024 * 1024;

[[noreturn]] void fail(const std::string& what)
{
    ::syslog(LOG_WARNING, "%s", what.c_str());
    const std::string line = "ferry-tunnel-relay: " + what + "\n";
    [[maybe_unused]] const auto w = ::write(2, line.data(), line.size());
    std::exit(1);
}

std::string errnoText(int err)
{
    return std::strerror(err);
}

void setNonBlocking(int fd)
{
    ::fcntl(fd, F_SETFL, ::fcntl(fd, F_GETFL) | O_NONBLOCK);
}

int connectToCollector(const std::string& path)
{
    sockaddr_un addr{};
    addr.sun_family = AF_UNIX;
    if (path.empty() || path.size() >= sizeof addr.sun_path)
        fail("the relay socket path '" + path.substr(0, 200) + "' is not usable");
    std::memcpy(addr.sun_path, path.c_str(), path.size());
    const int fd = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
    if (fd < 0)
        fail("Failed to create a socket: " + errnoText(errno));
    // A unix connect completes at once or fails at once (EAGAIN: the
    // collector's backlog is full), so this never waits.
    if (::connect(fd, reinterpret_cast<const sockaddr*>(&addr), sizeof addr) != 0)
        fail("Failed to connect to the collector at " + path + ": " + errnoText(errno));
    return fd;
}

// One direction's bytes in flight: read from `from` while there is room,
// written to `to` while there are some.
struct Lane {
    Lane(int f, int t) : from(f), to(t) {}
    int from;
    int to;
    char buf[kBufferSize] = {};
    std::size_t begin = 0, end = 0;
    bool eof = false;
    bool empty() const { return begin == end; }
};

// Moves what is ready; returns false when `to` is gone (the lane is dead).
bool step(Lane& lane, short fromEvents, short toEvents)
{
    if (!lane.eof && lane.end < kBufferSize && (fromEvents & (POLLIN | POLLHUP | POLLERR)) != 0) {
        const ssize_t n = ::read(lane.from, lane.buf + lane.end, kBufferSize - lane.end);
        if (n > 0) {
            lane.end += static_cast<std::size_t>(n);
        } else if (n == 0 || (errno != EAGAIN && errno != EINTR)) {
            lane.eof = true;
        }
    }
    if (!lane.empty() && (toEvents & (POLLOUT | POLLERR | POLLHUP)) != 0) {
        const ssize_t n = ::send(lane.to, lane.buf + lane.begin, lane.end - lane.begin, MSG_NOSIGNAL);
        ssize_t written = n;
        if (n < 0 && errno == ENOTSOCK)
            written = ::write(lane.to, lane.buf + lane.begin, lane.end - lane.begin);
        if (written > 0) {
            lane.begin += static_cast<std::size_t>(written);
            if (lane.empty())
                lane.begin = lane.end = 0;
        } else if (errno != EAGAIN && errno != EINTR) {
            return false;
        }
    }
    return true;
}

// Copies node → collector (up) and collector → node (down) until the
// collector has ended the session and everything it sent is delivered.
void relay(int sock)
{
    static Lane up(0, sock);
    static Lane down(sock, 1);
    ::fcntl(0, F_SETPIPE_SZ, kUpstreamPipeSize);
    ::setsockopt(sock, SOL_SOCKET, SO_SNDBUF, &kCollectorSendBuffer, sizeof kCollectorSendBuffer);
    setNonBlocking(0);
    setNonBlocking(1);
    bool upShut = false;
    bool upDead = false;
    for (;;) {
        pollfd p[3] = {{0, 0, 0}, {sock, 0, 0}, {1, 0, 0}};
        if (!up.eof && up.end < kBufferSize)
            p[0].events |= POLLIN;
        if (!up.empty())
            p[1].events |= POLLOUT;
        if (!down.eof && down.end < kBufferSize)
            p[1].events |= POLLIN;
        if (!down.empty())
            p[2].events |= POLLOUT;
        // A descriptor with nothing asked of it is left out: a hung-up one
        // would otherwise wake poll at once, over and over.
        for (auto& fd : p)
            if (fd.events == 0)
                fd.fd = -1;
        const int r = ::poll(p, 3, kIdleTimeoutMs);
        if (r < 0 && errno == EINTR)
            continue;
        if (r < 0)
            fail("Failed to wait for the node or the collector: " + errnoText(errno));
        if (r == 0)
            fail("Ending a relay where no byte moved for " + std::to_string(kIdleTimeoutMs / 1000) + " s");
        // Toward the node first: what the collector said before it closed
        // (its last Ack, an Error frame) is delivered even if the node's
        // next bytes can no longer go anywhere.
        if (!step(down, p[1].revents, p[2].revents))
            return; // the node (sshd) is gone: nothing left to deliver to
        if (!upDead && !step(up, p[0].revents, p[1].revents)) {
            // The collector stopped reading (it ended the session): the
            // rest of what the node sends has nowhere to go.
            upDead = true;
            up.eof = true;
            up.begin = up.end = 0;
        }
        // The node finished sending: tell the collector, as a half-close.
        if (up.eof && up.empty() && !upShut) {
            ::shutdown(sock, SHUT_WR);
            upShut = true;
        }
        if (down.eof && down.empty())
            return;
        if (((p[0].revents | p[1].revents | p[2].revents) & POLLNVAL) != 0)
            fail("Failed to relay: a descriptor is not open");
    }
}

} // namespace

int main(int argc, char* argv[])
{
    ferry::ensureStandardFds();
    // A node gone mid-write is an error return on fd 1, not a signal.
    ::signal(SIGPIPE, SIG_IGN);
    ::openlog("ferry-tunnel-relay", LOG_PID, LOG_AUTHPRIV);
    // Run as a login shell (`-c COMMAND`) or as the ForceCommand: either way
    // the command a client asked for means nothing here.
    if (argc > 1 && std::strcmp(argv[1], "-c") != 0) {
        if (std::strcmp(argv[1], "--version") == 0) {
            std::printf("ferry-tunnel-relay %s\n", FERRY_VERSION);
            return 0;
        }
        if (std::strcmp(argv[1], "--help") == 0) {
            std::printf("Usage: ferry-tunnel-relay [-c COMMAND] | --help | --version\n"
                        "sshd runs it for the master's tunnel user (ferry-tunnel), ignoring COMMAND; it relays the\n"
                        "session to collectord's relay socket (%s, or $FERRY_RELAY_SOCKET set by\n"
                        "sshd's SetEnv), naming the node's address from SSH_CONNECTION.\n",
                        kDefaultSocket);
            return 0;
        }
        std::string arg(argv[1], ::strnlen(argv[1], 64));
        for (char& c : arg)
            if (c < 0x20 || c == 0x7f)
                c = '?';
        fail("unknown argument '" + arg + "' (sshd runs it for the tunnel user; see --help)");
    }
    const char* connection = std::getenv("SSH_CONNECTION");
    const auto address = ferry::relayAddressFromSshConnection(connection != nullptr ? connection : "");
    if (!address)
        fail("no client address in SSH_CONNECTION: not run by sshd");
    const char* socketEnv = std::getenv("FERRY_RELAY_SOCKET");
    const std::string path = socketEnv != nullptr && *socketEnv != '\0' ? socketEnv : kDefaultSocket;
    const int sock = connectToCollector(path);
    const std::string header = ferry::formatRelayHeader(*address);
    // A fresh unix socket's buffer takes the short line whole.
    if (::send(sock, header.data(), header.size(), MSG_NOSIGNAL) != static_cast<ssize_t>(header.size()))
        fail("Failed to send the header to the collector at " + path + ": " + errnoText(errno));
    relay(sock);
    ::close(sock);
    return 0;
}
