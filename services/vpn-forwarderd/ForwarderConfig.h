#pragma once
// /etc/ferry/vpn-forwarder.yml, parsed once into a plain validated struct.
// A missing file means the defaults below, which are the Bitscout appliance's
// layout: tap0 for the VPN link, the container at 10.0.3.2 behind
// ve-container, TCP 22 and 2000-2009 forwarded. Anything unknown, any bad
// port, range or address is refused, naming file, line and key.

#include <cstdint>
#include <string>
#include <vector>

namespace vpnfwd {

struct PortRange {
    std::uint16_t first = 0;
    std::uint16_t last = 0;
    bool contains(std::uint16_t port) const { return port >= first && port <= last; }
    bool operator==(const PortRange&) const = default;
};

struct ForwarderConfig {
    std::string vpnInterface = "tap0";
    std::uint32_t containerAddress = (10u << 24) | (0u << 16) | (3u << 8) | 2u;  // 10.0.3.2
    // Sorted, non-overlapping.
    std::vector<PortRange> forwardedPorts = {{22, 22}, {2000, 2009}};
    std::vector<std::string> lanInterfaces = {"eth0", "eth1", "wlan0"};
    // The port on the VPN address that reaches the host's own sshd when host
    // control is on (22 itself goes to the container).
    std::uint16_t hostControlPort = 2222;
    // Where the host's sshd listens.
    std::uint16_t hostSshPort = 22;
};

ForwarderConfig loadForwarderConfig(const std::string& path);
ForwarderConfig parseForwarderConfig(const std::string& name, const std::string& text);

// "22" or "2000-2009", for logs, properties and ferryctl.
std::string formatPortRange(const PortRange& range);
std::string formatPortRanges(const std::vector<PortRange>& ranges, const std::string& separator = ", ");

// True when name can be a Linux interface name that is also safe to place in
// an nftables string: 1-15 characters of letters, digits and . _ - @ : +
bool isSafeInterfaceName(const std::string& name);

} // namespace vpnfwd
