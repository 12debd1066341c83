#include "Collector.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <thread>

#include <spdlog/spdlog.h>

#include "ferry/Error.h"
#include "ferry/PullProtocol.h"

namespace collectord {

Collector::Collector(std::string storePath, SessionOptions options, std::function<void(int)> onBusy)
    : m_storePath(std::move(storePath)), m_options(std::move(options)), m_onBusy(std::move(onBusy))
{
}

Collector::~Collector()
{
    std::unique_lock lock(m_mutex);
    m_idle.wait(lock, [this] { return m_active == 0; });
}

void Collector::acceptFrom(int listenFd)
{
    for (;;) {
        const int fd = ::accept4(listenFd, nullptr, nullptr, SOCK_CLOEXEC | SOCK_NONBLOCK);
        if (fd < 0) {
            if (errno == EINTR)
                continue;
            if (errno != EAGAIN && errno != EWOULDBLOCK)
                spdlog::warn("Failed to accept a connection: {}", ferry::errnoMessage(errno));
            return;
        }
        std::unique_lock lock(m_mutex);
        if (m_active >= kMaxSessions) {
            spdlog::warn("Refusing a connection from {}: {} sessions already running", ferry::socketPeer(fd),
                         kMaxSessions);
            ::close(fd);
            continue;
        }
        ++m_active;
        lock.unlock();
        const int one = 1;
        ::setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
        ++m_sessions;
        m_onBusy(+1);
        std::thread([this, fd] { serve(fd); }).detach();
    }
}

void Collector::serve(int fd)
{
    ferry::FdStream stream(fd, fd, ferry::socketPeer(fd), true);
    try {
        const auto store = ferry::openSessionStore(m_storeConfig, m_storePath);
        const auto r = serveSession(stream, *store, m_options);
        if (r.batches > 0)
            spdlog::info("Stored {} records from {} epoch {} ({} already stored)", r.stored,
                         ferry::escapeForLog(r.node), r.epoch, r.duplicates);
        else
            spdlog::debug("Session with {} ended with nothing to store", ferry::escapeForLog(r.node));
    } catch (const std::exception& e) {
        spdlog::warn("Session with {} failed: {}", stream.peer(), e.what());
    }
    m_onBusy(-1);
    std::lock_guard lock(m_mutex);
    --m_active;
    m_idle.notify_all();
}

int listenTcp(const std::string& host, std::uint16_t port)
{
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_port = htons(port);
    if (::inet_pton(AF_INET, host.c_str(), &addr.sin_addr) != 1)
        throw ferry::Error("Failed to listen on " + host + ":" + std::to_string(port) + ": not an IPv4 address");
    const int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
    if (fd < 0)
        ferry::throwErrno("create a socket");
    const int one = 1;
    ::setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    if (::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0 || ::listen(fd, 64) != 0) {
        const int err = errno;
        ::close(fd);
        throw ferry::Error("Failed to listen on " + host + ":" + std::to_string(port) + ": " + ferry::errnoMessage(err));
    }
    return fd;
}

} // namespace collectord
