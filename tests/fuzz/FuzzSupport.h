#pragma once
// Shared by the libFuzzer targets in this folder. Each target is built two
// ways: with clang and -fsanitize=fuzzer by tests/fuzz/run, and with the
// ordinary compiler against ReplayMain.cpp, which replays the committed seed
// corpus (tests/fuzz/corpus/<target>/) in the default suite.
//
// Bad input may end in a ferry::Error (a clear error naming what was wrong);
// anything else escaping a parser is a bug, so the targets catch only that.

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace fuzz {

inline std::string_view view(const std::uint8_t* data, std::size_t size)
{
    return {reinterpret_cast<const char*>(data), size};
}

// Splits the input at NUL bytes: one fuzz input can then feed several
// parameters (two files, argv words) at once.
inline std::vector<std::string> splitNul(std::string_view in, std::size_t maxParts)
{
    std::vector<std::string> parts;
    while (parts.size() + 1 < maxParts) {
        const auto nul = in.find('\0');
        if (nul == std::string_view::npos)
            break;
        parts.emplace_back(in.substr(0, nul));
        in.remove_prefix(nul + 1);
    }
    parts.emplace_back(in);
    return parts;
}

} // namespace fuzz
