// ferry-sampler: a oneshot (ferry-sampler.timer) that samples the system and
// runs the plugins in /etc/ferry/plugins.d, appending one record per sample
// to the spool in a single transaction.

#include <cstdlib>
#include <string>

#include "Samplers.h"
#include "ferry/Bus.h"
#include "ferry/DaemonArgs.h"
#include "ferry/Log.h"
#include "ferry/NodeConfig.h"
#include "ferry/Spool.h"

int main(int argc, char* argv[]) try {
    int verbosity = 0;
    std::string procRoot = "/proc";
    ferry::ArgParser("ferry-sampler", "samples the system and runs the plugins into the spool (one record each)")
        .flag("-v|--verbose", "more logging (twice: trace)", [&] { ++verbosity; })
        .option("--proc", "DIR", "read the system from here instead of /proc",
                [&](const std::string& v) { procRoot = v; })
        .parse(argc, argv);
    ferry::initLogging("ferry-sampler", verbosity);
    const ferry::Paths paths = ferry::pathsFromEnvironment();
    const auto config = ferry::loadNodeConfig(paths);
    const auto plugins = ferry::loadPluginsConfig(paths);
    ferry::Spool spool(paths.spoolFile(), {config.spoolMaxBytes, config.spoolMaxAge});

    const std::int64_t now = ferry::nowMs();
    auto records = sampler::sampleSystem(procRoot, now);
    for (const auto& run : sampler::runPlugins(paths.pluginsDir(), plugins.pluginTimeout)) {
        if (run.ok)
            records.push_back({0, now, "plugin:" + run.name.substr(0, ferry::kMaxKind - 7), run.output});
        else
            spdlog::warn("Plugin {}/{} failed: {}", paths.pluginsDir(), run.name, run.output);
    }
    const auto seqs = spool.appendAll(records);
    const auto st = spool.stats();
    spdlog::info("Spooled {} records (sequence {}–{}); {} queued", records.size(), seqs.empty() ? 0 : seqs.front(),
                 seqs.empty() ? 0 : seqs.back(), st.records);
    return EXIT_SUCCESS;
} catch (const std::exception& e) {
    ferry::logFatal(e);
    return EXIT_FAILURE;
}
