#pragma once
// The system edges of the forwarder, behind small interfaces so that a test
// can substitute one while everything else stays real.

#include <functional>
#include <string>

#include "NetSnapshot.h"

namespace vpnfwd {

// Links and addresses (rtnetlink in production).
class Network {
public:
    virtual ~Network() = default;
    virtual NetSnapshot snapshot() = 0;
    // Sets net.ipv4.conf.<link>.forwarding to 1.
    virtual void enableForwarding(const LinkState& link) = 0;
};

// Ferry's one nftables table (libnftables in production).
class Firewall {
public:
    virtual ~Firewall() = default;
    // Runs one nftables transaction; throws ferry::Error with nft's message.
    virtual void run(const std::string& script) = 0;
};

} // namespace vpnfwd
