#pragma once
// An IPv4 address with a prefix length, and the few operations the forwarder
// needs: parse, format, "is this address in that subnet", "do two subnets
// overlap". Addresses are kept in host byte order.

#include <cstdint>
#include <optional>
#include <string>

namespace vpnfwd {

struct Ipv4Prefix {
    std::uint32_t address = 0;
    std::uint8_t length = 32;

    // "10.1.0.2" (length 32) or "10.1.0.2/24"; nullopt for anything else.
    static std::optional<Ipv4Prefix> parse(const std::string& text);

    std::uint32_t mask() const { return length == 0 ? 0 : ~std::uint32_t{0} << (32 - length); }
    std::uint32_t network() const { return address & mask(); }
    bool contains(std::uint32_t other) const { return (other & mask()) == network(); }
    bool overlaps(const Ipv4Prefix& other) const;

    std::string addressText() const;  // "10.1.0.2"
    std::string text() const;         // "10.1.0.2/24"
    std::string subnetText() const;   // "10.1.0.0/24"

    bool operator==(const Ipv4Prefix&) const = default;
};

std::string formatIpv4(std::uint32_t address);

} // namespace vpnfwd
