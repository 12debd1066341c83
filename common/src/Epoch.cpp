#include "ferry/Epoch.h"

#include <algorithm>

#include "ferry/Crypto.h"
#include "ferry/Error.h"

namespace ferry {

Epoch Epoch::random()
{
    Epoch e;
    // A random epoch that happens to be all zero would be mistaken for a
    // legacy spool; 2^-128 is not worth a branch, but the loop costs nothing.
    do {
        const std::string r = randomBytes(kSize);
        std::copy(r.begin(), r.end(), e.m_bytes.begin());
    } while (e.isLegacy());
    return e;
}

Epoch Epoch::fromHex(std::string_view hex, const std::string& what)
{
    const bool ok = hex.size() == 2 * kSize && std::all_of(hex.begin(), hex.end(), [](char c) {
                        return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f');
                    });
    if (!ok)
        throw Error("Bad epoch in " + what + ": expected " + std::to_string(2 * kSize) + " lower-case hex digits");
    return fromBytes(ferry::fromHex(hex), what);
}

Epoch Epoch::fromBytes(std::string_view bytes, const std::string& what)
{
    if (bytes.size() != kSize)
        throw ProtocolError("Bad epoch in " + what + ": " + std::to_string(bytes.size()) + " bytes, expected " +
                            std::to_string(kSize));
    Epoch e;
    std::copy(bytes.begin(), bytes.end(), e.m_bytes.begin());
    return e;
}

std::string Epoch::hex() const
{
    return toHex(bytes());
}

std::string Epoch::shortHex() const
{
    return hex().substr(0, 8);
}

std::string Epoch::bytes() const
{
    return std::string(reinterpret_cast<const char*>(m_bytes.data()), kSize);
}

bool Epoch::isLegacy() const
{
    return std::all_of(m_bytes.begin(), m_bytes.end(), [](unsigned char c) { return c == 0; });
}

} // namespace ferry
