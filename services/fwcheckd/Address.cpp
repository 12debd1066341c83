#include "Address.h"

#include <arpa/inet.h>

#include <cstring>

namespace fwcheck {

std::optional<Address> Address::parse(const std::string& text)
{
    Address a;
    if (text.find(':') == std::string::npos) {
        in_addr v4{};
        if (::inet_pton(AF_INET, text.c_str(), &v4) != 1)
            return std::nullopt;
        a.m_family = Family::V4;
        std::memcpy(a.m_bytes.data(), &v4, 4);
        return a;
    }
    in6_addr v6{};
    if (::inet_pton(AF_INET6, text.c_str(), &v6) != 1)
        return std::nullopt;
    a.m_family = Family::V6;
    std::memcpy(a.m_bytes.data(), &v6, 16);
    return a;
}

std::string Address::toString() const
{
    char buf[INET6_ADDRSTRLEN] = {};
    ::inet_ntop(isV4() ? AF_INET : AF_INET6, m_bytes.data(), buf, sizeof buf);
    return buf;
}

bool Address::inPrefix(const Address& network, unsigned prefixLen) const
{
    if (network.m_family != m_family)
        return false;
    const unsigned bits = static_cast<unsigned>(size()) * 8;
    if (prefixLen > bits)
        return false;
    unsigned full = prefixLen / 8;
    if (std::memcmp(m_bytes.data(), network.m_bytes.data(), full) != 0)
        return false;
    const unsigned rest = prefixLen % 8;
    if (rest == 0)
        return true;
    const std::uint8_t mask = static_cast<std::uint8_t>(0xff << (8 - rest));
    return (m_bytes[full] & mask) == (network.m_bytes[full] & mask);
}

bool Address::inMask(const Address& network, const Address& mask) const
{
    if (network.m_family != m_family || mask.m_family != m_family)
        return false;
    for (std::size_t i = 0; i < size(); ++i)
        if ((m_bytes[i] & mask.m_bytes[i]) != (network.m_bytes[i] & mask.m_bytes[i]))
            return false;
    return true;
}

bool Address::inRange(const Address& low, const Address& high) const
{
    if (low.m_family != m_family || high.m_family != m_family)
        return false;
    return std::memcmp(m_bytes.data(), low.m_bytes.data(), size()) >= 0 &&
           std::memcmp(m_bytes.data(), high.m_bytes.data(), size()) <= 0;
}

namespace {
// A dotted mask that is a run of ones gives its prefix length.
std::optional<unsigned> prefixOfMask(const Address& mask)
{
    unsigned len = 0;
    bool zero = false;
    for (std::size_t i = 0; i < mask.size(); ++i)
        for (int b = 7; b >= 0; --b) {
            const bool one = (mask.bytes()[i] >> b) & 1;
            if (one && zero)
                return std::nullopt;
            if (one)
                ++len;
            else
                zero = true;
        }
    return len;
}
} // namespace

std::optional<AddressSpec> AddressSpec::parse(const std::string& text)
{
    AddressSpec s;
    const auto slash = text.find('/');
    auto net = Address::parse(text.substr(0, slash));
    if (!net)
        return std::nullopt;
    s.network = *net;
    s.prefixLen = static_cast<unsigned>(net->size() * 8);
    if (slash == std::string::npos)
        return s;
    const std::string rest = text.substr(slash + 1);
    if (rest.empty())
        return std::nullopt;
    if (rest.find_first_not_of("0123456789") == std::string::npos) {
        if (rest.size() > 3)
            return std::nullopt;
        const unsigned len = static_cast<unsigned>(std::stoul(rest));
        if (len > net->size() * 8)
            return std::nullopt;
        s.prefixLen = len;
        return s;
    }
    auto mask = Address::parse(rest);
    if (!mask || mask->family() != net->family())
        return std::nullopt;
    if (auto len = prefixOfMask(*mask))
        s.prefixLen = *len;
    else
        s.mask = mask;
    return s;
}

bool AddressSpec::matches(const Address& a) const
{
    if (mask)
        return a.inMask(network, *mask);
    return a.inPrefix(network, prefixLen);
}

} // namespace fwcheck
