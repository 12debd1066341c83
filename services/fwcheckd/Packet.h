#pragma once
// The question every tracer answers: a new TCP connection (a SYN, conntrack
// state NEW, an unknown ephemeral source port) from a master to our sshd.

#include <cstdint>
#include <string>

#include "Address.h"

namespace fwcheck {

struct Packet {
    Address source;        // the master
    Address destination;   // the node address the master connects to
    std::string inInterface;  // empty when the route lookup failed
    std::uint16_t destinationPort = 22;
    // IPv6 needs neighbour discovery before any TCP gets through: the same
    // tracers also follow the master's ICMPv6 neighbour solicitations (135)
    // and advertisements (136), which conntrack leaves untracked.
    enum class Protocol { Tcp, Icmpv6 } protocol = Protocol::Tcp;
    std::uint8_t icmpType = 0;

    bool isTcp() const { return protocol == Protocol::Tcp; }
};

// Three-valued logic for matches: an unknown match is never a guess.
enum class Tri { No, Yes, Unknown };

inline Tri triAnd(Tri a, Tri b)
{
    if (a == Tri::No || b == Tri::No)
        return Tri::No;
    if (a == Tri::Unknown || b == Tri::Unknown)
        return Tri::Unknown;
    return Tri::Yes;
}

inline Tri triNot(Tri a)
{
    return a == Tri::Yes ? Tri::No : a == Tri::No ? Tri::Yes : Tri::Unknown;
}

inline Tri tri(bool b) { return b ? Tri::Yes : Tri::No; }

} // namespace fwcheck
