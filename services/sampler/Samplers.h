#pragma once
// What the sampler measures, as samples with prometheus-node-exporter's
// names, labels and units: load, CPU seconds by cpu and mode, /proc/meminfo,
// filesystems, network devices, boot time and the clock. Plugins in
// plugins.d and *.prom files (node_exporter's textfile collector) add
// samples in the Prometheus text format.

#include <chrono>
#include <cstdint>
#include <string>

#include "ferry/Stream.h"
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

// Plugins apart from the spool (issue 12 item 2). In production the
// plugins run in ferry-plugins@.service, a dynamic user that cannot reach
// /var/lib/ferry (`ferry-sampler --run-plugins`, its stdin and stdout the
// connection accepted on /run/ferry/plugins.sock); the sampler, as user
// ferry, connects and reads their output through that pipe. On the pipe,
// in Ferry frames (Wire.h): one Batch frame per plugin holding one Record
// {seq = 2 ok / 1 failed, kind = plugin name, payload = output or error},
// then Bye. At most kMaxPluginRuns frames, each bounded as a record.
constexpr std::size_t kMaxPluginRuns = 256;
void writePluginRuns(ferry::ByteStream& out, const std::vector<PluginRun>& runs, std::chrono::seconds timeout);
// Reads what writePluginRuns wrote; each frame must come within
// perPlugin. Throws ferry::ProtocolError / TimeoutError / ClosedError
// naming the runner.
std::vector<PluginRun> readPluginRuns(ferry::ByteStream& in, std::chrono::milliseconds perPlugin);
// Connects to the runner's socket (ferry-plugins.socket).
std::vector<PluginRun> runPluginsThrough(const std::string& socketPath, std::chrono::seconds pluginTimeout);

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
