#include "ferry/Stream.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdint>
#include <cstring>

#include "ferry/Error.h"

namespace ferry {

namespace {

int msLeft(Deadline deadline)
{
    const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now()).count();
    return left <= 0 ? 0 : static_cast<int>(std::min<long long>(left, 1 << 30));
}

void setNonBlocking(int fd)
{
    const int flags = ::fcntl(fd, F_GETFL);
    if (flags >= 0)
        ::fcntl(fd, F_SETFL, flags | O_NONBLOCK);
}

} // namespace

void readExact(ByteStream& stream, void* buf, std::size_t size, Deadline deadline, const char* what)
{
    auto* p = static_cast<unsigned char*>(buf);
    std::size_t got = 0;
    while (got < size) {
        const std::size_t n = stream.readSome(p + got, size - got, deadline);
        if (n == 0)
            throw ClosedError(stream.peer() + " closed the connection after " + std::to_string(got) + " of " +
                              std::to_string(size) + " bytes of " + what);
        got += n;
    }
}

FdStream::FdStream(int readFd, int writeFd, std::string peer, bool owns)
    : m_readFd(readFd), m_writeFd(writeFd), m_peer(std::move(peer)), m_owns(owns)
{
    setNonBlocking(m_readFd);
    if (m_writeFd != m_readFd)
        setNonBlocking(m_writeFd);
}

FdStream::~FdStream()
{
    if (!m_owns)
        return;
    if (m_readFd >= 0)
        ::close(m_readFd);
    if (m_writeFd >= 0 && m_writeFd != m_readFd)
        ::close(m_writeFd);
}

void FdStream::checkWatched(short revents) const
{
    if ((revents & (POLLIN | POLLHUP | POLLERR | POLLNVAL)) != 0)
        throw ClosedError(m_peer + " ended: its relay's connection closed");
}

std::size_t FdStream::readSome(void* buf, std::size_t size, Deadline deadline)
{
    if (!m_ahead.empty()) {
        const std::size_t n = std::min(size, m_ahead.size());
        std::memcpy(buf, m_ahead.data(), n);
        m_ahead.erase(0, n);
        return n;
    }
    for (;;) {
        const ssize_t n = ::read(m_readFd, buf, size);
        if (n >= 0)
            return static_cast<std::size_t>(n);
        if (errno == EINTR)
            continue;
        if (errno == ECONNRESET)
            return 0;
        if (errno != EAGAIN)
            throwErrno("read from " + m_peer);
        pollfd pfd[2] = {{m_readFd, POLLIN, 0}, {m_watchFd, POLLIN, 0}};
        const int r = ::poll(pfd, m_watchFd >= 0 ? 2 : 1, msLeft(deadline));
        if (r == 0)
            throw TimeoutError("Timed out reading from " + m_peer);
        if (r < 0 && errno != EINTR)
            throwErrno("poll " + m_peer);
        if (r > 0 && m_watchFd >= 0 && (pfd[0].revents & (POLLIN | POLLHUP | POLLERR)) == 0)
            checkWatched(pfd[1].revents);
    }
}

bool FdStream::hasInput()
{
    if (!m_ahead.empty())
        return true;
    pollfd pfd{m_readFd, POLLIN, 0};
    return ::poll(&pfd, 1, 0) == 1 && (pfd.revents & POLLIN) != 0;
}

std::size_t FdStream::peek(void* buf, std::size_t size)
{
    if (m_readIsSocket) {
        const ssize_t n = ::recv(m_readFd, buf, size, MSG_PEEK | MSG_DONTWAIT);
        if (n >= 0 || errno != ENOTSOCK)
            return n > 0 ? static_cast<std::size_t>(n) : 0;
        m_readIsSocket = false;
    }
    // A pipe cannot be peeked at: what has arrived is read (the fd is
    // non-blocking) and kept for readSome. An end of stream or an error is
    // left for the next read to report.
    while (m_ahead.size() < size) {
        char chunk[256];
        const ssize_t n = ::read(m_readFd, chunk, std::min(sizeof chunk, size - m_ahead.size()));
        if (n > 0) {
            m_ahead.append(chunk, static_cast<std::size_t>(n));
            continue;
        }
        if (n < 0 && errno == EINTR)
            continue;
        break;
    }
    const std::size_t n = std::min(size, m_ahead.size());
    std::memcpy(buf, m_ahead.data(), n);
    return n;
}

bool ByteStream::waitForInput(int wakeFd, Deadline deadline)
{
    pollfd pfd{wakeFd, POLLIN, 0};
    if (::poll(&pfd, 1, msLeft(deadline)) < 0 && errno != EINTR)
        throwErrno("poll while waiting for " + peer());
    return false;
}

bool FdStream::waitForInput(int wakeFd, Deadline deadline)
{
    if (!m_ahead.empty())
        return true;
    pollfd pfd[3] = {{m_readFd, POLLIN, 0}, {wakeFd, POLLIN, 0}, {m_watchFd, POLLIN, 0}};
    const int r = ::poll(pfd, m_watchFd >= 0 ? 3 : 2, msLeft(deadline));
    if (r < 0 && errno != EINTR)
        throwErrno("poll " + m_peer);
    // A hang-up counts as input: the read that follows reports it.
    const bool input = r > 0 && (pfd[0].revents & (POLLIN | POLLHUP | POLLERR)) != 0;
    if (r > 0 && !input && m_watchFd >= 0)
        checkWatched(pfd[2].revents);
    return input;
}

void FdStream::writeAll(const void* buf, std::size_t size, Deadline deadline)
{
    const auto* p = static_cast<const unsigned char*>(buf);
    std::size_t done = 0;
    while (done < size) {
        ssize_t n = -1;
        if (m_writeIsSocket) {
            n = ::send(m_writeFd, p + done, size - done, MSG_NOSIGNAL);
            if (n < 0 && errno == ENOTSOCK)
                m_writeIsSocket = false;
        }
        // A pipe or another descriptor. Its reader gone is EPIPE only
        // where SIGPIPE is ignored (collectord, the login shell, systemd's
        // IgnoreSIGPIPE=yes for every service); that is the caller's to set.
        if (!m_writeIsSocket)
            n = ::write(m_writeFd, p + done, size - done);
        if (n >= 0) {
            done += static_cast<std::size_t>(n);
            continue;
        }
        if (errno == EINTR)
            continue;
        if (errno == EPIPE || errno == ECONNRESET)
            throw ClosedError(m_peer + " closed the connection while we were writing");
        if (errno != EAGAIN)
            throwErrno("write to " + m_peer);
        pollfd pfd[2] = {{m_writeFd, POLLOUT, 0}, {m_watchFd, POLLIN, 0}};
        const int r = ::poll(pfd, m_watchFd >= 0 ? 2 : 1, msLeft(deadline));
        if (r == 0)
            throw TimeoutError("Timed out writing to " + m_peer);
        if (r > 0 && m_watchFd >= 0 && (pfd[0].revents & (POLLOUT | POLLHUP | POLLERR)) == 0)
            checkWatched(pfd[1].revents);
    }
}

void FdStream::closeWrite()
{
    if (::shutdown(m_writeFd, SHUT_WR) != 0 && errno == ENOTSOCK && m_writeFd != m_readFd && m_owns) {
        ::close(m_writeFd);
        m_writeFd = -1;
    }
}

std::string socketPeer(int fd)
{
    sockaddr_storage ss{};
    socklen_t len = sizeof ss;
    if (::getpeername(fd, reinterpret_cast<sockaddr*>(&ss), &len) != 0)
        return "unknown peer";
    char host[INET6_ADDRSTRLEN] = {};
    std::uint16_t port = 0;
    if (ss.ss_family == AF_INET) {
        auto* a = reinterpret_cast<sockaddr_in*>(&ss);
        ::inet_ntop(AF_INET, &a->sin_addr, host, sizeof host);
        port = ntohs(a->sin_port);
        return std::string(host) + ":" + std::to_string(port);
    }
    if (ss.ss_family == AF_INET6) {
        auto* a = reinterpret_cast<sockaddr_in6*>(&ss);
        ::inet_ntop(AF_INET6, &a->sin6_addr, host, sizeof host);
        port = ntohs(a->sin6_port);
        return "[" + std::string(host) + "]:" + std::to_string(port);
    }
    return "local peer";
}

int connectTcp(const std::string& host, std::uint16_t port, std::chrono::milliseconds timeout)
{
    const Deadline deadline = deadlineIn(timeout);
    addrinfo hints{};
    hints.ai_socktype = SOCK_STREAM;
    hints.ai_flags = AI_NUMERICSERV;
    addrinfo* res = nullptr;
    const std::string portStr = std::to_string(port);
    if (const int rc = ::getaddrinfo(host.c_str(), portStr.c_str(), &hints, &res); rc != 0)
        throw Error("Failed to resolve " + host + ": " + ::gai_strerror(rc));
    std::string lastError = "no address";
    for (addrinfo* ai = res; ai != nullptr; ai = ai->ai_next) {
        const int fd = ::socket(ai->ai_family, ai->ai_socktype | SOCK_CLOEXEC | SOCK_NONBLOCK, ai->ai_protocol);
        if (fd < 0)
            continue;
        int r = ::connect(fd, ai->ai_addr, ai->ai_addrlen);
        if (r != 0 && errno == EINPROGRESS) {
            pollfd pfd{fd, POLLOUT, 0};
            r = ::poll(&pfd, 1, msLeft(deadline));
            if (r == 0) {
                ::close(fd);
                ::freeaddrinfo(res);
                throw TimeoutError("Failed to connect to " + host + ":" + portStr + ": timed out after " +
                                   std::to_string(timeout.count()) + " ms");
            }
            int err = 0;
            socklen_t len = sizeof err;
            ::getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len);
            r = err == 0 ? 0 : -1;
            errno = err;
        }
        if (r == 0) {
            const int one = 1;
            ::setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
            ::freeaddrinfo(res);
            return fd;
        }
        lastError = errnoMessage(errno);
        ::close(fd);
    }
    ::freeaddrinfo(res);
    throw Error("Failed to connect to " + host + ":" + portStr + ": " + lastError);
}

} // namespace ferry
