#include "ferry/SampleCodec.h"

#include <algorithm>
#include <array>
#include <cmath>
#include <cstring>
#include <map>
#include <sstream>
#include <unordered_map>

#include "ferry/Error.h"

namespace ferry::metrics {

namespace {

// Part of the format (see the header): append only, never reorder. The most
// frequent references (label values, label names) come first so that they
// stay within one varint byte.
constexpr std::array kStatic = std::to_array<std::string_view>({
    // 0: label values of node_cpu_seconds_total
    "user", "nice", "system", "idle", "iowait", "irq", "softirq", "steal",
    "0", "1", "2", "3", "4", "5", "6", "7",
    // 16: label names and frequent label values
    "cpu", "mode", "device", "fstype", "mountpoint", "/", "ext4", "xfs", "btrfs", "tmpfs", "vfat", "eth0",
    // 28: families
    "node_load1", "node_load5", "node_load15", "node_cpu_seconds_total", "node_cpu_guest_seconds_total",
    "node_boot_time_seconds", "node_time_seconds", "node_procs_running", "node_procs_blocked",
    "node_context_switches_total", "node_forks_total", "node_intr_total",
    "node_filesystem_size_bytes", "node_filesystem_free_bytes", "node_filesystem_avail_bytes",
    "node_filesystem_files", "node_filesystem_files_free", "node_filesystem_readonly", "node_filesystem_device_error",
    "node_network_receive_bytes_total", "node_network_receive_packets_total", "node_network_receive_errs_total",
    "node_network_receive_drop_total", "node_network_transmit_bytes_total", "node_network_transmit_packets_total",
    "node_network_transmit_errs_total", "node_network_transmit_drop_total",
    // 55: /proc/meminfo as node_memory_*
    "node_memory_MemTotal_bytes", "node_memory_MemFree_bytes", "node_memory_MemAvailable_bytes",
    "node_memory_Buffers_bytes", "node_memory_Cached_bytes", "node_memory_SwapCached_bytes",
    "node_memory_Active_bytes", "node_memory_Inactive_bytes", "node_memory_Active_anon_bytes",
    "node_memory_Inactive_anon_bytes", "node_memory_Active_file_bytes", "node_memory_Inactive_file_bytes",
    "node_memory_Unevictable_bytes", "node_memory_Mlocked_bytes", "node_memory_SwapTotal_bytes",
    "node_memory_SwapFree_bytes", "node_memory_Zswap_bytes", "node_memory_Zswapped_bytes", "node_memory_Dirty_bytes",
    "node_memory_Writeback_bytes", "node_memory_AnonPages_bytes", "node_memory_Mapped_bytes",
    "node_memory_Shmem_bytes", "node_memory_KReclaimable_bytes", "node_memory_Slab_bytes",
    "node_memory_SReclaimable_bytes", "node_memory_SUnreclaim_bytes", "node_memory_KernelStack_bytes",
    "node_memory_PageTables_bytes", "node_memory_SecPageTables_bytes", "node_memory_NFS_Unstable_bytes",
    "node_memory_Bounce_bytes", "node_memory_WritebackTmp_bytes", "node_memory_CommitLimit_bytes",
    "node_memory_Committed_AS_bytes", "node_memory_VmallocTotal_bytes", "node_memory_VmallocUsed_bytes",
    "node_memory_VmallocChunk_bytes", "node_memory_Percpu_bytes", "node_memory_AnonHugePages_bytes",
    "node_memory_ShmemHugePages_bytes", "node_memory_ShmemPmdMapped_bytes", "node_memory_FileHugePages_bytes",
    "node_memory_FilePmdMapped_bytes", "node_memory_Balloon_bytes", "node_memory_HugePages_Total",
    "node_memory_HugePages_Free", "node_memory_HugePages_Rsvd", "node_memory_HugePages_Surp",
    "node_memory_Hugepagesize_bytes", "node_memory_Hugetlb_bytes", "node_memory_DirectMap4k_bytes",
    "node_memory_DirectMap2M_bytes", "node_memory_DirectMap1G_bytes",
    // 109: more label values
    "8", "9", "10", "11", "12", "13", "14", "15", "guest", "guest_nice", "lo", "ens3", "enp0s3", "eth1",
    "/boot", "/home", "/var", "/boot/efi", "/dev/sda1", "/dev/vda1", "/dev/nvme0n1p1",
});

constexpr std::size_t kMaxStrings = 65536;
constexpr std::size_t kMaxStringBytes = 16 * 1024;
constexpr std::size_t kMaxLabelNames = 64;
// References make a payload expand (one byte may name a 16 KiB string): what
// one record may expand to, in bytes of names and label values.
constexpr std::size_t kMaxExpandedBytes = 16 * 1024 * 1024;

std::uint64_t zigzag(std::int64_t n)
{
    return (static_cast<std::uint64_t>(n) << 1) ^ static_cast<std::uint64_t>(n >> 63);
}
std::int64_t unzigzag(std::uint64_t v)
{
    return static_cast<std::int64_t>(v >> 1) ^ -static_cast<std::int64_t>(v & 1);
}

void putVarint(std::string& out, std::uint64_t v)
{
    while (v >= 0x80) {
        out += static_cast<char>((v & 0x7F) | 0x80);
        v >>= 7;
    }
    out += static_cast<char>(v);
}

constexpr double kTwo53 = 9007199254740992.0;
constexpr double kScales[] = {10.0, 100.0, 1000.0, 1e6};

void putValue(std::string& out, double x)
{
    if (std::isnan(x)) {
        putVarint(out, (0u << 3) | 7);
        return;
    }
    if (std::isinf(x)) {
        putVarint(out, (zigzag(x > 0 ? 1 : 2) << 3) | 7);
        return;
    }
    if (!std::signbit(x) || x != 0) {
        if (x == std::trunc(x) && std::fabs(x) < kTwo53) {
            const auto m = static_cast<std::int64_t>(x);
            if (m != 0 && m % 1024 == 0)
                putVarint(out, (zigzag(m / 1024) << 3) | 1);
            else
                putVarint(out, (zigzag(m) << 3) | 0);
            return;
        }
        for (unsigned k = 0; k < 4; ++k) {
            const double scaled = x * kScales[k];
            if (std::fabs(scaled) >= kTwo53)
                break;
            const auto m = static_cast<std::int64_t>(std::llround(scaled));
            if (static_cast<double>(m) / kScales[k] == x) {
                putVarint(out, (zigzag(m) << 3) | (2 + k));
                return;
            }
        }
    }
    putVarint(out, 6);
    std::uint64_t bits;
    std::memcpy(&bits, &x, sizeof bits);
    for (int i = 0; i < 8; ++i)
        out += static_cast<char>((bits >> (8 * i)) & 0xFF);
}

const std::unordered_map<std::string_view, std::uint32_t>& staticIndex()
{
    static const auto index = [] {
        std::unordered_map<std::string_view, std::uint32_t> m;
        for (std::uint32_t i = 0; i < kStatic.size(); ++i)
            m.emplace(kStatic[i], i);
        return m;
    }();
    return index;
}

struct BlockKey {
    std::string name;
    MetricType type;
    std::vector<std::string> labelNames;
    bool ownTime;
    auto operator<=>(const BlockKey&) const = default;
};

std::string encodeOne(const std::vector<const Sample*>& samples, std::int64_t recordTimeMs)
{
    std::map<BlockKey, std::vector<const Sample*>> blocks;
    for (const Sample* s : samples) {
        BlockKey key{s->name, s->type, {}, s->timeMs != 0};
        for (const auto& l : s->labels)
            key.labelNames.push_back(l.name);
        blocks[std::move(key)].push_back(s);
    }
    // The record's own strings, in order of first use.
    const auto& statics = staticIndex();
    std::vector<std::string_view> local;
    std::unordered_map<std::string_view, std::uint32_t> localIndex;
    auto note = [&](std::string_view s) {
        if (!statics.contains(s) && localIndex.emplace(s, static_cast<std::uint32_t>(local.size())).second)
            local.push_back(s);
    };
    for (const auto& [key, series] : blocks) {
        note(key.name);
        for (const auto& n : key.labelNames)
            note(n);
        for (const Sample* s : series)
            for (const auto& l : s->labels)
                note(l.value);
    }
    std::string out;
    out += static_cast<char>(kSampleFormatV1);
    putVarint(out, local.size());
    for (auto s : local) {
        putVarint(out, s.size());
        out += s;
    }
    auto putRef = [&](std::string_view s) {
        if (auto it = localIndex.find(s); it != localIndex.end())
            putVarint(out, it->second);
        else
            putVarint(out, local.size() + statics.at(s));
    };
    putVarint(out, blocks.size());
    for (const auto& [key, series] : blocks) {
        const std::size_t n = key.labelNames.size();
        unsigned header = static_cast<unsigned>(key.type) | (key.ownTime ? 0x08u : 0u) |
                          (static_cast<unsigned>(std::min<std::size_t>(n, 3)) << 4) | (series.size() == 1 ? 0x40u : 0u);
        out += static_cast<char>(header);
        putRef(key.name);
        if (n >= 3)
            putVarint(out, n - 3);
        for (const auto& ln : key.labelNames)
            putRef(ln);
        if (series.size() != 1)
            putVarint(out, series.size());
        for (const Sample* s : series) {
            for (const auto& l : s->labels)
                putRef(l.value);
            putValue(out, s->value);
            if (key.ownTime)
                putVarint(out, zigzag(s->timeMs - recordTimeMs));
        }
    }
    return out;
}

void encodeSplit(const std::vector<const Sample*>& samples, std::int64_t recordTimeMs, std::size_t maxBytes,
                 std::vector<std::string>& out)
{
    std::string one = encodeOne(samples, recordTimeMs);
    if (one.size() <= maxBytes || samples.size() <= 1) {
        if (one.size() > maxBytes)
            throw Error("Failed to encode sample " + samples.front()->name + ": it alone is larger than " +
                        std::to_string(maxBytes) + " bytes");
        out.push_back(std::move(one));
        return;
    }
    const auto mid = samples.begin() + static_cast<std::ptrdiff_t>(samples.size() / 2);
    encodeSplit({samples.begin(), mid}, recordTimeMs, maxBytes, out);
    encodeSplit({mid, samples.end()}, recordTimeMs, maxBytes, out);
}

} // namespace

std::span<const std::string_view> staticStrings()
{
    return kStatic;
}

bool isEncodedSamples(std::string_view payload)
{
    return !payload.empty() && static_cast<unsigned char>(payload.front()) == kSampleFormatV1;
}

std::vector<std::string> encodeSamples(const std::vector<Sample>& samples, std::int64_t recordTimeMs,
                                       std::size_t maxBytes)
{
    std::vector<const Sample*> sorted;
    sorted.reserve(samples.size());
    for (const auto& s : samples)
        sorted.push_back(&s);
    std::stable_sort(sorted.begin(), sorted.end(), [](const Sample* a, const Sample* b) { return a->name < b->name; });
    std::vector<std::string> out;
    if (!sorted.empty())
        encodeSplit(sorted, recordTimeMs, maxBytes, out);
    return out;
}

// ---- Reading ----

SampleReader::SampleReader(std::string_view payload, std::int64_t recordTimeMs)
    : m_data(payload), m_timeMs(recordTimeMs)
{
    if (!isEncodedSamples(payload))
        throw ProtocolError("Failed to decode samples: the payload does not start with the format byte 0xF1");
    m_pos = 1;
    const auto n = varint("string count");
    if (n > kMaxStrings || n > m_data.size() - m_pos)
        throw ProtocolError("Failed to decode samples: string count " + std::to_string(n) + " exceeds the payload");
    m_strings.reserve(n);
    for (std::uint64_t i = 0; i < n; ++i) {
        const auto len = varint("string length");
        if (len > kMaxStringBytes || len > m_data.size() - m_pos)
            throw ProtocolError("Failed to decode samples: string " + std::to_string(i) + " of " +
                                std::to_string(len) + " bytes exceeds the payload");
        m_strings.push_back(m_data.substr(m_pos, len));
        m_pos += len;
    }
    m_blocksLeft = varint("block count");
    if (m_blocksLeft > m_data.size() - m_pos)
        throw ProtocolError("Failed to decode samples: block count exceeds the payload");
}

std::uint64_t SampleReader::varint(const char* what)
{
    std::uint64_t v = 0;
    for (int shift = 0; shift < 64; shift += 7) {
        if (m_pos >= m_data.size())
            throw ProtocolError(std::string("Failed to decode samples: truncated at the ") + what);
        const auto b = static_cast<unsigned char>(m_data[m_pos++]);
        v |= static_cast<std::uint64_t>(b & 0x7F) << shift;
        if (!(b & 0x80))
            return v;
    }
    throw ProtocolError(std::string("Failed to decode samples: overlong varint at the ") + what);
}

std::string_view SampleReader::ref(const char* what)
{
    const auto r = varint(what);
    if (r < m_strings.size())
        return m_strings[r];
    const auto s = r - m_strings.size();
    if (s >= kStatic.size())
        throw ProtocolError(std::string("Failed to decode samples: ") + what + " refers to unknown string " +
                            std::to_string(r));
    return kStatic[s];
}

bool SampleReader::nextBlock(Block& block)
{
    if (m_blocksLeft == 0) {
        if (m_pos != m_data.size())
            throw ProtocolError("Failed to decode samples: " + std::to_string(m_data.size() - m_pos) +
                                " bytes after the last block");
        return false;
    }
    --m_blocksLeft;
    if (m_pos >= m_data.size())
        throw ProtocolError("Failed to decode samples: truncated at a block header");
    const auto header = static_cast<unsigned char>(m_data[m_pos++]);
    if ((header & 0x80) || (header & 0x07) > 4)
        throw ProtocolError("Failed to decode samples: bad block header " + std::to_string(header));
    block.type = static_cast<MetricType>(header & 0x07);
    block.ownTime = header & 0x08;
    block.name = ref("metric name");
    if (!isValidMetricName(block.name))
        throw ProtocolError("Failed to decode samples: invalid metric name");
    std::uint64_t n = (header >> 4) & 0x03;
    if (n == 3)
        n += varint("label count");
    if (n > kMaxLabelNames)
        throw ProtocolError("Failed to decode samples: " + std::to_string(n) + " label names");
    block.labelNames.clear();
    for (std::uint64_t i = 0; i < n; ++i) {
        block.labelNames.push_back(ref("label name"));
        if (!isValidLabelName(block.labelNames.back()))
            throw ProtocolError("Failed to decode samples: invalid label name in " + std::string(block.name));
    }
    block.series = (header & 0x40) ? 1 : varint("series count");
    if (block.series > m_data.size() - m_pos)
        throw ProtocolError("Failed to decode samples: series count exceeds the payload");
    return true;
}

void SampleReader::nextSeries(const Block& block, std::vector<std::string_view>& labelValues, double& value,
                              std::int64_t& timeMs)
{
    labelValues.clear();
    m_expanded += block.name.size();
    for (std::size_t i = 0; i < block.labelNames.size(); ++i) {
        labelValues.push_back(ref("label value"));
        m_expanded += block.labelNames[i].size() + labelValues.back().size();
    }
    if (m_expanded > kMaxExpandedBytes)
        throw ProtocolError("Failed to decode samples: the record expands to more than " +
                            std::to_string(kMaxExpandedBytes) + " bytes of names and labels");
    const auto v = varint("value");
    const auto tag = v & 7;
    const auto m = unzigzag(v >> 3);
    switch (tag) {
    case 0: value = static_cast<double>(m); break;
    case 1: value = static_cast<double>(m) * 1024.0; break;
    case 2: case 3: case 4: case 5: value = static_cast<double>(m) / kScales[tag - 2]; break;
    case 6: {
        if (m_data.size() - m_pos < 8)
            throw ProtocolError("Failed to decode samples: truncated double");
        std::uint64_t bits = 0;
        for (int i = 0; i < 8; ++i)
            bits |= static_cast<std::uint64_t>(static_cast<unsigned char>(m_data[m_pos++])) << (8 * i);
        std::memcpy(&value, &bits, sizeof value);
        break;
    }
    default:
        if (m == 0)
            value = std::nan("");
        else if (m == 1 || m == 2)
            value = m == 1 ? HUGE_VAL : -HUGE_VAL;
        else
            throw ProtocolError("Failed to decode samples: unknown special value " + std::to_string(m));
    }
    timeMs = m_timeMs;
    if (block.ownTime)
        timeMs = m_timeMs + unzigzag(varint("time"));
}

std::vector<Sample> decodeSamples(std::string_view payload, std::int64_t recordTimeMs)
{
    SampleReader reader(payload, recordTimeMs);
    std::vector<Sample> out;
    SampleReader::Block block;
    std::vector<std::string_view> values;
    while (reader.nextBlock(block)) {
        for (std::uint64_t i = 0; i < block.series; ++i) {
            Sample s;
            s.name = std::string(block.name);
            s.type = block.type;
            std::int64_t t = 0;
            reader.nextSeries(block, values, s.value, t);
            s.timeMs = block.ownTime ? t : 0;
            for (std::size_t k = 0; k < values.size(); ++k)
                s.labels.push_back({std::string(block.labelNames[k]), std::string(values[k])});
            out.push_back(std::move(s));
        }
    }
    return out;
}

namespace {

double toDouble(const std::string& s)
{
    try {
        std::size_t used = 0;
        const double d = std::stod(s, &used);
        return used == s.size() ? d : std::nan("");
    } catch (const std::exception&) {
        return std::nan("");
    }
}

Sample gauge(std::string name, double v, Labels labels = {})
{
    return {std::move(name), MetricType::Gauge, std::move(labels), v, 0};
}

} // namespace

std::vector<Sample> decodeRecord(std::string_view kind, std::string_view payload, std::int64_t recordTimeMs)
{
    if (isEncodedSamples(payload))
        return decodeSamples(payload, recordTimeMs);
    // Text records of Ferry 0.1: "key value" lines per kind.
    std::vector<Sample> out;
    if (kind.starts_with("plugin:")) {
        for (auto& s : parseText(payload).samples)
            out.push_back(std::move(s));
        return out;
    }
    std::istringstream in{std::string(payload)};
    std::string line, mount;
    while (std::getline(in, line)) {
        std::istringstream f(line);
        std::string k, v;
        f >> k >> v;
        if (kind == "load" && (k == "load1" || k == "load5" || k == "load15")) {
            out.push_back(gauge("node_" + k, toDouble(v)));
        } else if (kind == "memory" && k.ends_with("_kB")) {
            out.push_back(gauge("node_memory_" + k.substr(0, k.size() - 3) + "_bytes", toDouble(v) * 1024));
        } else if (kind == "disk") {
            static const std::map<std::string, std::string> names = {
                {"total_bytes", "node_filesystem_size_bytes"}, {"free_bytes", "node_filesystem_avail_bytes"},
                {"inodes_total", "node_filesystem_files"}, {"inodes_free", "node_filesystem_files_free"}};
            if (k == "mount")
                mount = v;
            else if (auto it = names.find(k); it != names.end())
                out.push_back(gauge(it->second, toDouble(v), {{"mountpoint", mount}}));
        } else if (kind == "network") {
            // "<iface> rx_bytes N tx_bytes M"
            std::string rxWord, rx, txWord, tx;
            std::istringstream(line) >> k >> rxWord >> rx >> txWord >> tx;
            if (rxWord == "rx_bytes" && txWord == "tx_bytes") {
                out.push_back({"node_network_receive_bytes_total", MetricType::Counter, {{"device", k}}, toDouble(rx), 0});
                out.push_back({"node_network_transmit_bytes_total", MetricType::Counter, {{"device", k}}, toDouble(tx), 0});
            }
        }
    }
    std::erase_if(out, [](const Sample& s) { return std::isnan(s.value); });
    return out;
}

} // namespace ferry::metrics
