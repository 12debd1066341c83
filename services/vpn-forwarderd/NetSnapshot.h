#pragma once
// What the forwarder needs to know about the host's links: name, up or not,
// IPv4 addresses (primary first) and whether IPv4 forwarding is on.

#include <string>
#include <vector>

#include "Ipv4Prefix.h"

namespace vpnfwd {

struct LinkState {
    int index = 0;
    std::string name;
    bool up = false;          // IFF_UP and IFF_RUNNING (carrier)
    bool forwarding = false;  // net.ipv4.conf.<name>.forwarding
    std::vector<Ipv4Prefix> addresses;  // primary addresses before secondary ones
};

struct NetSnapshot {
    std::vector<LinkState> links;

    const LinkState* find(const std::string& name) const
    {
        for (const auto& l : links)
            if (l.name == name)
                return &l;
        return nullptr;
    }
};

} // namespace vpnfwd
