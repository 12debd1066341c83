// ferry-push-once: what the node's push timers run, once, without the bus.
// By default one scheduled cycle (ferry-push.service): re-evaluate the
// pull-absence fallback and push when push is active; with --evaluate only
// the re-evaluation (ferry-push-fallback.service). Both record their result
// in the state file that the bus daemon ferry-pushd reads, so `ferryctl
// status` and auto mode see them. A binary of its own, apart from
// ferry-pushd, so that the process a node starts every few minutes maps
// only what a cycle needs: no sd-bus, no sdbus-c++, no libsystemd (see
// bench/footprint).

#include <cstdlib>

#include "CollectorConnector.h"
#include "Manager.h"
#include "ferry/DaemonArgs.h"
#include "ferry/Log.h"

int main(int argc, char* argv[])
try {
    int verbosity = 0;
    bool evaluateOnly = false;
    ferry::ArgParser("ferry-push-once",
                     "runs one scheduled push cycle of the node (push only when push is active) and exits")
        .flag("-v|--verbose", "more logging (twice: trace)", [&] { ++verbosity; })
        .flag("--evaluate", "only re-evaluate the pull-absence fallback, push nothing", [&] { evaluateOnly = true; })
        .parse(argc, argv);
    ferry::initLogging("ferry-push-once", verbosity);
    const ferry::Paths paths = ferry::pathsFromEnvironment();
    const auto config = ferry::loadNodeConfig(paths);
    pushd::SshCollectorConnector connector(config, paths);
    // plugins.yml is the bus daemon's business (its Period property).
    pushd::Manager manager(config, ferry::PluginsConfig{}, paths, connector);

    if (evaluateOnly) {
        const auto d = manager.evaluate();
        spdlog::info("Push {}: {}", d.active ? "on" : "off", d.reason);
        return EXIT_SUCCESS;
    }
    // The outcome is logged and persisted by the manager; a skip is not.
    const auto o = manager.runScheduled();
    if (o.skipped)
        spdlog::info("Push {}", o.summary);
    return o.success ? EXIT_SUCCESS : EXIT_FAILURE;
} catch (const std::exception& e) {
    ferry::logFatal(e);
    return EXIT_FAILURE;
}
