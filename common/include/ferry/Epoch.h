#pragma once
// A spool's identity. A random 128-bit id is made when a spool is created and
// is never reused: records are identified everywhere by (node, epoch, seq),
// so a reinstalled, restored or cloned node starts a new series of sequence
// numbers instead of colliding with its past on the master.
//
// The legacy epoch (16 zero bytes) belongs to spools made before epochs
// existed: their records were stored on the master under (node, seq), and
// keeping them at epoch zero makes a record they already sent collide with
// itself (stored once) instead of being stored a second time.

#include <array>
#include <cstdint>
#include <string>
#include <string_view>

namespace ferry {

class Epoch {
public:
    static constexpr std::size_t kSize = 16;

    // The legacy epoch (all zero).
    Epoch() = default;
    static Epoch random();
    // 32 lower-case hex digits; throws Error naming `what` otherwise.
    static Epoch fromHex(std::string_view hex, const std::string& what);
    // kSize raw bytes (the wire form); throws ProtocolError naming `what` otherwise.
    static Epoch fromBytes(std::string_view bytes, const std::string& what);

    std::string hex() const;       // 32 hex digits: the form in databases and logs
    std::string shortHex() const;  // first 8 hex digits, for people
    std::string bytes() const;     // kSize raw bytes
    bool isLegacy() const;

    friend bool operator==(const Epoch&, const Epoch&) = default;

private:
    std::array<unsigned char, kSize> m_bytes{};
};

} // namespace ferry
