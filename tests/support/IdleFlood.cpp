#include "support/IdleFlood.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <grp.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstring>
#include <stdexcept>

namespace ferry::test {

namespace {

bool fillAddress(const std::string& host, int port, sockaddr_storage& out, socklen_t& len)
{
    std::memset(&out, 0, sizeof out);
    auto* v4 = reinterpret_cast<sockaddr_in*>(&out);
    auto* v6 = reinterpret_cast<sockaddr_in6*>(&out);
    if (::inet_pton(AF_INET, host.c_str(), &v4->sin_addr) == 1) {
        v4->sin_family = AF_INET;
        v4->sin_port = htons(static_cast<std::uint16_t>(port));
        len = sizeof *v4;
        return true;
    }
    if (::inet_pton(AF_INET6, host.c_str(), &v6->sin6_addr) == 1) {
        v6->sin6_family = AF_INET6;
        v6->sin6_port = htons(static_cast<std::uint16_t>(port));
        len = sizeof *v6;
        return true;
    }
    return false;
}

int openCount(const std::vector<int>& fds)
{
    // A connection the server closed reads as end of stream (or a reset).
    int open = 0;
    for (int fd : fds) {
        char buf[4096];
        ssize_t n;
        bool closed = false;
        while ((n = ::recv(fd, buf, sizeof buf, MSG_DONTWAIT)) > 0) {
        }
        if (n == 0 || (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK))
            closed = true;
        if (!closed)
            ++open;
    }
    return open;
}

[[noreturn]] void child(const FloodOptions& o, int in, int out)
{
    rlimit rl{8192, 8192};
    ::setrlimit(RLIMIT_NOFILE, &rl);
    if (o.gid >= 0 && (::setgroups(0, nullptr) != 0 || ::setgid(static_cast<gid_t>(o.gid)) != 0))
        ::_exit(3);
    if (o.uid >= 0 && ::setuid(static_cast<uid_t>(o.uid)) != 0)
        ::_exit(3);
    sockaddr_storage target{};
    socklen_t targetLen = 0;
    if (!fillAddress(o.host, o.port, target, targetLen))
        ::_exit(4);
    std::vector<int> fds;
    for (int i = 0; i < o.connections; ++i) {
        const int fd = ::socket(target.ss_family, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
        if (fd < 0)
            break;
        if (!o.sources.empty()) {
            sockaddr_storage src{};
            socklen_t srcLen = 0;
            if (!fillAddress(o.sources[static_cast<std::size_t>(i) % o.sources.size()], 0, src, srcLen) ||
                ::bind(fd, reinterpret_cast<sockaddr*>(&src), srcLen) != 0) {
                ::close(fd);
                continue;
            }
        }
        if (::connect(fd, reinterpret_cast<sockaddr*>(&target), targetLen) != 0 && errno != EINPROGRESS) {
            ::close(fd);
            continue;
        }
        fds.push_back(fd);
    }
    // Connected: writable without an error.
    std::vector<int> connected;
    const auto until = std::chrono::steady_clock::now() + std::chrono::seconds(5);
    for (int fd : fds) {
        pollfd p{fd, POLLOUT, 0};
        const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(until - std::chrono::steady_clock::now());
        int err = 0;
        socklen_t el = sizeof err;
        if (::poll(&p, 1, static_cast<int>(std::max<long long>(left.count(), 0))) == 1 &&
            ::getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &el) == 0 && err == 0)
            connected.push_back(fd);
        else
            ::close(fd);
    }
    // Settle: the server answers each connection it serves (a greeting) or
    // closes it; wait until each did one or the other, or 3 s passed.
    const auto settle = std::chrono::steady_clock::now() + std::chrono::seconds(3);
    std::vector<char> settled(connected.size(), 0);
    std::size_t left = connected.size();
    while (left > 0 && std::chrono::steady_clock::now() < settle) {
        for (std::size_t i = 0; i < connected.size(); ++i) {
            if (settled[i])
                continue;
            pollfd p{connected[i], POLLIN, 0};
            if (::poll(&p, 1, 0) == 1) {
                settled[i] = 1;
                --left;
            }
        }
        ::usleep(20000);
    }
    int report[2] = {static_cast<int>(connected.size()), openCount(connected)};
    [[maybe_unused]] auto w = ::write(out, report, sizeof report);
    // Each byte from the parent asks for a fresh count; end of file ends us.
    char c;
    while (::read(in, &c, 1) == 1) {
        const int open = openCount(connected);
        w = ::write(out, &open, sizeof open);
    }
    ::_exit(0);
}

} // namespace

IdleFlood::IdleFlood(const FloodOptions& options)
{
    int down[2], up[2];
    if (::pipe2(down, O_CLOEXEC) != 0 || ::pipe2(up, O_CLOEXEC) != 0)
        throw std::runtime_error("pipe failed");
    m_pid = ::fork();
    if (m_pid < 0)
        throw std::runtime_error("fork failed");
    if (m_pid == 0) {
        ::close(down[1]);
        ::close(up[0]);
        child(options, down[0], up[1]);
    }
    ::close(down[0]);
    ::close(up[1]);
    m_toChild = down[1];
    m_fromChild = up[0];
    int report[2] = {0, 0};
    if (::read(m_fromChild, report, sizeof report) != static_cast<ssize_t>(sizeof report))
        throw std::runtime_error("the flooding child failed before reporting");
    m_connected = report[0];
    m_held = report[1];
}

int IdleFlood::stillOpen()
{
    const char c = 1;
    int open = -1;
    if (::write(m_toChild, &c, 1) != 1 || ::read(m_fromChild, &open, sizeof open) != static_cast<ssize_t>(sizeof open))
        return -1;
    return open;
}

IdleFlood::~IdleFlood()
{
    ::close(m_toChild);
    ::close(m_fromChild);
    int status = 0;
    if (::waitpid(m_pid, &status, 0) != m_pid) {
        ::kill(m_pid, SIGKILL);
        ::waitpid(m_pid, &status, 0);
    }
}

} // namespace ferry::test
