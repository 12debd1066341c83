// libFuzzer target: what the sampler reads from outside itself — the /proc
// files it parses (loadavg, stat, meminfo, net/dev, from a prepared tree) and
// a plugin's output, which becomes a record payload and must cross the wire
// codec unchanged. Input: loadavg NUL stat NUL meminfo NUL net/dev.

#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>

#include "FuzzSupport.h"
#include "Samplers.h"
#include "ferry/SampleCodec.h"
#include "ferry/Error.h"
#include "ferry/Wire.h"

namespace {

const std::string& procRoot()
{
    static const std::string root = [] {
        std::string templ = std::filesystem::temp_directory_path() / "ferry-fuzz-proc-XXXXXX";
        if (::mkdtemp(templ.data()) == nullptr)
            std::abort();
        std::filesystem::create_directories(templ + "/net");
        return templ;
    }();
    return root;
}

void put(const std::string& name, const std::string& content)
{
    std::ofstream(procRoot() + "/" + name, std::ios::binary | std::ios::trunc) << content;
}

} // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size)
{
    const auto in = fuzz::view(data, size);
    const auto parts = fuzz::splitNul(in, 4);
    const char* names[] = {"loadavg", "stat", "meminfo", "net/dev"};
    for (std::size_t i = 0; i < 4; ++i)
        put(names[i], i < parts.size() ? parts[i] : std::string());
    sampler::SystemSources sources;
    sources.procRoot = procRoot();
    sources.mountsFile = procRoot() + "/mounts";
    const auto samples = sampler::sampleSystem(sources, 1700000000000);
    // Whatever /proc says, the records the sampler makes stay within bounds
    // and decode back to the same number of samples.
    std::size_t decoded = 0;
    for (const auto& payload : ferry::metrics::encodeSamples(samples, 1700000000000, ferry::kMaxRecordPayload)) {
        if (payload.size() > ferry::kMaxRecordPayload)
            __builtin_trap();
        decoded += ferry::metrics::decodeSamples(payload, 1700000000000).size();
    }
    if (decoded != samples.size())
        __builtin_trap();

    // A plugin's output, as the sampler stores it, through a batch.
    if (in.size() <= ferry::kMaxRecordPayload) {
        const std::vector<ferry::Record> batch{{1, 1700000000000, "plugin:fuzz", std::string(in)}};
        try {
            const auto back = ferry::decodeBatch(ferry::encode(batch), "fuzz");
            if (back.size() != 1 || back[0].payload != in || back[0].kind != "plugin:fuzz")
                __builtin_trap();
        } catch (const ferry::Error&) {
            __builtin_trap();  // what the sampler may store, the codec must carry
        }
    }
    return 0;
}
