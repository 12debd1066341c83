#pragma once
// The text metricsd serves on GET /metrics, produced in chunks so that a
// response for 10,000 nodes never sits whole in memory: first Ferry's own
// health (ferry_*), then, family by family, the latest sample of every
// series of every node with its original timestamp and a `node` label.
//
// prepare() reads each node's newest records once and keeps only their
// payloads (about a kilobyte per node); next() merges the nodes' blocks by
// metric name, so each family is written once with one # TYPE line.

#include <cstdint>
#include <memory>
#include <optional>
#include <queue>
#include <string>
#include <vector>

#include "StoreReader.h"
#include "ferry/SampleCodec.h"

namespace metricsd {

struct ExpositionOptions {
    std::int64_t nowMs = 0;
    // A record kind not written for this long before the node's newest record
    // (a plugin that was removed) is no longer served.
    std::int64_t staleMs = 5 * 60 * 1000;
    // Samples older than this are not served (Prometheus refuses samples far
    // behind its head; remote-write carries the backlog). 0: no limit.
    std::int64_t maxAgeMs = 60 * 60 * 1000;
    std::optional<std::string> onlyNode;  // GET /metrics?node=NAME
    // ferry-remote-write's state (read-only, when the file exists).
    std::string remoteWriteState;
};

class Exposition {
public:
    Exposition(StoreReader& store, ExpositionOptions options);
    ~Exposition();
    Exposition(const Exposition&) = delete;
    Exposition& operator=(const Exposition&) = delete;

    // Reads the store; throws ferry::Error when it cannot.
    void prepare();
    // Appends about chunkBytes of text to out; false when nothing is left.
    bool next(std::string& out, std::size_t chunkBytes);

    std::size_t nodeCount() const { return m_nodes.size(); }
    std::size_t seriesCount() const { return m_series; }

private:
    struct Source;
    struct Later {
        bool operator()(const Source* a, const Source* b) const;
    };
    void addRecords(const std::string& node, std::vector<StoredRecord> records, std::int64_t& newestMs,
                    std::size_t& series, std::size_t& bad);
    void buildHealth();
    void buildMasterCounters(std::uint64_t storedByNodes);
    void buildRemoteWrite();
    bool advance(Source& s);

    StoreReader& m_store;
    ExpositionOptions m_options;
    std::vector<NodeRow> m_nodes;
    struct PerNode {
        std::int64_t newestMs = 0;
        std::size_t series = 0;
        std::size_t badRecords = 0;
    };
    std::vector<PerNode> m_perNode;
    std::vector<std::unique_ptr<Source>> m_sources;
    std::priority_queue<Source*, std::vector<Source*>, Later> m_heap;
    std::string m_health;
    bool m_healthDone = false;
    std::string m_family;
    std::size_t m_series = 0;
    std::vector<std::string_view> m_values;
};

} // namespace metricsd
