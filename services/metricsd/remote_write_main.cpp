// ferry-remote-write: one run of remote-write (ferry-remote-write.timer),
// sending what the master stored since each (node, epoch)'s cursor to the
// Prometheus remote-write receiver of /etc/ferry/metrics.yml. Off (exits at
// once) when that file names no url.

#include <cstdlib>
#include <optional>
#include <string>
#include <thread>

#include "CurlSender.h"
#include "RemoteWriteConfig.h"
#include "RemoteWriter.h"
#include "ferry/Bus.h"
#include "ferry/DaemonArgs.h"
#include "ferry/Log.h"
#include "ferry/MasterStore.h"
#include "ferry/NodeConfig.h"
#include "ferry/StoreConfig.h"

int main(int argc, char* argv[]) try {
    std::string configFile, storePath, statePath;
    const auto args = ferry::parseDaemonArgs(
        argc, argv, std::chrono::seconds(0),
        "ferry-remote-write [-v] [--config=FILE] [--store=FILE] [--state=FILE]", [&](const std::string& s) {
            if (s.rfind("--config=", 0) == 0)
                configFile = s.substr(9);
            else if (s.rfind("--store=", 0) == 0)
                storePath = s.substr(8);
            else if (s.rfind("--state=", 0) == 0)
                statePath = s.substr(8);
            else
                return false;
            return true;
        });
    ferry::initLogging("ferry-remote-write", args.verbosity);
    const ferry::Paths paths = ferry::pathsFromEnvironment();
    if (configFile.empty())
        configFile = paths.configDir + "/metrics.yml";
    // --store names a master.db; without it, the store store.yml names
    // (through the readers' role of readers_postgresql: on PostgreSQL).
    std::optional<ferry::StoreConfig> storeConfig;
    if (storePath.empty()) {
        storePath = ferry::masterStorePath(paths.stateDir);
        storeConfig = ferry::loadStoreConfig(paths);
    }
    if (statePath.empty())
        statePath = paths.stateDir + "/remote-write.db";
    const auto config = metricsd::loadRemoteWriteConfig(configFile);
    if (!config.enabled()) {
        spdlog::info("Remote-write is off: {} sets no remote_write: url:", configFile);
        return EXIT_SUCCESS;
    }
    const auto reader = metricsd::StoreReader::open(
        storePath, storeConfig ? ferry::readerConnection(*storeConfig, "ferry-remote-write") : std::string());
    metricsd::StoreReader& store = *reader;
    metricsd::RemoteWriteState state(statePath, false);
    metricsd::CurlSender sender(config);
    metricsd::RemoteWriter writer(config, store, state, sender,
                                  [](std::chrono::milliseconds d) { std::this_thread::sleep_for(d); });
    const auto result = writer.run();
    if (!result.complete) {
        spdlog::error("{} ({} samples sent in this run; the next run resumes)", result.error, result.samplesSent);
        return EXIT_FAILURE;
    }
    spdlog::info("Remote-write: {} samples sent in {} requests{}", result.samplesSent, result.requests,
                 result.recordsRejected ? ", " + std::to_string(result.recordsRejected) + " records refused" : "");
    return EXIT_SUCCESS;
} catch (const std::exception& e) {
    ferry::logFatal(e);
    return EXIT_FAILURE;
}
