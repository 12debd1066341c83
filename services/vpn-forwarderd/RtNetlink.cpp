#include "RtNetlink.h"

#include <arpa/inet.h>
#include <linux/if_addr.h>
#include <linux/if_link.h>
#include <linux/ip.h>
#include <linux/netlink.h>
#include <linux/rtnetlink.h>
#include <net/if.h>
#include <poll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <optional>
#include <cerrno>
#include <cstring>
#include <map>
#include <vector>

#include <spdlog/spdlog.h>

#include "ferry/Error.h"

namespace vpnfwd {

namespace {

// Netlink messages and attributes are 4-byte aligned inside a buffer we own;
// reading them through memcpy keeps the code free of casts that the compiler
// (rightly) distrusts.
constexpr std::size_t align4(std::size_t n)
{
    return (n + 3) & ~std::size_t{3};
}

struct Attr {
    unsigned short type = 0;
    const char* data = nullptr;
    std::size_t size = 0;
};

// Walks the attributes in [p, p + len).
std::vector<Attr> attributes(const char* p, std::size_t len)
{
    std::vector<Attr> out;
    while (len >= sizeof(rtattr)) {
        rtattr a{};
        std::memcpy(&a, p, sizeof a);
        if (a.rta_len < sizeof(rtattr) || a.rta_len > len)
            break;
        out.push_back({static_cast<unsigned short>(a.rta_type & NLA_TYPE_MASK), p + sizeof(rtattr),
                       a.rta_len - sizeof(rtattr)});
        const std::size_t step = align4(a.rta_len);
        if (step >= len)
            break;
        p += step;
        len -= step;
    }
    return out;
}

template <typename T>
T readAs(const char* p)
{
    T v{};
    std::memcpy(&v, p, sizeof v);
    return v;
}

class Socket {
public:
    explicit Socket(unsigned groups = 0)
    {
        m_fd = ::socket(AF_NETLINK, SOCK_RAW | SOCK_CLOEXEC, NETLINK_ROUTE);
        if (m_fd < 0)
            ferry::throwErrno("open an rtnetlink socket");
        sockaddr_nl addr{};
        addr.nl_family = AF_NETLINK;
        addr.nl_groups = groups;
        if (::bind(m_fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0) {
            const int err = errno;
            ::close(m_fd);
            errno = err;
            ferry::throwErrno("bind an rtnetlink socket");
        }
        const int one = 1;
        ::setsockopt(m_fd, SOL_NETLINK, NETLINK_EXT_ACK, &one, sizeof one);
    }
    ~Socket()
    {
        if (m_fd >= 0)
            ::close(m_fd);
    }
    Socket(const Socket&) = delete;
    Socket& operator=(const Socket&) = delete;
    int release()
    {
        const int fd = m_fd;
        m_fd = -1;
        return fd;
    }
    int fd() const { return m_fd; }

    void send(const std::vector<char>& msg, const std::string& what)
    {
        sockaddr_nl kernel{};
        kernel.nl_family = AF_NETLINK;
        if (::sendto(m_fd, msg.data(), msg.size(), 0, reinterpret_cast<sockaddr*>(&kernel), sizeof kernel) < 0)
            ferry::throwErrno(what);
    }

    // Receives replies to sequence number seq until NLMSG_DONE (dumps) or an
    // NLMSG_ERROR (acks), calling onMessage for each data message.
    void receive(std::uint32_t seq, const std::string& what,
                 const std::function<void(const nlmsghdr&, const char*)>& onMessage)
    {
        std::vector<char> buf(64 * 1024);
        for (;;) {
            const ssize_t n = ::recv(m_fd, buf.data(), buf.size(), 0);
            if (n < 0) {
                if (errno == EINTR)
                    continue;
                ferry::throwErrno(what);
            }
            std::size_t off = 0;
            const auto total = static_cast<std::size_t>(n);
            while (off + sizeof(nlmsghdr) <= total) {
                const auto h = readAs<nlmsghdr>(buf.data() + off);
                if (h.nlmsg_len < sizeof(nlmsghdr) || off + h.nlmsg_len > total)
                    throw ferry::Error("Failed to " + what + ": truncated netlink message");
                const char* payload = buf.data() + off + sizeof(nlmsghdr);
                if (h.nlmsg_seq == seq) {
                    if (h.nlmsg_type == NLMSG_DONE)
                        return;
                    if (h.nlmsg_type == NLMSG_ERROR) {
                        const auto e = readAs<nlmsgerr>(payload);
                        if (e.error == 0)
                            return;
                        throw ferry::Error("Failed to " + what + ": " + ferry::errnoMessage(-e.error));
                    }
                    onMessage(h, payload);
                }
                off += align4(h.nlmsg_len);
            }
        }
    }

private:
    int m_fd = -1;
};

std::uint32_t nextSeq()
{
    static std::atomic<std::uint32_t> seq{1};
    return seq++;
}

template <typename Body>
std::vector<char> request(std::uint16_t type, std::uint16_t flags, std::uint32_t seq, const Body& body)
{
    std::vector<char> msg(align4(sizeof(nlmsghdr)) + align4(sizeof(Body)));
    nlmsghdr h{};
    h.nlmsg_len = static_cast<std::uint32_t>(msg.size());
    h.nlmsg_type = type;
    h.nlmsg_flags = static_cast<std::uint16_t>(NLM_F_REQUEST | flags);
    h.nlmsg_seq = seq;
    std::memcpy(msg.data(), &h, sizeof h);
    std::memcpy(msg.data() + align4(sizeof(nlmsghdr)), &body, sizeof body);
    return msg;
}

// Appends an attribute; returns its offset so nested attributes can have
// their length fixed up afterwards.
std::size_t appendAttr(std::vector<char>& msg, unsigned short type, const void* data, std::size_t size)
{
    const std::size_t at = msg.size();
    rtattr a{};
    a.rta_type = type;
    a.rta_len = static_cast<unsigned short>(sizeof(rtattr) + size);
    msg.resize(at + align4(sizeof(rtattr) + size), 0);
    std::memcpy(msg.data() + at, &a, sizeof a);
    if (size > 0)
        std::memcpy(msg.data() + at + sizeof(rtattr), data, size);
    return at;
}

void closeNested(std::vector<char>& msg, std::size_t at)
{
    rtattr a{};
    std::memcpy(&a, msg.data() + at, sizeof a);
    a.rta_len = static_cast<unsigned short>(msg.size() - at);
    std::memcpy(msg.data() + at, &a, sizeof a);
}

void fixLength(std::vector<char>& msg)
{
    nlmsghdr h{};
    std::memcpy(&h, msg.data(), sizeof h);
    h.nlmsg_len = static_cast<std::uint32_t>(msg.size());
    std::memcpy(msg.data(), &h, sizeof h);
}

// IFLA_AF_SPEC → AF_INET → IFLA_INET_CONF is an array of u32 indexed by
// IPV4_DEVCONF_* - 1.
bool forwardingFromAfSpec(const Attr& afSpec)
{
    for (const auto& family : attributes(afSpec.data, afSpec.size)) {
        if (family.type != AF_INET)
            continue;
        for (const auto& a : attributes(family.data, family.size)) {
            if (a.type == IFLA_INET_CONF && a.size >= IPV4_DEVCONF_FORWARDING * sizeof(std::uint32_t))
                return readAs<std::uint32_t>(a.data + (IPV4_DEVCONF_FORWARDING - 1) * sizeof(std::uint32_t)) != 0;
        }
    }
    return false;
}

} // namespace

RtNetlink::~RtNetlink()
{
    stopWatching();
}

NetSnapshot RtNetlink::snapshot()
{
    Socket sock;
    NetSnapshot snap;
    std::map<int, std::size_t> byIndex;

    ifinfomsg ifi{};
    ifi.ifi_family = AF_UNSPEC;
    auto seq = nextSeq();
    sock.send(request(RTM_GETLINK, NLM_F_DUMP, seq, ifi), "request the list of links");
    sock.receive(seq, "read the list of links", [&](const nlmsghdr& h, const char* p) {
        if (h.nlmsg_type != RTM_NEWLINK || h.nlmsg_len < sizeof(nlmsghdr) + sizeof(ifinfomsg))
            return;
        const auto info = readAs<ifinfomsg>(p);
        LinkState link;
        link.index = info.ifi_index;
        link.up = (info.ifi_flags & IFF_UP) && (info.ifi_flags & IFF_RUNNING);
        const std::size_t attrOff = align4(sizeof(ifinfomsg));
        for (const auto& a : attributes(p + attrOff, h.nlmsg_len - sizeof(nlmsghdr) - attrOff)) {
            if (a.type == IFLA_IFNAME)
                link.name.assign(a.data, strnlen(a.data, a.size));
            else if (a.type == IFLA_AF_SPEC)
                link.forwarding = forwardingFromAfSpec(a);
        }
        byIndex[link.index] = snap.links.size();
        snap.links.push_back(std::move(link));
    });

    ifaddrmsg ifa{};
    ifa.ifa_family = AF_INET;
    seq = nextSeq();
    sock.send(request(RTM_GETADDR, NLM_F_DUMP, seq, ifa), "request the list of IPv4 addresses");
    std::vector<std::pair<int, std::pair<bool, Ipv4Prefix>>> addresses;
    sock.receive(seq, "read the list of IPv4 addresses", [&](const nlmsghdr& h, const char* p) {
        if (h.nlmsg_type != RTM_NEWADDR || h.nlmsg_len < sizeof(nlmsghdr) + sizeof(ifaddrmsg))
            return;
        const auto info = readAs<ifaddrmsg>(p);
        if (info.ifa_family != AF_INET)
            return;
        std::uint32_t flags = info.ifa_flags;
        std::optional<std::uint32_t> local, address;
        const std::size_t attrOff = align4(sizeof(ifaddrmsg));
        for (const auto& a : attributes(p + attrOff, h.nlmsg_len - sizeof(nlmsghdr) - attrOff)) {
            if (a.type == IFA_LOCAL && a.size >= 4)
                local = ntohl(readAs<std::uint32_t>(a.data));
            else if (a.type == IFA_ADDRESS && a.size >= 4)
                address = ntohl(readAs<std::uint32_t>(a.data));
            else if (a.type == IFA_FLAGS && a.size >= 4)
                flags = readAs<std::uint32_t>(a.data);
        }
        // On point-to-point links IFA_ADDRESS is the peer; IFA_LOCAL is ours.
        const auto mine = local ? local : address;
        if (!mine || (flags & IFA_F_TENTATIVE))
            return;
        Ipv4Prefix prefix{*mine, info.ifa_prefixlen};
        addresses.push_back({static_cast<int>(info.ifa_index), {(flags & IFA_F_SECONDARY) != 0, prefix}});
    });
    // Primary addresses first, keeping the kernel's order otherwise.
    std::stable_sort(addresses.begin(), addresses.end(),
                     [](const auto& a, const auto& b) { return !a.second.first && b.second.first; });
    for (const auto& [index, entry] : addresses) {
        if (auto it = byIndex.find(index); it != byIndex.end())
            snap.links[it->second].addresses.push_back(entry.second);
    }
    return snap;
}

void RtNetlink::enableForwarding(const LinkState& link)
{
    Socket sock;
    ifinfomsg ifi{};
    ifi.ifi_family = AF_UNSPEC;
    ifi.ifi_index = link.index;
    const auto seq = nextSeq();
    auto msg = request(RTM_SETLINK, NLM_F_ACK, seq, ifi);
    const auto afSpec = appendAttr(msg, IFLA_AF_SPEC, nullptr, 0);
    const auto inet = appendAttr(msg, AF_INET, nullptr, 0);
    const auto conf = appendAttr(msg, IFLA_INET_CONF, nullptr, 0);
    const std::uint32_t on = 1;
    appendAttr(msg, IPV4_DEVCONF_FORWARDING, &on, sizeof on);
    closeNested(msg, conf);
    closeNested(msg, inet);
    closeNested(msg, afSpec);
    fixLength(msg);
    const std::string what = "enable IPv4 forwarding on " + link.name;
    sock.send(msg, what);
    sock.receive(seq, what, [](const nlmsghdr&, const char*) {});
}

void RtNetlink::watch(std::function<void()> onChange)
{
    stopWatching();
    Socket sock(RTMGRP_LINK | RTMGRP_IPV4_IFADDR);
    // A large receive buffer makes ENOBUFS (lost events) rare; when it
    // happens anyway the watcher reports a change and the caller re-reads all.
    const int size = 1024 * 1024;
    ::setsockopt(sock.fd(), SOL_SOCKET, SO_RCVBUF, &size, sizeof size);
    m_stopFd = ::eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
    if (m_stopFd < 0)
        ferry::throwErrno("create an eventfd");
    m_watchFd = sock.release();
    m_onChange = std::move(onChange);
    m_thread = std::thread([this] { watchLoop(); });
}

void RtNetlink::stopWatching()
{
    if (m_thread.joinable()) {
        const std::uint64_t one = 1;
        [[maybe_unused]] auto n = ::write(m_stopFd, &one, sizeof one);
        m_thread.join();
    }
    if (m_watchFd >= 0)
        ::close(m_watchFd);
    if (m_stopFd >= 0)
        ::close(m_stopFd);
    m_watchFd = m_stopFd = -1;
}

void RtNetlink::watchLoop()
{
    std::vector<char> buf(64 * 1024);
    for (;;) {
        pollfd fds[2] = {{m_watchFd, POLLIN, 0}, {m_stopFd, POLLIN, 0}};
        if (::poll(fds, 2, -1) < 0) {
            if (errno == EINTR)
                continue;
            spdlog::error("Failed to wait for link events: {}; link changes are no longer seen",
                          ferry::errnoMessage(errno));
            return;
        }
        if (fds[1].revents & POLLIN)
            return;
        bool changed = false;
        // Drain the whole burst (an address change is a DELADDR and a NEWADDR)
        // and report it once.
        for (;;) {
            const ssize_t n = ::recv(m_watchFd, buf.data(), buf.size(), MSG_DONTWAIT);
            if (n > 0) {
                changed = true;
                continue;
            }
            if (n < 0 && errno == ENOBUFS) {
                spdlog::warn("Lost link events (receive buffer overrun); re-reading all links");
                changed = true;
                continue;
            }
            if (n < 0 && errno == EINTR)
                continue;
            break;
        }
        if (changed)
            m_onChange();
    }
}

} // namespace vpnfwd
