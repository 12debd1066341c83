// ferry-tunnel-relay: what sshd runs for a node's push on the master. It is
// the login shell and the ForceCommand of the tunnel user `ferry-tunnel`
// (units/sshd/ferry-master.conf), so every session of that user runs this
// and nothing else, as that user, which owns no files and can read no
// secrets.
//
// It connects to collectord's relay socket (/run/ferry-collector-relay.sock,
// mode 0660, group ferry-tunnel) and sends one header line with the node's
// address as sshd saw it (SSH_CONNECTION; layout in ferry/RelayHeader.h),
// and with it the SSH channel's two ends, fds 0 and 1 (SCM_RIGHTS):
// collectord serves the session on them itself, so a node's message crosses
// the master through sshd and collectord, without waking this process in
// between. collectord believes the header because the kernel tells it this
// process runs as the tunnel user.
//
// It then waits, holding nothing of the channel, until collectord closes
// the socket (the session is over), and exits: sshd stops passing the
// node's bytes once this process has exited, and collectord watches the
// socket, so neither outlives the other. Bounds: the wait ends after
// kSessionLimitMs (an hour) whatever happens (collectord's own I/O timeouts
// end a silent session long before). Errors go to syslog and, as one line,
// to the client's stderr.

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <syslog.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>

#include "ferry/RelayHeader.h"
#include "ferry/StandardFds.h"

namespace {

constexpr const char* kDefaultSocket = "/run/ferry-collector-relay.sock";
// The longest a session may last: a week's backlog drains in seconds, and
// collectord ends a session that stops moving after its I/O timeout (30 s).
constexpr int kSessionLimitMs = 3600 * 1000;
// sshd hands the node's bytes to the session through a pipe of 64 KiB: on a
// busy master every 64 KiB of a backlog cost a wake-up, and a week's
// backlog crossed sshd's session channel at a tenth of the speed of a
// direct-tcpip channel (bench/backlog). A larger pipe lets both sides move
// more per wake-up. The pipe is charged to the tunnel user, whose pipes may
// hold 64 MiB in all before new ones are cut to a page
// (fs.pipe-user-pages-soft): 256 KiB here plus sshd's two other 64 KiB
// pipes is 384 KiB a session, room for about 170 sessions at once, over
// three times the most bench/master-load saw on one master. A failure
// leaves the default size.
constexpr int kUpstreamPipeSize = 256 * 1024;

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

int connectToCollector(const std::string& path)
{
    sockaddr_un addr{};
    addr.sun_family = AF_UNIX;
    if (path.empty() || path.size() >= sizeof addr.sun_path)
        fail("the relay socket path '" + path.substr(0, 200) + "' is not usable");
    std::memcpy(addr.sun_path, path.c_str(), path.size());
    const int fd = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0)
        fail("Failed to create a socket: " + errnoText(errno));
    // A unix connect completes at once or fails at once (EAGAIN: the
    // collector's backlog is full), so this never waits.
    if (::connect(fd, reinterpret_cast<const sockaddr*>(&addr), sizeof addr) != 0)
        fail("Failed to connect to the collector at " + path + ": " + errnoText(errno));
    return fd;
}

// The header line with fds 0 and 1 attached, in one message.
void handOver(int sock, const std::string& header, const std::string& path)
{
    iovec iov{const_cast<char*>(header.data()), header.size()};
    alignas(cmsghdr) char control[CMSG_SPACE(sizeof(int) * 2)] = {};
    msghdr msg{};
    msg.msg_iov = &iov;
    msg.msg_iovlen = 1;
    msg.msg_control = control;
    msg.msg_controllen = sizeof control;
    cmsghdr* c = CMSG_FIRSTHDR(&msg);
    c->cmsg_level = SOL_SOCKET;
    c->cmsg_type = SCM_RIGHTS;
    c->cmsg_len = CMSG_LEN(sizeof(int) * 2);
    const int fds[2] = {0, 1};
    std::memcpy(CMSG_DATA(c), fds, sizeof fds);
    // A fresh unix socket's buffer takes the short line whole.
    if (::sendmsg(sock, &msg, MSG_NOSIGNAL) != static_cast<ssize_t>(header.size()))
        fail("Failed to hand the session to the collector at " + path + ": " + errnoText(errno));
}

// Until collectord closes the socket. It sends nothing on it; anything it
// did would be read and dropped.
void waitForTheEnd(int sock)
{
    const auto start = std::chrono::steady_clock::now();
    for (;;) {
        const auto used =
            std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now() - start).count();
        if (used >= kSessionLimitMs)
            fail("Ending a session that lasted " + std::to_string(kSessionLimitMs / 1000) + " s");
        pollfd p{sock, POLLIN, 0};
        const int r = ::poll(&p, 1, static_cast<int>(kSessionLimitMs - used));
        if (r < 0 && errno == EINTR)
            continue;
        if (r < 0)
            fail("Failed to wait for the collector: " + errnoText(errno));
        if (r == 0)
            continue;
        char buf[256];
        const ssize_t n = ::read(sock, buf, sizeof buf);
        if (n == 0 || (n < 0 && errno != EINTR && errno != EAGAIN))
            return;
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
                        "sshd runs it for the master's tunnel user (ferry-tunnel), ignoring COMMAND; it hands the\n"
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
    ::fcntl(0, F_SETPIPE_SZ, kUpstreamPipeSize);
    auto withFds = *address;
    withFds.withFds = true;
    handOver(sock, ferry::formatRelayHeader(withFds), path);
    // The channel's ends are collectord's now: sshd sees its end of the
    // session when collectord closes them, not when this process exits.
    const int devNull = ::open("/dev/null", O_RDWR | O_CLOEXEC);
    if (devNull >= 0) {
        ::dup2(devNull, 0);
        ::dup2(devNull, 1);
        ::close(devNull);
    }
    waitForTheEnd(sock);
    ::close(sock);
    return 0;
}
