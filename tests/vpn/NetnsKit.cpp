#include "NetnsKit.h"

#include <arpa/inet.h>
#include <dirent.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <stdexcept>

namespace vpntest {

using ferry::test::run;

std::string mustRun(const std::vector<std::string>& argv)
{
    const auto r = run(argv, {}, {}, std::chrono::seconds(20));
    if (r.exitCode != 0) {
        std::string cmd;
        for (const auto& a : argv)
            cmd += a + " ";
        throw std::runtime_error("command failed (" + std::to_string(r.exitCode) + "): " + cmd + ": " + r.err);
    }
    return r.out;
}

Netns::Netns(std::string name) : m_name(std::move(name))
{
    mustRun({"ip", "netns", "add", m_name});
    ip({"link", "set", "lo", "up"});
}

Netns::~Netns()
{
    run({"ip", "netns", "del", m_name}, {}, {}, std::chrono::seconds(10));
}

std::string Netns::ip(const std::vector<std::string>& args) const
{
    std::vector<std::string> argv{"ip", "-n", m_name};
    argv.insert(argv.end(), args.begin(), args.end());
    return mustRun(argv);
}

ferry::test::RunResult Netns::exec(const std::vector<std::string>& args) const
{
    std::vector<std::string> argv{"ip", "netns", "exec", m_name};
    argv.insert(argv.end(), args.begin(), args.end());
    return run(argv, {}, {}, std::chrono::seconds(20));
}

void removeStaleNamespaces(const std::string& prefix)
{
    DIR* dir = ::opendir("/run/netns");
    if (dir == nullptr)
        return;
    std::vector<std::string> stale;
    while (dirent* e = ::readdir(dir)) {
        const std::string name = e->d_name;
        if (name.rfind(prefix, 0) != 0)
            continue;
        const auto pid = std::atoi(name.c_str() + prefix.size());
        if (pid > 0 && ::kill(pid, 0) != 0 && errno == ESRCH)
            stale.push_back(name);
    }
    ::closedir(dir);
    for (const auto& name : stale)
        run({"ip", "netns", "del", name}, {}, {}, std::chrono::seconds(10));
}

int tcpSocketIn(const std::string& netns, int family)
{
    int fd = -1;
    std::string error;
    // Namespaces are per thread: switch a throw-away thread, make the socket
    // there; the socket stays in that namespace wherever it is used.
    std::thread t([&] {
        const int nsFd = ::open(("/run/netns/" + netns).c_str(), O_RDONLY | O_CLOEXEC);
        if (nsFd < 0 || ::setns(nsFd, CLONE_NEWNET) != 0) {
            error = "enter netns " + netns + ": " + std::strerror(errno);
            if (nsFd >= 0)
                ::close(nsFd);
            return;
        }
        ::close(nsFd);
        fd = ::socket(family, SOCK_STREAM | SOCK_CLOEXEC, 0);
        if (fd < 0)
            error = std::string("socket: ") + std::strerror(errno);
    });
    t.join();
    if (fd < 0)
        throw std::runtime_error(error);
    return fd;
}

BannerServer::BannerServer(const std::string& netns, const std::vector<int>& ports, std::string tag)
    : m_tag(std::move(tag))
{
    for (int port : ports) {
        // [::] with IPv4 mapped in: one listener for both families.
        const int fd = tcpSocketIn(netns, AF_INET6);
        const int one = 1;
        const int zero = 0;
        ::setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
        ::setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &zero, sizeof zero);
        sockaddr_in6 addr{};
        addr.sin6_family = AF_INET6;
        addr.sin6_port = htons(static_cast<std::uint16_t>(port));
        if (::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0 || ::listen(fd, 16) != 0) {
            const std::string err = std::strerror(errno);
            ::close(fd);
            throw std::runtime_error("listen on port " + std::to_string(port) + " in " + netns + ": " + err);
        }
        m_listeners.emplace_back(fd, port);
    }
    m_stopFd = ::eventfd(0, EFD_CLOEXEC);
    m_thread = std::thread([this] { serve(); });
}

BannerServer::~BannerServer()
{
    const std::uint64_t one = 1;
    [[maybe_unused]] auto n = ::write(m_stopFd, &one, sizeof one);
    m_thread.join();
    for (auto [fd, port] : m_listeners)
        ::close(fd);
    ::close(m_stopFd);
}

void BannerServer::serve()
{
    std::vector<pollfd> fds;
    for (auto [fd, port] : m_listeners)
        fds.push_back({fd, POLLIN, 0});
    fds.push_back({m_stopFd, POLLIN, 0});
    for (;;) {
        if (::poll(fds.data(), fds.size(), -1) < 0 && errno != EINTR)
            return;
        if (fds.back().revents & POLLIN)
            return;
        for (std::size_t i = 0; i + 1 < fds.size(); ++i) {
            if (!(fds[i].revents & POLLIN))
                continue;
            const int c = ::accept4(fds[i].fd, nullptr, nullptr, SOCK_CLOEXEC);
            if (c < 0)
                continue;
            const std::string line = m_tag + ":" + std::to_string(m_listeners[i].second) + "\n";
            [[maybe_unused]] auto n = ::send(c, line.data(), line.size(), MSG_NOSIGNAL);
            ::close(c);
        }
    }
}

std::string connectFrom(const std::string& netns, const std::string& address, int port,
                        std::chrono::milliseconds timeout)
{
    // "fe80::1%vpn0": IPv6, the scope being an interface of netns.
    const bool v6 = address.find(':') != std::string::npos;
    sockaddr_storage storage{};
    socklen_t addrLen = 0;
    if (v6) {
        auto* a6 = reinterpret_cast<sockaddr_in6*>(&storage);
        a6->sin6_family = AF_INET6;
        a6->sin6_port = htons(static_cast<std::uint16_t>(port));
        const auto pct = address.find('%');
        if (::inet_pton(AF_INET6, address.substr(0, pct).c_str(), &a6->sin6_addr) != 1)
            return "error: bad address " + address;
        if (pct != std::string::npos) {
            const auto out = ferry::test::run({"ip", "-n", netns, "-o", "link", "show", address.substr(pct + 1)}).out;
            a6->sin6_scope_id = static_cast<std::uint32_t>(std::atoi(out.c_str()));
            if (a6->sin6_scope_id == 0)
                return "error: no interface " + address.substr(pct + 1) + " in " + netns;
        }
        addrLen = sizeof *a6;
    } else {
        auto* a4 = reinterpret_cast<sockaddr_in*>(&storage);
        a4->sin_family = AF_INET;
        a4->sin_port = htons(static_cast<std::uint16_t>(port));
        if (::inet_pton(AF_INET, address.c_str(), &a4->sin_addr) != 1)
            return "error: bad address " + address;
        addrLen = sizeof *a4;
    }
    const int fd = tcpSocketIn(netns, v6 ? AF_INET6 : AF_INET);
    struct Closer {
        int fd;
        ~Closer() { ::close(fd); }
    } closer{fd};
    ::fcntl(fd, F_SETFL, ::fcntl(fd, F_GETFL) | O_NONBLOCK);
    const auto deadline = std::chrono::steady_clock::now() + timeout;
    auto left = [&] {
        return static_cast<int>(std::max<long>(
            0, std::chrono::duration_cast<std::chrono::milliseconds>(deadline - std::chrono::steady_clock::now()).count()));
    };
    auto describe = [](int err) -> std::string {
        if (err == ECONNREFUSED)
            return "refused";
        if (err == EHOSTUNREACH || err == ENETUNREACH)
            return "unreachable";
        if (err == ETIMEDOUT)
            return "timeout";
        return std::string("error: ") + std::strerror(err);
    };
    if (::connect(fd, reinterpret_cast<sockaddr*>(&storage), addrLen) != 0 && errno != EINPROGRESS)
        return describe(errno);
    pollfd p{fd, POLLOUT, 0};
    if (::poll(&p, 1, left()) <= 0)
        return "timeout";
    int err = 0;
    socklen_t len = sizeof err;
    ::getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len);
    if (err != 0)
        return describe(err);
    std::string line;
    for (;;) {
        pollfd r{fd, POLLIN, 0};
        if (::poll(&r, 1, left()) <= 0)
            return line.empty() ? "timeout" : line;
        char buf[128];
        const ssize_t n = ::recv(fd, buf, sizeof buf, 0);
        if (n <= 0)
            break;
        line.append(buf, static_cast<std::size_t>(n));
        if (line.find('\n') != std::string::npos)
            break;
    }
    while (!line.empty() && (line.back() == '\n' || line.back() == '\r'))
        line.pop_back();
    return line.empty() ? "closed" : line;
}

} // namespace vpntest
