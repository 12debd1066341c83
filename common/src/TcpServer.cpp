#include "ferry/TcpServer.h"

#include <algorithm>
#include <cerrno>
#include <cstring>

#include <arpa/inet.h>
#include <fcntl.h>
#include <linux/inet_diag.h>
#include <linux/netlink.h>
#include <linux/sock_diag.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <spdlog/spdlog.h>
#include <systemd/sd-daemon.h>

#include "ferry/Error.h"

namespace ferry {

namespace {

std::string addressText(const sockaddr* sa)
{
    char buf[INET6_ADDRSTRLEN] = {};
    if (sa->sa_family == AF_INET)
        ::inet_ntop(AF_INET, &reinterpret_cast<const sockaddr_in*>(sa)->sin_addr, buf, sizeof buf);
    else if (sa->sa_family == AF_INET6)
        ::inet_ntop(AF_INET6, &reinterpret_cast<const sockaddr_in6*>(sa)->sin6_addr, buf, sizeof buf);
    else
        return "unknown";
    return buf;
}

bool isV4Mapped(const in6_addr& a)
{
    return IN6_IS_ADDR_V4MAPPED(&a);
}

// The uid owning the socket at the other end of a loopback TCP connection,
// asked of the kernel through sock_diag (what `ss -e` shows). Lets a server
// behind sshd tell a local user's connections from sshd's forwards, which
// all come from 127.0.0.1.
std::optional<std::uint32_t> loopbackPeerUid(int fd)
{
    sockaddr_storage local{}, remote{};
    socklen_t ll = sizeof local, rl = sizeof remote;
    if (::getsockname(fd, reinterpret_cast<sockaddr*>(&local), &ll) != 0 ||
        ::getpeername(fd, reinterpret_cast<sockaddr*>(&remote), &rl) != 0)
        return std::nullopt;
    struct {
        nlmsghdr nlh;
        inet_diag_req_v2 req;
    } msg{};
    msg.nlh.nlmsg_len = sizeof msg;
    msg.nlh.nlmsg_type = SOCK_DIAG_BY_FAMILY;
    msg.nlh.nlmsg_flags = NLM_F_REQUEST;
    msg.req.sdiag_protocol = IPPROTO_TCP;
    msg.req.idiag_states = ~0U;
    msg.req.id.idiag_cookie[0] = INET_DIAG_NOCOOKIE;
    msg.req.id.idiag_cookie[1] = INET_DIAG_NOCOOKIE;
    // The peer's socket: its local end is our remote end.
    if (remote.ss_family == AF_INET) {
        const auto* r = reinterpret_cast<const sockaddr_in*>(&remote);
        const auto* l = reinterpret_cast<const sockaddr_in*>(&local);
        msg.req.sdiag_family = AF_INET;
        msg.req.id.idiag_sport = r->sin_port;
        msg.req.id.idiag_dport = l->sin_port;
        std::memcpy(msg.req.id.idiag_src, &r->sin_addr, 4);
        std::memcpy(msg.req.id.idiag_dst, &l->sin_addr, 4);
    } else if (remote.ss_family == AF_INET6) {
        const auto* r = reinterpret_cast<const sockaddr_in6*>(&remote);
        const auto* l = reinterpret_cast<const sockaddr_in6*>(&local);
        msg.req.id.idiag_sport = r->sin6_port;
        msg.req.id.idiag_dport = l->sin6_port;
        if (isV4Mapped(r->sin6_addr)) {
            msg.req.sdiag_family = AF_INET;
            std::memcpy(msg.req.id.idiag_src, &r->sin6_addr.s6_addr[12], 4);
            std::memcpy(msg.req.id.idiag_dst, &l->sin6_addr.s6_addr[12], 4);
        } else {
            msg.req.sdiag_family = AF_INET6;
            std::memcpy(msg.req.id.idiag_src, &r->sin6_addr, 16);
            std::memcpy(msg.req.id.idiag_dst, &l->sin6_addr, 16);
        }
    } else {
        return std::nullopt;
    }
    const int nl = ::socket(AF_NETLINK, SOCK_DGRAM | SOCK_CLOEXEC, NETLINK_SOCK_DIAG);
    if (nl < 0)
        return std::nullopt;
    const timeval tv{1, 0};
    ::setsockopt(nl, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    std::optional<std::uint32_t> uid;
    if (::send(nl, &msg, sizeof msg, 0) == static_cast<ssize_t>(sizeof msg)) {
        alignas(nlmsghdr) char buf[8192];
        const ssize_t n = ::recv(nl, buf, sizeof buf, 0);
        // An exact lookup answers with one message: the socket, or an error.
        nlmsghdr h{};
        if (n >= static_cast<ssize_t>(sizeof h)) {
            std::memcpy(&h, buf, sizeof h);
            if (h.nlmsg_type == SOCK_DIAG_BY_FAMILY && h.nlmsg_len <= static_cast<std::uint32_t>(n) &&
                h.nlmsg_len >= NLMSG_LENGTH(sizeof(inet_diag_msg))) {
                inet_diag_msg m{};
                std::memcpy(&m, buf + NLMSG_HDRLEN, sizeof m);
                uid = m.idiag_uid;
            }
        }
    }
    ::close(nl);
    return uid;
}

bool isLoopback(const sockaddr* sa)
{
    if (sa->sa_family == AF_INET)
        return (ntohl(reinterpret_cast<const sockaddr_in*>(sa)->sin_addr.s_addr) >> 24) == 127;
    if (sa->sa_family == AF_INET6) {
        const auto& a = reinterpret_cast<const sockaddr_in6*>(sa)->sin6_addr;
        return IN6_IS_ADDR_LOOPBACK(&a) || (isV4Mapped(a) && a.s6_addr[12] == 127);
    }
    return false;
}

int bindOne(const std::string& address)
{
    const auto colon = address.rfind(':');
    if (colon == std::string::npos)
        throw Error("Failed to parse the listen address '" + address + "': expected ADDRESS:PORT");
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
        throw Error("Failed to parse the listen address '" + address + "': " + ::gai_strerror(rc));
    const int fd = ::socket(res->ai_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0) {
        ::freeaddrinfo(res);
        throwErrno("create a socket for " + address);
    }
    const int one = 1;
    const int zero = 0;
    ::setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    // "[::]:PORT" serves both families, as systemd's BindIPv6Only=both does.
    if (res->ai_family == AF_INET6)
        ::setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &zero, sizeof zero);
    const int rc = ::bind(fd, res->ai_addr, res->ai_addrlen);
    ::freeaddrinfo(res);
    if (rc != 0 || ::listen(fd, 512) != 0) {
        const int err = errno;
        ::close(fd);
        throw Error("Failed to listen on " + address + ": " + errnoMessage(err));
    }
    spdlog::debug("Listening on {}", address);
    return fd;
}

} // namespace

std::string sourceKey(const sockaddr* sa)
{
    if (sa->sa_family == AF_INET6) {
        const auto& a = reinterpret_cast<const sockaddr_in6*>(sa)->sin6_addr;
        if (isV4Mapped(a)) {
            char buf[INET_ADDRSTRLEN] = {};
            ::inet_ntop(AF_INET, &a.s6_addr[12], buf, sizeof buf);
            return buf;
        }
        // One customer usually gets a /64 (or more): counting addresses
        // inside it would let one host take every slot.
        in6_addr prefix{};
        std::memcpy(prefix.s6_addr, a.s6_addr, 8);
        char buf[INET6_ADDRSTRLEN] = {};
        ::inet_ntop(AF_INET6, &prefix, buf, sizeof buf);
        return std::string(buf) + "/64";
    }
    return addressText(sa);
}

std::vector<int> listeningSockets(const std::string& addresses, bool& fromSystemd)
{
    std::vector<int> fds;
    fromSystemd = false;
    const int n = sd_listen_fds(1);
    if (n < 0)
        throw Error("Failed to take the sockets passed by systemd: " + errnoMessage(-n));
    for (int i = 0; i < n; ++i) {
        const int fd = SD_LISTEN_FDS_START + i;
        if (sd_is_socket(fd, AF_UNSPEC, SOCK_STREAM, 1) <= 0)
            throw Error("Failed to use socket " + std::to_string(fd) +
                        " passed by systemd: not a listening stream socket (check the .socket unit)");
        fds.push_back(fd);
    }
    if (!fds.empty()) {
        spdlog::debug("Using {} listening socket(s) from systemd", fds.size());
        fromSystemd = true;
        return fds;
    }
    try {
        std::size_t start = 0;
        while (start <= addresses.size()) {
            const auto comma = addresses.find(',', start);
            const auto one = addresses.substr(start, comma == std::string::npos ? std::string::npos : comma - start);
            if (!one.empty())
                fds.push_back(bindOne(one));
            if (comma == std::string::npos)
                break;
            start = comma + 1;
        }
    } catch (...) {
        for (int fd : fds)
            ::close(fd);
        throw;
    }
    if (fds.empty())
        throw Error("Failed to listen: no address given");
    return fds;
}

int bindUnixSocket(const std::string& path, unsigned mode, long gid)
{
    sockaddr_un addr{};
    addr.sun_family = AF_UNIX;
    if (path.empty() || path.size() >= sizeof addr.sun_path)
        throw Error("Failed to listen on '" + path + "': not a usable unix socket path");
    std::memcpy(addr.sun_path, path.c_str(), path.size());
    struct stat st {};
    if (::lstat(path.c_str(), &st) == 0) {
        if (!S_ISSOCK(st.st_mode))
            throw Error("Failed to listen on " + path + ": something other than a socket is there");
        ::unlink(path.c_str());
    }
    const int fd = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0)
        throwErrno("create a unix socket for " + path);
    // Bound 0600 at first, so that nobody connects before mode and group are set.
    const mode_t old = ::umask(0177);
    const int rc = ::bind(fd, reinterpret_cast<const sockaddr*>(&addr), sizeof addr);
    ::umask(old);
    int err = rc != 0 ? errno : 0;
    if (err == 0 && gid >= 0 && ::chown(path.c_str(), static_cast<uid_t>(-1), static_cast<gid_t>(gid)) != 0)
        err = errno;
    if (err == 0 && ::chmod(path.c_str(), mode) != 0)
        err = errno;
    if (err == 0 && ::listen(fd, 512) != 0)
        err = errno;
    if (err != 0) {
        ::close(fd);
        throw Error("Failed to listen on " + path + ": " + errnoMessage(err));
    }
    spdlog::debug("Listening on {}", path);
    return fd;
}

bool TcpConnection::authenticated(const std::string& identity)
{
    std::lock_guard lock(m_server->m_mutex);
    if (!m_identity.empty())
        return m_identity == identity;
    auto& n = m_server->m_perIdentity[identity];
    if (n >= m_server->m_options.maxPerIdentity) {
        ++m_server->m_counts["over the per-node limit after authenticating"];
        return false;
    }
    ++n;
    m_identity = identity;
    return true;
}

bool TcpConnection::relayedSource(const std::string& address)
{
    sockaddr_storage ss{};
    auto* v4 = reinterpret_cast<sockaddr_in*>(&ss);
    auto* v6 = reinterpret_cast<sockaddr_in6*>(&ss);
    std::string source = address;
    if (::inet_pton(AF_INET, address.c_str(), &v4->sin_addr) == 1) {
        v4->sin_family = AF_INET;
        source = sourceKey(reinterpret_cast<const sockaddr*>(&ss));
    } else if (::inet_pton(AF_INET6, address.c_str(), &v6->sin6_addr) == 1) {
        v6->sin6_family = AF_INET6;
        source = sourceKey(reinterpret_cast<const sockaddr*>(&ss));
    }
    std::lock_guard lock(m_server->m_mutex);
    m_source = source;
    if (!m_server->takeToken(source, Clock::now())) {
        m_server->countRefusal(source, "over the per-source rate");
        return false;
    }
    m_server->makeRoomForSource(source, this);
    return true;
}

bool TcpConnection::isAuthenticated() const
{
    std::lock_guard lock(m_server->m_mutex);
    return !m_identity.empty();
}

bool TcpConnection::wasCut() const
{
    std::lock_guard lock(m_server->m_mutex);
    return m_cut;
}

void TcpConnection::countFailure(const std::string& what)
{
    std::lock_guard lock(m_server->m_mutex);
    ++m_server->m_counts[what];
}

TcpServer::TcpServer(std::string name, std::vector<int> listenFds, TcpServerOptions options, Handler handler,
                     std::function<void()> onOpen, std::function<void()> onClose)
    : m_name(std::move(name)), m_listenFds(std::move(listenFds)), m_options(std::move(options)),
      m_handler(std::move(handler)), m_onOpen(std::move(onOpen)), m_onClose(std::move(onClose))
{
}

TcpServer::~TcpServer()
{
    stop();
    for (int fd : m_listenFds)
        ::close(fd);
    if (m_stopFd >= 0)
        ::close(m_stopFd);
}

void TcpServer::start()
{
    m_stopFd = ::eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
    if (m_stopFd < 0)
        throwErrno("create an eventfd");
    // systemd hands sockets over blocking unless NonBlocking=yes; the accept
    // loop drains each until EAGAIN.
    for (int fd : m_listenFds)
        if (::fcntl(fd, F_SETFL, ::fcntl(fd, F_GETFL) | O_NONBLOCK) != 0)
            throwErrno("make the listening socket non-blocking");
    m_intervalStart = Clock::now();
    m_acceptThread = std::thread([this] { acceptLoop(); });
}

void TcpServer::stop()
{
    if (!m_acceptThread.joinable())
        return;
    {
        std::lock_guard lock(m_mutex);
        m_stopping = true;
        for (auto& c : m_conns)
            cutLocked(*c, "");
    }
    const std::uint64_t one = 1;
    [[maybe_unused]] const auto w = ::write(m_stopFd, &one, sizeof one);
    m_acceptThread.join();
    {
        std::unique_lock lock(m_mutex);
        m_allDone.wait(lock, [this] { return m_conns.empty(); });
        summarise(Clock::now(), true);
        // The idle workers retire (m_stopping); the busy ones as soon as
        // their connection has finished, which it now has.
        m_workReady.notify_all();
        m_allDone.wait(lock, [this] { return m_workers.empty(); });
    }
    // Every worker has retired; its thread may still be exiting.
    joinEnded();
}

void TcpServer::joinEnded()
{
    std::vector<std::thread> ended;
    {
        std::lock_guard lock(m_mutex);
        ended.swap(m_ended);
    }
    for (auto& t : ended)
        t.join();
}

TcpServer::Stats TcpServer::stats() const
{
    std::lock_guard lock(m_mutex);
    Stats s = m_stats;
    s.open = m_conns.size();
    s.workers = m_workers.size();
    s.idleWorkers = m_idleWorkers;
    s.unauthenticated = static_cast<std::size_t>(
        std::count_if(m_conns.begin(), m_conns.end(), [](const Conn& c) { return c->m_identity.empty(); }));
    return s;
}

void TcpServer::acceptLoop()
{
    std::vector<pollfd> pfds;
    for (int fd : m_listenFds)
        pfds.push_back({fd, POLLIN, 0});
    pfds.push_back({m_stopFd, POLLIN, 0});
    for (;;) {
        joinEnded();
        int timeoutMs;
        {
            std::lock_guard lock(m_mutex);
            timeoutMs = enforceDeadlines(Clock::now());
            summarise(Clock::now(), false);
        }
        if (::poll(pfds.data(), pfds.size(), timeoutMs) < 0) {
            if (errno == EINTR)
                continue;
            spdlog::error("Failed to wait for {} connections: {}; stopping the listener", m_name,
                          errnoMessage(errno));
            return;
        }
        if (pfds.back().revents != 0)
            return;
        for (std::size_t i = 0; i + 1 < pfds.size(); ++i) {
            if ((pfds[i].revents & POLLIN) == 0)
                continue;
            // Drain the backlog: one poll wake-up may stand for many peers.
            for (int k = 0; k < 256; ++k) {
                const int fd = ::accept4(pfds[i].fd, nullptr, nullptr, SOCK_CLOEXEC | SOCK_NONBLOCK);
                if (fd < 0) {
                    if (errno == EMFILE || errno == ENFILE) {
                        std::lock_guard lock(m_mutex);
                        ++m_counts["not accepted: out of file descriptors"];
                    } else if (errno != EAGAIN && errno != EINTR && errno != ECONNABORTED) {
                        spdlog::warn("Failed to accept a {} connection: {}", m_name, errnoMessage(errno));
                    }
                    break;
                }
                admit(fd);
            }
        }
    }
}

std::string TcpServer::sourceOf(int fd, const sockaddr* peer)
{
    if (m_options.loopbackByUid && isLoopback(peer)) {
        if (const auto uid = loopbackPeerUid(fd))
            return "uid " + std::to_string(*uid) + " on loopback";
    }
    return sourceKey(peer);
}

bool TcpServer::takeToken(const std::string& source, Clock::time_point now)
{
    if (m_options.sourceRate <= 0)
        return true;
    auto it = m_buckets.find(source);
    if (it == m_buckets.end()) {
        if (m_buckets.size() >= m_options.maxTrackedSources) {
            // Forget the buckets that refilled (they carry no history), or,
            // under a wide flood, the stalest one.
            for (auto b = m_buckets.begin(); b != m_buckets.end();) {
                const double refill =
                    std::chrono::duration<double>(now - b->second.last).count() * m_options.sourceRate;
                b = b->second.tokens + refill >= m_options.sourceBurst ? m_buckets.erase(b) : std::next(b);
            }
            if (m_buckets.size() >= m_options.maxTrackedSources)
                m_buckets.erase(std::min_element(m_buckets.begin(), m_buckets.end(), [](const auto& a, const auto& b) {
                    return a.second.last < b.second.last;
                }));
        }
        it = m_buckets.emplace(source, Bucket{m_options.sourceBurst, now}).first;
    }
    auto& b = it->second;
    b.tokens = std::min(m_options.sourceBurst,
                        b.tokens + std::chrono::duration<double>(now - b.last).count() * m_options.sourceRate);
    b.last = now;
    if (b.tokens < 1.0)
        return false;
    b.tokens -= 1.0;
    return true;
}

void TcpServer::cutLocked(TcpConnection& c, const std::string& why)
{
    if (c.m_cut)
        return;
    c.m_cut = true;
    // The handler's next read sees the end of the stream; the fd is closed
    // by finished(), so the number cannot be reused under us.
    ::shutdown(c.m_fd, SHUT_RDWR);
    ++m_stats.cut;
    if (!why.empty())
        ++m_counts[why];
}

void TcpServer::countRefusal(const std::string& source, const std::string& reason)
{
    ++m_stats.refused;
    ++m_counts["refused: " + reason];
    ++m_refusedSources[source];
    if (m_refusedSources.size() > 1024)
        m_refusedSources.erase(std::prev(m_refusedSources.end()));
}

void TcpServer::makeRoomForSource(const std::string& source, const TcpConnection* except)
{
    std::size_t mine = 0;
    for (const auto& c : m_conns)
        if (c.get() != except && c->m_identity.empty() && !c->m_cut && c->m_source == source)
            ++mine;
    if (mine < m_options.maxPerSource)
        return;
    for (const auto& c : m_conns)
        if (c.get() != except && c->m_identity.empty() && !c->m_cut && c->m_source == source) {
            cutLocked(*c, "cut to make room for a newer one from the same source");
            return;
        }
}

void TcpServer::refuse(int fd, const std::string& source, const std::string& reason)
{
    countRefusal(source, reason);
    if (m_options.refusalMessage) {
        // A fresh socket's send buffer takes this small answer without blocking.
        const auto bytes = m_options.refusalMessage(reason);
        [[maybe_unused]] const auto w = ::send(fd, bytes.data(), bytes.size(), MSG_NOSIGNAL | MSG_DONTWAIT);
    }
    ::close(fd);
}

void TcpServer::admit(int fd)
{
    sockaddr_storage peerAddr{};
    socklen_t len = sizeof peerAddr;
    if (::getpeername(fd, reinterpret_cast<sockaddr*>(&peerAddr), &len) != 0) {
        ::close(fd);  // already gone
        return;
    }
    const auto* sa = reinterpret_cast<const sockaddr*>(&peerAddr);
    std::string peer, source;
    std::optional<std::uint32_t> unixUid;
    bool relay = false;
    if (sa->sa_family == AF_UNIX) {
        // The uid the kernel recorded when the peer connected: a process
        // cannot choose it (unlike anything it sends).
        ucred cred{};
        socklen_t cl = sizeof cred;
        if (::getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &cl) != 0) {
            ::close(fd);
            return;
        }
        unixUid = cred.uid;
        peer = "uid " + std::to_string(cred.uid) + " (pid " + std::to_string(cred.pid) + ") on a unix socket";
        source = "uid " + std::to_string(cred.uid) + " on a unix socket";
        relay = m_options.relayUid && cred.uid == *m_options.relayUid;
    } else {
        peer = addressText(sa);
        const std::uint16_t port = sa->sa_family == AF_INET
                                       ? ntohs(reinterpret_cast<const sockaddr_in*>(sa)->sin_port)
                                       : ntohs(reinterpret_cast<const sockaddr_in6*>(sa)->sin6_port);
        peer = (sa->sa_family == AF_INET6 ? "[" + peer + "]" : peer) + ":" + std::to_string(port);
        source = sourceOf(fd, sa);
    }
    const auto now = Clock::now();

    auto conn = std::make_shared<TcpConnection>();
    {
        std::lock_guard lock(m_mutex);
        if (m_stopping)
            return refuse(fd, source, "stopping");
        // A relay's connections are limited by the peer they relay, once
        // the handler knows it (relayedSource()).
        if (!relay && !takeToken(source, now))
            return refuse(fd, source, "over the per-source rate");
        // Make room among the unauthenticated: first from this source's own
        // connections, then from everyone's, the oldest first.
        if (!relay)
            makeRoomForSource(source, nullptr);
        std::size_t live = 0, unauth = 0;
        for (const auto& c : m_conns) {
            if (c->m_cut)
                continue;
            ++live;
            if (c->m_identity.empty())
                ++unauth;
        }
        if (unauth >= m_options.maxUnauthenticated || live >= m_options.maxConnections) {
            if (unauth == 0)
                return refuse(fd, source,
                              "at the limit of " + std::to_string(m_options.maxConnections) + " connections");
            for (const auto& c : m_conns)
                if (c->m_identity.empty() && !c->m_cut) {
                    cutLocked(*c, "cut to make room for a newer one (every slot taken)");
                    break;
                }
        }
        conn->m_server = this;
        conn->m_fd = fd;
        conn->m_id = m_nextId++;
        conn->m_peer = peer;
        conn->m_source = source;
        conn->m_unixPeerUid = unixUid;
        conn->m_accepted = now;
        conn->m_authDeadline = now + m_options.authDeadline;
        m_conns.push_back(conn);
        ++m_stats.accepted;
        if (m_onOpen)
            m_onOpen();
    }
    try {
        std::lock_guard lock(m_mutex);
        dispatchLocked(conn);
    } catch (const std::exception& e) {
        spdlog::error("Failed to start serving {}: {}", peer, e.what());
        finished(conn);
    }
}

void TcpServer::dispatchLocked(const Conn& conn)
{
    // Each connection handed over has an idle worker of its own: one that
    // is woken and finds another's taken waits on.
    if (m_idleWorkers > m_handed.size()) {
        m_handed.push_back(conn);
        m_workReady.notify_one();
        return;
    }
    // Registered under the lock, before the worker can retire.
    const std::uint64_t id = m_nextWorker++;
    auto& slot = m_workers[id];
    try {
        slot = std::thread([this, id, conn] { work(id, conn); });
    } catch (...) {
        m_workers.erase(id);
        throw;
    }
    ++m_stats.workersStarted;
}

void TcpServer::work(std::uint64_t worker, Conn first)
{
    Conn conn = std::move(first);
    for (;;) {
        serve(conn);
        conn.reset();
        std::unique_lock lock(m_mutex);
        // A handed connection is served even while stopping: its handler
        // sees the cut and ends at once, and finished() closes it.
        const auto next = [&] { return !m_handed.empty() || m_stopping; };
        if (m_handed.empty()) {
            if (m_stopping || m_idleWorkers >= m_options.maxIdleWorkers)
                break;
            ++m_idleWorkers;
            m_workReady.wait_for(lock, m_options.idleWorkerLife, next);
            --m_idleWorkers;
            if (m_handed.empty())
                break; // stopping, or idle for idleWorkerLife
        }
        conn = std::move(m_handed.front());
        m_handed.pop_front();
    }
    // Retire: the accept loop or stop() joins the thread.
    std::lock_guard lock(m_mutex);
    if (auto t = m_workers.find(worker); t != m_workers.end()) {
        m_ended.push_back(std::move(t->second));
        m_workers.erase(t);
    }
    if (m_workers.empty())
        m_allDone.notify_all();
}

void TcpServer::serve(const Conn& conn)
{
    try {
        m_handler(*conn);
    } catch (const std::exception& e) {
        // Handlers catch their own failures; this is the last resort.
        spdlog::warn("Connection from {} failed: {}", conn->m_peer, e.what());
    }
    finished(conn);
}

void TcpServer::finished(const Conn& conn)
{
    // Everything under the lock, the notification included: stop() may
    // destroy this object as soon as it sees the list empty.
    std::lock_guard lock(m_mutex);
    m_conns.remove(conn);
    ::close(conn->m_fd);
    if (!conn->m_identity.empty()) {
        if (auto it = m_perIdentity.find(conn->m_identity); it != m_perIdentity.end() && --it->second == 0)
            m_perIdentity.erase(it);
    }
    if (m_onClose)
        m_onClose();
    if (m_conns.empty())
        m_allDone.notify_all();
}

int TcpServer::enforceDeadlines(Clock::time_point now)
{
    auto next = now + std::chrono::milliseconds(m_options.summaryInterval);
    for (const auto& c : m_conns) {
        if (c->m_cut)
            continue;
        if (c->m_identity.empty()) {
            if (now >= c->m_authDeadline) {
                cutLocked(*c, "cut for not authenticating within " + std::to_string(m_options.authDeadline.count()) +
                                  " ms");
                continue;
            }
            next = std::min(next, c->m_authDeadline);
        }
        if (m_options.connectionDeadline.count() > 0) {
            const auto end = c->m_accepted + m_options.connectionDeadline;
            if (now >= end) {
                cutLocked(*c, "cut at the connection deadline of " +
                                  std::to_string(m_options.connectionDeadline.count()) + " ms");
                continue;
            }
            next = std::min(next, end);
        }
    }
    const auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(next - now).count() + 1;
    return static_cast<int>(std::clamp<long long>(ms, 1, 60000));
}

void TcpServer::summarise(Clock::time_point now, bool force)
{
    if (m_counts.empty() || (!force && now - m_intervalStart < m_options.summaryInterval)) {
        if (m_counts.empty())
            m_intervalStart = now;
        return;
    }
    std::string text;
    for (const auto& [what, n] : m_counts)
        text += (text.empty() ? "" : "; ") + std::to_string(n) + " " + what;
    if (!m_refusedSources.empty()) {
        const auto top = std::max_element(m_refusedSources.begin(), m_refusedSources.end(),
                                          [](const auto& a, const auto& b) { return a.second < b.second; });
        text += "; most refusals from " + top->first + " (" + std::to_string(top->second) + ")";
    }
    const auto secs = std::chrono::duration_cast<std::chrono::seconds>(now - m_intervalStart).count();
    spdlog::warn("In the last {} s, {} connections: {}", secs, m_name, text);
    m_counts.clear();
    m_refusedSources.clear();
    m_intervalStart = now;
}

} // namespace ferry
