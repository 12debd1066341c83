// ferry-sampler: a oneshot (ferry-sampler.timer) that samples the system with
// node_exporter's metric names, runs the plugins in /etc/ferry/plugins.d and
// reads the *.prom files of the textfile directory, and appends the samples
// to the spool in one transaction: kind "metrics" for the built-in samples,
// "metrics:<plugin>" per plugin, "metrics:textfile" for the .prom files, each
// payload in the binary sample encoding (ferry/SampleCodec.h).

#include <unistd.h>

#include <cstdlib>
#include <string>

#include "Samplers.h"
#include "ferry/Bus.h"
#include "ferry/DaemonArgs.h"
#include "ferry/Log.h"
#include "ferry/NodeConfig.h"
#include "ferry/SampleCodec.h"
#include "ferry/Spool.h"

namespace {

void addRecords(std::vector<ferry::Record>& records, const std::string& kind,
                const std::vector<ferry::metrics::Sample>& samples, std::int64_t now)
{
    for (auto& payload : ferry::metrics::encodeSamples(samples, now, ferry::kMaxRecordPayload))
        records.push_back({0, now, kind.substr(0, ferry::kMaxKind), std::move(payload)});
}

} // namespace

int main(int argc, char* argv[]) try {
    int verbosity = 0;
    sampler::SystemSources sources;
    std::int64_t shiftMs = 0;
    bool runPluginsOnly = false;
    std::string pluginsSocket;
    ferry::ArgParser("ferry-sampler", "samples the system and runs the plugins into the spool (one record each)")
        .flag("-v|--verbose", "more logging (twice: trace)", [&] { ++verbosity; })
        .option("--proc", "DIR", "read the system from here instead of /proc",
                [&](const std::string& v) { sources.procRoot = v; })
        .option("--mounts", "FILE", "read the mounts from here instead of /proc/self/mounts",
                [&](const std::string& v) { sources.mountsFile = v; })
        // For tests and benchmarks that build a backlog.
        .option(
            "--time-shift", "MS", "stamp the samples this many milliseconds off",
            [&](const std::string& v) { shiftMs = ferry::parseNumberArg("--time-shift", v, -(1ll << 50), 1ll << 50); })
        .flag("--run-plugins",
              "run the plugins and write their output to stdout for the sampler (ferry-plugins@.service: a user "
              "apart, without access to the spool or the secret)",
              [&] { runPluginsOnly = true; })
        .option("--plugins-socket", "PATH",
                "run the plugins through the runner listening here (ferry-plugins.socket) instead of in this process",
                [&](const std::string& v) { pluginsSocket = v; })
        .parse(argc, argv);
    ferry::initLogging("ferry-sampler", verbosity);
    const ferry::Paths paths = ferry::pathsFromEnvironment();
    if (runPluginsOnly) {
        // No node configuration, no spool, no state: only the plugins.
        const auto plugins = ferry::loadPluginsConfig(paths);
        ferry::FdStream out(STDIN_FILENO, STDOUT_FILENO, "the sampler", false);
        sampler::writePluginRuns(out, sampler::runPlugins(paths.pluginsDir(), plugins.pluginTimeout),
                                 plugins.pluginTimeout);
        return EXIT_SUCCESS;
    }
    const auto config = ferry::loadNodeConfig(paths);
    const auto plugins = ferry::loadPluginsConfig(paths);
    ferry::Spool spool(paths.spoolFile(), {config.spoolMaxBytes, config.spoolMaxAge});
    ferry::metrics::Limits limits;
    limits.maxSeries = plugins.maxSeries;

    const std::int64_t now = ferry::nowMs() + shiftMs;
    std::vector<ferry::Record> records;
    const auto system = sampler::sampleSystem(sources, now);
    addRecords(records, std::string(ferry::metrics::kMetricsKind), system, now);
    std::size_t samples = system.size();
    const auto runs = pluginsSocket.empty() ? sampler::runPlugins(paths.pluginsDir(), plugins.pluginTimeout)
                                            : sampler::runPluginsThrough(pluginsSocket, plugins.pluginTimeout);
    for (const auto& run : runs) {
        const std::string source = "plugin " + paths.pluginsDir() + "/" + run.name;
        if (!run.ok) {
            spdlog::warn("Plugin {}/{} failed: {}", paths.pluginsDir(), run.name, run.output);
            continue;
        }
        const auto parsed = sampler::parseOutput(source, run.output, limits);
        samples += parsed.size();
        addRecords(records, "metrics:" + run.name, parsed, now);
    }
    std::vector<ferry::metrics::Sample> textfile;
    for (const auto& file : sampler::readTextFiles(plugins.textfileDirectory, ferry::kMaxRecordPayload)) {
        auto parsed = sampler::parseOutput(plugins.textfileDirectory + "/" + file.name, file.text, limits);
        for (auto& s : parsed)
            textfile.push_back(std::move(s));
    }
    samples += textfile.size();
    addRecords(records, "metrics:textfile", textfile, now);

    const auto seqs = spool.appendAll(records);
    const auto st = spool.stats();
    spdlog::info("Spooled {} samples in {} records (sequence {}–{}); {} queued", samples, records.size(),
                 seqs.empty() ? 0 : seqs.front(), seqs.empty() ? 0 : seqs.back(), st.records);
    return EXIT_SUCCESS;
} catch (const std::exception& e) {
    ferry::logFatal(e);
    return EXIT_FAILURE;
}
