#pragma once
// What the sampler measures: load, CPU, memory, disk and network from /proc
// and statvfs, plus executable plugins from plugins.d. Each sample is a
// record kind and a text payload of "key value" lines.

#include <chrono>
#include <string>
#include <vector>

#include "ferry/Wire.h"

namespace sampler {

// procRoot lets tests read a prepared tree; production passes "/proc".
std::vector<ferry::Record> sampleSystem(const std::string& procRoot, std::int64_t nowMs);

struct PluginRun {
    std::string name;
    bool ok = false;
    std::string output;  // the record payload, or the error for the log
};

// Runs every executable regular file in dir (sorted by name), each bounded
// by timeout and by ferry::kMaxRecordPayload bytes of output.
std::vector<PluginRun> runPlugins(const std::string& dir, std::chrono::seconds timeout);

} // namespace sampler
