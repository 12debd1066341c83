#pragma once
// An IPv4 or IPv6 address and the prefix/mask tests every rule language
// here needs (iptables -s, nft prefixes and ranges, hosts_access forms).

#include <array>
#include <cstdint>
#include <optional>
#include <string>

namespace fwcheck {

enum class Family { V4, V6 };

class Address {
public:
    Address() = default;
    // "192.0.2.1" or "2001:db8::1" (no brackets, no prefix); nullopt if neither.
    static std::optional<Address> parse(const std::string& text);

    Family family() const { return m_family; }
    bool isV4() const { return m_family == Family::V4; }
    std::string toString() const;
    // Bytes in network order; only the first 4 are used for IPv4.
    const std::array<std::uint8_t, 16>& bytes() const { return m_bytes; }
    std::size_t size() const { return isV4() ? 4 : 16; }

    // True when the first prefixLen bits equal those of network.
    bool inPrefix(const Address& network, unsigned prefixLen) const;
    // True when (this & mask) == (network & mask); families must agree.
    bool inMask(const Address& network, const Address& mask) const;
    // Inclusive range, byte-wise comparison.
    bool inRange(const Address& low, const Address& high) const;
    bool operator==(const Address& other) const = default;

private:
    Family m_family = Family::V4;
    std::array<std::uint8_t, 16> m_bytes{};
};

// "a.b.c.d/len", "a.b.c.d/m.m.m.m", "v6/len" or a bare address, as iptables
// prints -s and -d. Matches is false for an address of the other family.
struct AddressSpec {
    Address network;
    std::optional<Address> mask;  // a dotted mask that is not a prefix
    unsigned prefixLen = 0;
    static std::optional<AddressSpec> parse(const std::string& text);
    bool matches(const Address& a) const;
};

} // namespace fwcheck
