// ferry-chaos-fill: appends back-dated records to a node's spool through the
// spool's own API, as a sampler would have over a long master outage, and
// reports them the way the sampler does ("Spooled N records (sequence a–b)"),
// so the chaos run logs them in its ledger like every other append.
//
//   ferry-chaos-fill SPOOL RECORDS SPAN_SECONDS MAX_BYTES MAX_AGE_SECONDS
//
// Records are spread evenly over the last SPAN_SECONDS; each payload is
// unique, so a record stored twice under different keys is visible too.

#include <cstdio>
#include <cstdlib>
#include <exception>
#include <string>
#include <vector>

#include "ferry/Bus.h"
#include "ferry/Spool.h"

int main(int argc, char* argv[]) try {
    if (argc != 6) {
        std::fprintf(stderr, "usage: ferry-chaos-fill SPOOL RECORDS SPAN_SECONDS MAX_BYTES MAX_AGE_SECONDS\n");
        return 2;
    }
    const std::string path = argv[1];
    const long long count = std::stoll(argv[2]);
    const long long spanMs = std::stoll(argv[3]) * 1000;
    ferry::Spool spool(path, {std::stoull(argv[4]), std::chrono::seconds(std::stoll(argv[5]))});
    const std::int64_t now = ferry::nowMs();
    std::uint64_t first = 0, last = 0;
    long long done = 0;
    // One transaction per chunk, as many sampler runs would have made.
    while (done < count) {
        std::vector<ferry::Record> chunk;
        for (long long i = 0; i < 500 && done < count; ++i, ++done) {
            const std::int64_t t = now - spanMs + (count > 1 ? spanMs * done / (count - 1) : spanMs);
            chunk.push_back({0, t, "chaos-fill", "fill " + std::to_string(done) + " at " + std::to_string(t) + "\n"});
        }
        const auto seqs = spool.appendAll(chunk);
        if (!seqs.empty()) {
            if (first == 0)
                first = seqs.front();
            last = seqs.back();
            // One line per chunk: a chunk's sequences are contiguous.
            std::printf("Spooled %zu records (sequence %llu–%llu)\n", seqs.size(),
                        static_cast<unsigned long long>(seqs.front()), static_cast<unsigned long long>(seqs.back()));
        }
    }
    std::fflush(stdout);
    std::fprintf(stderr, "filled %lld records, sequence %llu–%llu\n", done, static_cast<unsigned long long>(first),
                 static_cast<unsigned long long>(last));
    return 0;
} catch (const std::exception& e) {
    std::fprintf(stderr, "ferry-chaos-fill: %s\n", e.what());
    return 1;
}
