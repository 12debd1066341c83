#include "RegistryServer.h"

#include <cerrno>
#include <cstring>

#include <arpa/inet.h>
#include <fcntl.h>
#include <netdb.h>
#include <poll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <unistd.h>

#include <spdlog/spdlog.h>
#include <systemd/sd-daemon.h>

#include "Manager.h"
#include "ferry/Error.h"
#include "ferry/RegistryProtocol.h"
#include "ferry/Stream.h"

namespace registryd {

std::vector<int> listeningSockets(const std::string& address, bool& fromSystemd)
{
    std::vector<int> fds;
    fromSystemd = false;
    const int n = sd_listen_fds(1);
    if (n < 0)
        throw ferry::Error("Failed to take the sockets passed by systemd: " + ferry::errnoMessage(-n));
    for (int i = 0; i < n; ++i) {
        const int fd = SD_LISTEN_FDS_START + i;
        if (sd_is_socket(fd, AF_UNSPEC, SOCK_STREAM, 1) <= 0)
            throw ferry::Error("Failed to use socket " + std::to_string(fd) +
                               " passed by systemd: not a listening stream socket (check ferry-registryd.socket)");
        fds.push_back(fd);
    }
    if (!fds.empty()) {
        spdlog::debug("Using {} listening socket(s) from systemd", fds.size());
        fromSystemd = true;
        return fds;
    }

    const auto colon = address.rfind(':');
    if (colon == std::string::npos)
        throw ferry::Error("Failed to parse the listen address '" + address + "': expected ADDRESS:PORT");
    std::string host = address.substr(0, colon);
    const std::string port = address.substr(colon + 1);
    if (host.size() >= 2 && host.front() == '[' && host.back() == ']')
        host = host.substr(1, host.size() - 2);
    addrinfo hints{};
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    hints.ai_flags = AI_PASSIVE | AI_NUMERICHOST | AI_NUMERICSERV;
    addrinfo* res = nullptr;
    if (const int rc = ::getaddrinfo(host.c_str(), port.c_str(), &hints, &res); rc != 0)
        throw ferry::Error("Failed to parse the listen address '" + address + "': " + ::gai_strerror(rc));
    const int fd = ::socket(res->ai_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0) {
        ::freeaddrinfo(res);
        ferry::throwErrno("create a socket for " + address);
    }
    const int one = 1;
    ::setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    const int rc = ::bind(fd, res->ai_addr, res->ai_addrlen);
    ::freeaddrinfo(res);
    if (rc != 0 || ::listen(fd, 128) != 0) {
        const int err = errno;
        ::close(fd);
        throw ferry::Error("Failed to listen on " + address + ": " + ferry::errnoMessage(err));
    }
    spdlog::debug("Listening on {}", address);
    return {fd};
}

RegistryServer::RegistryServer(std::vector<int> listenFds, ServerOptions options, Handler handler,
                               std::function<void()> onOpen, std::function<void()> onClose)
    : m_listenFds(std::move(listenFds)), m_options(options), m_handler(std::move(handler)),
      m_onOpen(std::move(onOpen)), m_onClose(std::move(onClose))
{
}

RegistryServer::~RegistryServer()
{
    stop();
    for (int fd : m_listenFds)
        ::close(fd);
    if (m_stopFd >= 0)
        ::close(m_stopFd);
}

void RegistryServer::start()
{
    m_stopFd = ::eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
    if (m_stopFd < 0)
        ferry::throwErrno("create an eventfd");
    for (int fd : m_listenFds)
        ::fcntl(fd, F_SETFL, ::fcntl(fd, F_GETFL) | O_NONBLOCK);
    m_acceptThread = std::thread([this] { acceptLoop(); });
}

void RegistryServer::stop()
{
    if (!m_acceptThread.joinable())
        return;
    {
        std::lock_guard lock(m_mutex);
        m_stopping = true;
        for (int fd : m_openFds)
            ::shutdown(fd, SHUT_RDWR);
    }
    const std::uint64_t one = 1;
    [[maybe_unused]] const auto w = ::write(m_stopFd, &one, sizeof one);
    m_acceptThread.join();
    std::unique_lock lock(m_mutex);
    m_allDone.wait(lock, [this] { return m_active == 0; });
}

void RegistryServer::acceptLoop()
{
    std::vector<pollfd> pfds;
    for (int fd : m_listenFds)
        pfds.push_back({fd, POLLIN, 0});
    pfds.push_back({m_stopFd, POLLIN, 0});
    for (;;) {
        if (::poll(pfds.data(), pfds.size(), -1) < 0) {
            if (errno == EINTR)
                continue;
            spdlog::error("Failed to wait for connections: {}; stopping the listener", ferry::errnoMessage(errno));
            return;
        }
        if (pfds.back().revents != 0)
            return;
        for (std::size_t i = 0; i + 1 < pfds.size(); ++i) {
            if ((pfds[i].revents & POLLIN) == 0)
                continue;
            const int fd = ::accept4(pfds[i].fd, nullptr, nullptr, SOCK_CLOEXEC | SOCK_NONBLOCK);
            if (fd < 0) {
                if (errno != EAGAIN && errno != EINTR && errno != ECONNABORTED)
                    spdlog::warn("Failed to accept a connection: {}", ferry::errnoMessage(errno));
                continue;
            }
            admit(fd);
        }
    }
}

void RegistryServer::admit(int fd)
{
    std::string peer;
    try {
        peer = ferry::socketPeer(fd);
    } catch (const std::exception&) {
        peer = "unknown peer";
    }
    const std::string host = hostOfPeer(peer);
    std::string refusal;
    {
        std::lock_guard lock(m_mutex);
        if (m_stopping)
            refusal = "the registry is stopping";
        else if (m_active >= m_options.maxConnections)
            refusal = "too many connections (" + std::to_string(m_active) + ")";
        else if (m_perSource[host] >= m_options.maxPerSource)
            refusal = "too many connections from " + host + " (limit " + std::to_string(m_options.maxPerSource) + ")";
        else {
            ++m_active;
            if (m_onOpen)
                m_onOpen();
            ++m_perSource[host];
            m_openFds.insert(fd);
        }
    }
    if (!refusal.empty()) {
        spdlog::warn("Refused connection from {}: {}", peer, refusal);
        // A fresh socket's send buffer takes this small frame without blocking.
        const auto frame = ferry::encodeFrame(ferry::MessageType::Error,
                                              ferry::encode(ferry::ErrorMessage{"busy", refusal + "; retry later"}));
        [[maybe_unused]] const auto w = ::send(fd, frame.data(), frame.size(), MSG_NOSIGNAL | MSG_DONTWAIT);
        ::close(fd);
        return;
    }
    try {
        std::thread([this, fd, peer] { serve(fd, peer); }).detach();
    } catch (const std::exception& e) {
        spdlog::error("Failed to start serving {}: {}", peer, e.what());
        finished(fd, host);
    }
}

void RegistryServer::serve(int fd, const std::string& peer)
{
    const auto deadline = ferry::deadlineIn(m_options.connectionDeadline);
    {
        // Not owned: finished() closes it, after removing it from m_openFds,
        // so that stop() never shuts down a number already reused.
        ferry::FdStream stream(fd, fd, peer, false);
        try {
            const auto request = ferry::readFrame(stream, deadline, ferry::kMaxRegistryFrame);
            const auto reply = m_handler(request, peer);
            ferry::writeFrame(stream, reply.type, reply.payload, deadline);
        } catch (const ferry::TimeoutError&) {
            spdlog::warn("Closed the connection from {}: no complete request within {} ms", peer,
                         m_options.connectionDeadline.count());
            try {
                ferry::writeFrame(stream, ferry::MessageType::Error,
                                  ferry::encode(ferry::ErrorMessage{"timeout", "no complete request in time"}),
                                  ferry::deadlineIn(std::chrono::milliseconds(100)));
            } catch (const std::exception&) {
                // The peer is not reading either; closing is all that is left.
            }
        } catch (const ferry::ClosedError& e) {
            spdlog::warn("Connection from {} closed before a complete request: {}", peer, e.what());
        } catch (const ferry::ProtocolError& e) {
            spdlog::warn("Refused the request from {}: {}", peer, e.what());
            try {
                ferry::writeFrame(stream, ferry::MessageType::Error,
                                  ferry::encode(ferry::ErrorMessage{"bad-request", e.what()}),
                                  ferry::deadlineIn(std::chrono::milliseconds(200)));
            } catch (const std::exception&) {
                // Best effort: the peer may already be gone.
            }
        } catch (const std::exception& e) {
            spdlog::warn("Failed to serve {}: {}", peer, e.what());
        }
    }
    finished(fd, hostOfPeer(peer));
}

void RegistryServer::finished(int fd, const std::string& host)
{
    // Everything under the lock, the notification included: stop() may
    // destroy this object as soon as it sees m_active reach zero.
    std::lock_guard lock(m_mutex);
    m_openFds.erase(fd);
    ::close(fd);
    if (--m_perSource[host] == 0)
        m_perSource.erase(host);
    if (m_onClose)
        m_onClose();
    if (--m_active == 0)
        m_allDone.notify_all();
}

} // namespace registryd
