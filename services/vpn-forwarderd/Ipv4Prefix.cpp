#include "Ipv4Prefix.h"

#include <algorithm>
#include <charconv>

namespace vpnfwd {

namespace {

// One decimal octet without sign, spaces or leading zeros (which some
// parsers read as octal, so they are refused rather than guessed at).
std::optional<std::uint32_t> parseOctet(const std::string& s)
{
    if (s.empty() || s.size() > 3 || (s.size() > 1 && s[0] == '0'))
        return std::nullopt;
    unsigned v = 0;
    auto [p, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
    if (ec != std::errc{} || p != s.data() + s.size() || v > 255)
        return std::nullopt;
    return v;
}

} // namespace

std::optional<Ipv4Prefix> Ipv4Prefix::parse(const std::string& text)
{
    Ipv4Prefix out;
    std::string addr = text;
    if (const auto slash = text.find('/'); slash != std::string::npos) {
        const std::string len = text.substr(slash + 1);
        unsigned v = 0;
        auto [p, ec] = std::from_chars(len.data(), len.data() + len.size(), v);
        if (len.empty() || len.size() > 2 || ec != std::errc{} || p != len.data() + len.size() || v > 32)
            return std::nullopt;
        out.length = static_cast<std::uint8_t>(v);
        addr = text.substr(0, slash);
    }
    std::uint32_t value = 0;
    std::size_t start = 0;
    for (int i = 0; i < 4; ++i) {
        const auto dot = addr.find('.', start);
        if ((i < 3) != (dot != std::string::npos))
            return std::nullopt;
        const auto octet = parseOctet(addr.substr(start, i < 3 ? dot - start : std::string::npos));
        if (!octet)
            return std::nullopt;
        value = (value << 8) | *octet;
        start = dot + 1;
    }
    out.address = value;
    return out;
}

bool Ipv4Prefix::overlaps(const Ipv4Prefix& other) const
{
    // Two prefixes overlap exactly when the shorter one contains the other's network.
    const Ipv4Prefix& wider = length <= other.length ? *this : other;
    const Ipv4Prefix& narrower = length <= other.length ? other : *this;
    return wider.contains(narrower.network());
}

std::string formatIpv4(std::uint32_t a)
{
    return std::to_string(a >> 24) + "." + std::to_string((a >> 16) & 0xff) + "." + std::to_string((a >> 8) & 0xff) +
           "." + std::to_string(a & 0xff);
}

std::string Ipv4Prefix::addressText() const
{
    return formatIpv4(address);
}

std::string Ipv4Prefix::text() const
{
    return formatIpv4(address) + "/" + std::to_string(length);
}

std::string Ipv4Prefix::subnetText() const
{
    return formatIpv4(network()) + "/" + std::to_string(length);
}

} // namespace vpnfwd
