#pragma once
// What the sampler measures, as samples with prometheus-node-exporter's
// names, labels and units: load, CPU seconds by cpu and mode, /proc/meminfo,
// filesystems, network devices, boot time and the clock. Plugins in
// plugins.d and *.prom files (node_exporter's textfile collector) add
// samples in the Prometheus text format.

#include <chrono>
#include <cstdint>
#include <string>
#include <vector>

#include "ferry/Metrics.h"

namespace sampler {

struct SystemSources {
    std::string procRoot = "/proc";  // tests read a prepared tree
    // node_exporter reads PID 1's view of the mounts.
    std::string mountsFile = "/proc/1/mounts";
};

// Every family this sampler produces (the claim the node_exporter
// side-by-side test checks).
const std::vector<std::string>& builtinFamilies();

std::vector<ferry::metrics::Sample> sampleSystem(const SystemSources& sources, std::int64_t nowMs);

struct PluginRun {
    std::string name;
    bool ok = false;
    std::string output;  // the plugin's stdout, or the error for the log
};

// Runs every executable regular file in dir (sorted by name), each bounded
// by timeout and by ferry::kMaxRecordPayload bytes of output.
std::vector<PluginRun> runPlugins(const std::string& dir, std::chrono::seconds timeout);

// Parses exposition text from `source` (a plugin, a .prom file); logs one
// warning per bad line (escaped, at most a few per source, then a count)
// and keeps the rest.
std::vector<ferry::metrics::Sample> parseOutput(const std::string& source, const std::string& text,
                                                const ferry::metrics::Limits& limits);

struct TextFile {
    std::string name;
    std::string text;
};
// The *.prom files of dir, sorted by name (unreadable ones are logged and skipped).
std::vector<TextFile> readTextFiles(const std::string& dir, std::size_t maxBytes);

} // namespace sampler
