#include "Exposition.h"

#include <algorithm>
#include <filesystem>
#include <cmath>
#include <map>

#include <spdlog/spdlog.h>

#include "RemoteWriter.h"
#include "ferry/Error.h"
#include "ferry/PullProtocol.h"

namespace metricsd {

using ferry::metrics::MetricType;
using ferry::metrics::SampleReader;

struct Exposition::Source {
    std::string node;
    std::string payload;
    std::int64_t timeMs = 0;
    std::optional<SampleReader> reader;
    SampleReader::Block block;
};

bool Exposition::Later::operator()(const Source* a, const Source* b) const
{
    if (a->block.name != b->block.name)
        return a->block.name > b->block.name;
    return a->node > b->node;
}

Exposition::Exposition(StoreReader& store, ExpositionOptions options) : m_store(store), m_options(std::move(options)) {}
Exposition::~Exposition() = default;

namespace {

// Counts the series of a payload, checking all of it (a bad record is found
// here, before any of it is written).
std::size_t validate(std::string_view payload, std::int64_t timeMs)
{
    SampleReader r(payload, timeMs);
    SampleReader::Block b;
    std::vector<std::string_view> values;
    double v;
    std::int64_t t;
    std::size_t n = 0;
    while (r.nextBlock(b)) {
        for (std::uint64_t i = 0; i < b.series; ++i)
            r.nextSeries(b, values, v, t);
        n += b.series;
    }
    return n;
}

void appendLine(std::string& out, std::string_view name, const std::vector<std::string_view>& names,
                const std::vector<std::string_view>& values, std::string_view node, double value, std::int64_t timeMs)
{
    out += name;
    out += '{';
    bool nodeDone = false;
    for (std::size_t i = 0; i < names.size(); ++i) {
        if (!nodeDone && names[i] > "node") {
            out += "node=\"";
            ferry::metrics::appendLabelValue(out, node);
            out += "\",";
            nodeDone = true;
        }
        if (names[i] == "node")
            out += "exported_";
        out += names[i];
        out += "=\"";
        ferry::metrics::appendLabelValue(out, values[i]);
        out += "\",";
    }
    if (!nodeDone) {
        out += "node=\"";
        ferry::metrics::appendLabelValue(out, node);
        out += "\",";
    }
    out.back() = '}';
    out += ' ';
    out += ferry::metrics::formatValue(value);
    out += ' ';
    out += std::to_string(timeMs);
    out += '\n';
}

void typeLine(std::string& out, std::string_view family, const char* type)
{
    out += "# TYPE ";
    out += family;
    out += ' ';
    out += type;
    out += '\n';
}

std::string nodeLabel(const std::string& node)
{
    std::string s = "{node=\"";
    ferry::metrics::appendLabelValue(s, node);
    s += "\"}";
    return s;
}

} // namespace

void Exposition::addRecords(const std::string& node, std::vector<StoredRecord> records, std::int64_t& newestMs,
                            std::size_t& series, std::size_t& bad)
{
    // A node that was upgraded has both: its text records of the old sampler
    // would repeat the same series, so they give way to the new ones.
    const bool hasSampler = std::any_of(records.begin(), records.end(), [](const StoredRecord& r) {
        return r.kind == ferry::metrics::kMetricsKind;
    });
    for (auto& r : records) {
        newestMs = std::max(newestMs, r.timeMs);
        if (hasSampler && (r.kind == "load" || r.kind == "cpu" || r.kind == "memory" || r.kind == "disk" ||
                           r.kind == "network"))
            continue;
        if (m_options.maxAgeMs > 0 && r.timeMs < m_options.nowMs - m_options.maxAgeMs)
            continue;
        std::vector<std::string> payloads;
        try {
            if (ferry::metrics::isEncodedSamples(r.payload)) {
                payloads.push_back(std::move(r.payload));
            } else {
                // A text record of an older node: mapped once to the binary form.
                payloads = ferry::metrics::encodeSamples(ferry::metrics::decodeRecord(r.kind, r.payload, r.timeMs),
                                                         r.timeMs, 64 * 1024 * 1024);
            }
            for (auto& p : payloads) {
                const std::size_t n = validate(p, r.timeMs);
                auto src = std::make_unique<Source>();
                src->node = node;
                src->payload = std::move(p);
                src->timeMs = r.timeMs;
                src->reader.emplace(src->payload, r.timeMs);
                if (advance(*src))
                    m_heap.push(src.get());
                m_sources.push_back(std::move(src));
                series += n;
            }
        } catch (const std::exception& e) {
            ++bad;
            spdlog::warn("Ignoring a {} record of node {} stamped {}: {}", ferry::escapeForLog(r.kind),
                         ferry::escapeForLog(node), r.timeMs, e.what());
        }
    }
}

bool Exposition::advance(Source& s)
{
    return s.reader->nextBlock(s.block);
}

void Exposition::prepare()
{
    m_nodes = m_store.nodes();
    if (m_options.onlyNode)
        std::erase_if(m_nodes, [&](const NodeRow& n) { return n.name != *m_options.onlyNode; });
    m_perNode.resize(m_nodes.size());
    for (std::size_t i = 0; i < m_nodes.size(); ++i) {
        auto& pn = m_perNode[i];
        addRecords(m_nodes[i].name, m_store.latestRecords(m_nodes[i].name, m_options.staleMs), pn.newestMs, pn.series,
                   pn.badRecords);
        m_series += pn.series;
    }
    buildHealth();
}

void Exposition::buildHealth()
{
    std::string& o = m_health;
    auto seconds = [](std::int64_t ms) { return ferry::metrics::formatValue(static_cast<double>(ms) / 1000.0); };
    std::map<std::string, int> byState{{"accepted", 0}, {"pending", 0}, {"declined", 0}, {"revoked", 0}};
    std::int64_t stored = 0;
    for (const auto& n : m_nodes) {
        ++byState[n.state];
        stored += n.recordsStored;
    }
    if (!m_options.onlyNode) {
        o += "# HELP ferry_nodes Nodes the master knows, by registration state.\n";
        typeLine(o, "ferry_nodes", "gauge");
        for (const auto& [state, count] : byState) {
            o += "ferry_nodes{state=\"";
            ferry::metrics::appendLabelValue(o, state);
            o += "\"} " + std::to_string(count) + "\n";
        }
        buildMasterCounters(static_cast<std::uint64_t>(stored));
    }
    o += "# HELP ferry_node_info A node's registration state and transport mode.\n";
    typeLine(o, "ferry_node_info", "gauge");
    for (const auto& n : m_nodes) {
        o += "ferry_node_info{mode=\"";
        ferry::metrics::appendLabelValue(o, n.mode);
        o += "\",node=\"";
        ferry::metrics::appendLabelValue(o, n.name);
        o += "\",state=\"";
        ferry::metrics::appendLabelValue(o, n.state);
        o += "\"} 1\n";
    }
    auto perNode = [&](const char* name, const char* type, const char* help, auto value) {
        o += "# HELP ";
        o += name;
        o += ' ';
        o += help;
        o += '\n';
        typeLine(o, name, type);
        for (std::size_t i = 0; i < m_nodes.size(); ++i) {
            const std::optional<std::string> v = value(m_nodes[i], m_perNode[i]);
            if (v)
                o += name + nodeLabel(m_nodes[i].name) + " " + *v + "\n";
        }
    };
    using OptS = std::optional<std::string>;
    perNode("ferry_node_last_seen_timestamp_seconds", "gauge", "When the node last delivered records (push or pull).",
            [&](const NodeRow& n, const PerNode&) { return n.lastSeenMs ? OptS(seconds(n.lastSeenMs)) : std::nullopt; });
    perNode("ferry_node_last_push_timestamp_seconds", "gauge", "When the node last pushed.",
            [&](const NodeRow& n, const PerNode&) { return n.lastPushMs ? OptS(seconds(n.lastPushMs)) : std::nullopt; });
    perNode("ferry_node_last_pull_timestamp_seconds", "gauge", "When the master last pulled the node.",
            [&](const NodeRow& n, const PerNode&) { return n.lastPullMs ? OptS(seconds(n.lastPullMs)) : std::nullopt; });
    perNode("ferry_node_newest_sample_timestamp_seconds", "gauge", "Time of the node's newest stored sample.",
            [&](const NodeRow&, const PerNode& p) { return p.newestMs ? OptS(seconds(p.newestMs)) : std::nullopt; });
    perNode("ferry_node_lag_seconds", "gauge", "How far the node's newest stored sample is behind the master's clock.",
            [&](const NodeRow&, const PerNode& p) {
                return p.newestMs ? OptS(seconds(std::max<std::int64_t>(0, m_options.nowMs - p.newestMs))) : std::nullopt;
            });
    perNode("ferry_node_records_stored_total", "counter", "Records the master stored for the node.",
            [&](const NodeRow& n, const PerNode&) { return OptS(std::to_string(n.recordsStored)); });
    perNode("ferry_node_series", "gauge", "Series of the node served on this endpoint.",
            [&](const NodeRow&, const PerNode& p) { return OptS(std::to_string(p.series)); });
    perNode("ferry_node_unreadable_records", "gauge", "Newest records of the node that could not be decoded.",
            [&](const NodeRow&, const PerNode& p) { return OptS(std::to_string(p.badRecords)); });

    // node_reports: its numeric columns, as ferry_node_report_<column>; *_ms
    // columns become seconds.
    std::map<std::string, std::vector<std::pair<std::string, double>>> reports;
    for (const auto& r : m_store.nodeReports()) {
        if (m_options.onlyNode && r.node != *m_options.onlyNode)
            continue;
        for (const auto& [column, value] : r.values) {
            if (!ferry::metrics::isValidLabelName(column))
                continue;
            if (column.ends_with("_ms"))
                reports["ferry_node_report_" + column.substr(0, column.size() - 3) + "_seconds"].push_back(
                    {r.node, value / 1000.0});
            else
                reports["ferry_node_report_" + column].push_back({r.node, value});
        }
    }
    for (const auto& [name, rows] : reports) {
        typeLine(o, name, name.ends_with("_total") ? "counter" : "gauge");
        for (const auto& [node, value] : rows)
            o += name + nodeLabel(node) + " " + ferry::metrics::formatValue(value) + "\n";
    }
    try {
        buildRemoteWrite();
    } catch (const std::exception& e) {
        spdlog::warn("Ignoring remote-write state {}: {}", m_options.remoteWriteState, e.what());
    }
}

void Exposition::buildMasterCounters(std::uint64_t storedByNodes)
{
    // The counters collectord, pulld and registryd keep in master_counters,
    // as ferry_<name>_total{labels}.
    static const std::map<std::string, const char*> kHelp = {
        {"sessions",
         "Data sessions the master ran, by transport (push, pull) and outcome (ok, held, refused, failed)."},
        {"records_stored", "Records the master stored, by transport (via)."},
        {"duplicates_refused", "Records the master already had and did not store again, by transport (via)."},
        {"epochs_new", "Spool epochs seen for the first time, by kind (first, reinstall, suspect_node)."},
        {"epochs_suspect", "Epochs the master marked suspect (two spools speaking for one node)."},
        {"pull_failures", "Failed pulls, by cause."},
        {"registrations", "Registration requests answered, by outcome."},
    };
    std::string& o = m_health;
    std::string family;
    bool haveStored = false;
    for (const auto& c : m_store.counters()) {
        const std::string name = "ferry_" + c.name + "_total";
        if (!ferry::metrics::isValidLabelName(c.name))
            continue;
        if (name != family) {
            family = name;
            const auto help = kHelp.find(c.name);
            o += "# HELP " + name + " " + (help != kHelp.end() ? help->second : "A counter of the master.") + "\n";
            typeLine(o, name, "counter");
        }
        haveStored = haveStored || c.name == "records_stored";
        o += name + (c.labels.empty() ? std::string() : "{" + c.labels + "}") + " " + std::to_string(c.value) + "\n";
    }
    // A store from before master_counters: the nodes' sum.
    if (!haveStored) {
        o += "# HELP ferry_records_stored_total Records stored by the master, all nodes.\n";
        typeLine(o, "ferry_records_stored_total", "counter");
        o += "ferry_records_stored_total " + std::to_string(storedByNodes) + "\n";
    }
}

void Exposition::buildRemoteWrite()
{
    std::error_code ec;
    if (m_options.remoteWriteState.empty() || !std::filesystem::exists(m_options.remoteWriteState, ec))
        return;
    RemoteWriteState state(m_options.remoteWriteState, /*readOnly=*/true);
    auto counters = state.counters();
    const auto cursors = state.cursors();
    std::string& o = m_health;
    auto counter = [&](const char* name, const char* help, std::int64_t v) {
        o += std::string("# HELP ") + name + " " + help + "\n";
        typeLine(o, name, "counter");
        o += std::string(name) + " " + std::to_string(v) + "\n";
    };
    if (!m_options.onlyNode) {
        counter("ferry_remote_write_samples_total", "Samples the receiver accepted.", counters["samples_sent"]);
        counter("ferry_remote_write_samples_rejected_total", "Samples in records the receiver refused on their own (skipped).",
                counters["samples_rejected"]);
        counter("ferry_remote_write_unreadable_records_total", "Stored records that could not be decoded (skipped).",
                counters["records_unreadable"]);
        o += "# HELP ferry_remote_write_requests_total Remote-write requests by result.\n";
        typeLine(o, "ferry_remote_write_requests_total", "counter");
        for (const char* r : {"ok", "rejected", "failed_http", "failed_transport"})
            o += std::string("ferry_remote_write_requests_total{result=\"") + r + "\"} " +
                 std::to_string(counters[std::string("requests_") + r]) + "\n";
    }
    o += "# HELP ferry_remote_write_lag_seconds How far remote-write is behind the node's newest stored sample.\n";
    typeLine(o, "ferry_remote_write_lag_seconds", "gauge");
    for (std::size_t i = 0; i < m_nodes.size(); ++i) {
        if (!m_perNode[i].newestMs)
            continue;
        std::int64_t sent = 0;
        if (auto it = cursors.find(m_nodes[i].name); it != cursors.end())
            for (const auto& [epoch, c] : it->second)
                sent = std::max(sent, c.timeMs);
        if (sent == 0)
            continue;  // nothing sent yet for this node
        const std::int64_t lag = std::max<std::int64_t>(0, m_perNode[i].newestMs - sent);
        o += "ferry_remote_write_lag_seconds" + nodeLabel(m_nodes[i].name) + " " +
             ferry::metrics::formatValue(static_cast<double>(lag) / 1000.0) + "\n";
    }
}

bool Exposition::next(std::string& out, std::size_t chunkBytes)
{
    const std::size_t before = out.size();
    chunkBytes += before;
    if (!m_healthDone) {
        out += m_health;
        m_health.clear();
        m_health.shrink_to_fit();
        m_healthDone = true;
        if (out.size() >= chunkBytes)
            return true;
    }
    while (!m_heap.empty() && out.size() < chunkBytes) {
        Source* s = m_heap.top();
        m_heap.pop();
        const auto family = ferry::metrics::familyName(s->block.name, s->block.type);
        if (family != m_family) {
            m_family = std::string(family);
            typeLine(out, family, ferry::metrics::toString(s->block.type));
        }
        for (std::uint64_t i = 0; i < s->block.series; ++i) {
            double value = 0;
            std::int64_t timeMs = 0;
            s->reader->nextSeries(s->block, m_values, value, timeMs);
            appendLine(out, s->block.name, s->block.labelNames, m_values, s->node, value, timeMs);
        }
        if (advance(*s)) {
            m_heap.push(s);
        } else {
            // Done with this record: give its memory back.
            s->reader.reset();
            std::string().swap(s->payload);
        }
    }
    return out.size() > before;
}

} // namespace metricsd
