#pragma once
// The one line ferry-tunnel-relay sends before a node's session bytes on
// collectord's relay socket: the address sshd saw the node connect from
// (SSH_CONNECTION), which collectord cannot see itself behind sshd.
//
//   "ferry-relay 1 <address> <port>\n"   the session's bytes follow on the
//                                        socket (the relay copies them)
//   "ferry-relay 2 <address> <port>\n"   sent with two descriptors
//                                        (SCM_RIGHTS): the SSH channel's
//                                        input and output, which sshd gave
//                                        the relay; collectord serves the
//                                        session on them, and closes the
//                                        socket when it is over
//
// Version 2 is what ferry-tunnel-relay sends: the node's bytes then cross
// the master from sshd to collectord without a third process waking for
// each message. Version 1 stays accepted (a relay of an earlier release
// during an upgrade, a test that speaks on the socket).
// <address> is an IPv4 or IPv6 literal as inet_ntop writes it, <port> a
// decimal 1-65535. The line is at most kRelayHeaderMax bytes, newline
// included; anything else is a malformed header and the connection is
// refused. collectord believes the line only from a peer whose SO_PEERCRED
// uid is the tunnel user's (the relay as sshd runs it); from anyone else
// the connection is refused, whatever the line says.
//
// Header-only and libc-only, so that the relay (started by sshd for every
// push) links nothing of ours.

#include <arpa/inet.h>

#include <cstddef>
#include <optional>
#include <string>
#include <string_view>

namespace ferry {

constexpr std::size_t kRelayHeaderMax = 128;
constexpr std::string_view kRelayHeaderPrefix = "ferry-relay 1 ";
constexpr std::string_view kRelayHeaderPrefixWithFds = "ferry-relay 2 ";

struct RelayAddress {
    std::string address; // canonical literal
    unsigned port = 0;
    bool v6 = false;
    // Version 2: the channel's descriptors came with the header.
    bool withFds = false;
    // "192.0.2.1:22" or "[2001:db8::1]:22", as the TCP peers of the collector read.
    std::string peerText() const { return (v6 ? "[" + address + "]" : address) + ":" + std::to_string(port); }
};

// An address literal and a port, checked and put in canonical form.
inline std::optional<RelayAddress> parseRelayAddress(std::string_view address, std::string_view port)
{
    if (address.empty() || address.size() >= INET6_ADDRSTRLEN || port.empty() || port.size() > 5)
        return std::nullopt;
    unsigned p = 0;
    for (char c : port) {
        if (c < '0' || c > '9')
            return std::nullopt;
        p = p * 10 + static_cast<unsigned>(c - '0');
    }
    if (p == 0 || p > 65535 || port[0] == '0')
        return std::nullopt;
    const std::string text(address);
    unsigned char raw[16];
    char canon[INET6_ADDRSTRLEN] = {};
    RelayAddress r;
    r.port = p;
    if (::inet_pton(AF_INET, text.c_str(), raw) == 1) {
        ::inet_ntop(AF_INET, raw, canon, sizeof canon);
    } else if (::inet_pton(AF_INET6, text.c_str(), raw) == 1) {
        ::inet_ntop(AF_INET6, raw, canon, sizeof canon);
        r.v6 = true;
    } else {
        return std::nullopt;
    }
    r.address = canon;
    return r;
}

// The client's address from sshd's SSH_CONNECTION ("client_ip client_port
// server_ip server_port").
inline std::optional<RelayAddress> relayAddressFromSshConnection(std::string_view value)
{
    const auto sp1 = value.find(' ');
    if (sp1 == std::string_view::npos)
        return std::nullopt;
    const auto sp2 = value.find(' ', sp1 + 1);
    if (sp2 == std::string_view::npos)
        return std::nullopt;
    return parseRelayAddress(value.substr(0, sp1), value.substr(sp1 + 1, sp2 - sp1 - 1));
}

inline std::string formatRelayHeader(const RelayAddress& a)
{
    return std::string(a.withFds ? kRelayHeaderPrefixWithFds : kRelayHeaderPrefix) + a.address + " " +
           std::to_string(a.port) + "\n";
}

// line without its newline.
inline std::optional<RelayAddress> parseRelayHeader(std::string_view line)
{
    if (line.size() >= kRelayHeaderMax)
        return std::nullopt;
    bool withFds = false;
    if (line.substr(0, kRelayHeaderPrefixWithFds.size()) == kRelayHeaderPrefixWithFds)
        withFds = true;
    else if (line.substr(0, kRelayHeaderPrefix.size()) != kRelayHeaderPrefix)
        return std::nullopt;
    line.remove_prefix(kRelayHeaderPrefix.size());
    const auto sp = line.find(' ');
    if (sp == std::string_view::npos)
        return std::nullopt;
    auto a = parseRelayAddress(line.substr(0, sp), line.substr(sp + 1));
    if (a)
        a->withFds = withFds;
    return a;
}

} // namespace ferry
