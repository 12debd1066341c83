// libFuzzer target: what untrusted bytes reach in the metric model: the
// binary sample decoder (records from any node), the legacy text records,
// and the exposition parser (plugin output, .prom files). Anything but
// ProtocolError escaping, a crash, or a sanitizer report is a bug.

#include <cstddef>
#include <cstdint>
#include <string_view>

#include "ferry/Error.h"
#include "ferry/Metrics.h"
#include "ferry/SampleCodec.h"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size)
{
    const std::string_view in(reinterpret_cast<const char*>(data), size);
    try {
        const auto samples = ferry::metrics::decodeSamples(in, 1700000000000);
        // What decodes must encode and decode to the same count.
        const auto again = ferry::metrics::encodeSamples(samples, 1700000000000, 1 << 20);
        std::size_t n = 0;
        for (const auto& p : again)
            n += ferry::metrics::decodeSamples(p, 1700000000000).size();
        if (n != samples.size())
            __builtin_trap();
    } catch (const ferry::ProtocolError&) {
    }
    for (const char* kind : {"load", "memory", "disk", "network", "plugin:x"}) {
        try {
            (void)ferry::metrics::decodeRecord(kind, in, 0);
        } catch (const ferry::ProtocolError&) {
            // a binary payload that does not decode
        }
    }
    const auto parsed = ferry::metrics::parseText(in, {});
    std::string text;
    ferry::metrics::appendText(text, parsed.samples);
    if (!ferry::metrics::parseText(text, {}).errors.empty())
        __builtin_trap();  // what we write must read back
    return 0;
}
