#pragma once
// The compact binary encoding of samples in a spool record's payload. The
// transport treats payloads as opaque bytes; only the sampler (writer) and
// the master's readers (metricsd, remote-write) look inside.
//
// A record is self-contained (it may be the only one that survives a spool
// drop), so it carries its own series dictionary:
//
//   u8      0xF1                       format byte (text records start with ASCII)
//   varint  L, then L strings          the record's own strings: varint length + bytes
//   varint  B, then B blocks           blocks sorted by metric name
//   block:  u8 header                  bits 0-2 MetricType; bit 3 series carry their own
//                                      time; bits 4-5 number of label names (3: a varint
//                                      with the number minus 3 follows); bit 6 a single
//                                      series (the count is omitted); bit 7 must be 0
//           ref name, ref label name × N, [varint series count]
//           series: ref label value × N, value, [varint zigzag(time − record time)]
//   ref:    varint r; r < L is the record's string r, else kStaticStrings[r − L]
//   value:  varint v; v & 7 is how to read v >> 3 (as zigzag integer m):
//           0 m, 1 m × 1024, 2 m / 10, 3 m / 100, 4 m / 1000, 5 m / 10⁶,
//           6 the 8 bytes of an IEEE double follow (little endian), 7 special
//           (0 NaN, 1 +Inf, 2 −Inf). Every form reads back the exact double.
//
// kStaticStrings (node_exporter's family names, label names and common label
// values) is part of the format: entries are only ever appended. With it, a
// built-in sampler run costs about 6 bytes per sample (bench/metrics prints it).
//
// Decoding untrusted payloads throws ferry::ProtocolError naming what is wrong;
// every count is checked against the bytes that remain, and what the
// references expand to is capped (16 MiB of names and labels per record), so
// a bad payload cannot make a reader allocate without bound.

#include <cstdint>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "ferry/Metrics.h"

namespace ferry::metrics {

constexpr unsigned char kSampleFormatV1 = 0xF1;
// Record kinds: the built-in sampler writes "metrics", plugins "metrics:<name>",
// *.prom files "metrics:textfile".
constexpr std::string_view kMetricsKind = "metrics";

bool isEncodedSamples(std::string_view payload);

// Encodes samples (taken at recordTimeMs unless a sample has its own time)
// into as many payloads as needed to keep each within maxBytes.
std::vector<std::string> encodeSamples(const std::vector<Sample>& samples, std::int64_t recordTimeMs,
                                       std::size_t maxBytes);

std::vector<Sample> decodeSamples(std::string_view payload, std::int64_t recordTimeMs);

// Reads any record the master may hold: the binary format, or the text
// records of Ferry before it (kinds load, memory, disk, network, plugin:*),
// which are mapped to node_exporter's names where they have one.
std::vector<Sample> decodeRecord(std::string_view kind, std::string_view payload, std::int64_t recordTimeMs);

// Reads a binary payload block by block without building Samples
// (metricsd streams 10,000 nodes' records through this).
class SampleReader {
public:
    SampleReader(std::string_view payload, std::int64_t recordTimeMs);

    struct Block {
        std::string_view name;
        MetricType type = MetricType::Untyped;
        std::vector<std::string_view> labelNames;
        std::uint64_t series = 0;
        bool ownTime = false;
    };
    // False at the end of the payload.
    bool nextBlock(Block& block);
    // Reads the next series of the current block.
    void nextSeries(const Block& block, std::vector<std::string_view>& labelValues, double& value,
                    std::int64_t& timeMs);

private:
    std::uint64_t varint(const char* what);
    std::string_view ref(const char* what);
    std::string_view m_data;
    std::size_t m_pos = 0;
    std::int64_t m_timeMs;
    std::vector<std::string_view> m_strings;
    std::uint64_t m_blocksLeft = 0;
    std::size_t m_expanded = 0;
};

std::span<const std::string_view> staticStrings();

} // namespace ferry::metrics
