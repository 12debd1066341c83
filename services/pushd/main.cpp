// ferry-pushd: the node's push transport (org.ferry.Push1). As a daemon it
// is started on demand by D-Bus activation (ferryctl, the pull login shell)
// and exits after an idle period. Its timers run it once instead, without
// the bus: `--cycle` (ferry-push.service) and `--evaluate`
// (ferry-push-fallback.service) do their one job and exit, so that a
// scheduled cycle is one process and no client.

#include <cstdlib>

#include "CollectorConnector.h"
#include "Manager.h"
#include "PushAdaptor.h"
#include "ferry/Bus.h"
#include "ferry/DaemonArgs.h"
#include "ferry/Log.h"

namespace {
enum class Run { Daemon, Cycle, Evaluate };
} // namespace

int main(int argc, char* argv[]) try {
    ferry::DaemonArgs args;
    Run run = Run::Daemon;
    ferry::ArgParser("ferry-pushd", "pushes the node's spool to the master (org.ferry.Push1)")
        .daemonOptions(args)
        .flag("--cycle", "run one scheduled cycle (push only when push is active) and exit; no bus",
              [&] { run = Run::Cycle; })
        .flag("--evaluate", "re-evaluate the pull-absence fallback and exit; no bus", [&] { run = Run::Evaluate; })
        .parse(argc, argv);
    ferry::initLogging("ferry-pushd", args.verbosity);
    const ferry::Paths paths = ferry::pathsFromEnvironment();
    const auto config = ferry::loadNodeConfig(paths);
    const auto plugins = ferry::loadPluginsConfig(paths);
    pushd::SshCollectorConnector connector(config, paths);
    pushd::Manager manager(config, plugins, paths, connector);

    if (run == Run::Evaluate) {
        const auto d = manager.evaluate();
        spdlog::info("Push {}: {}", d.active ? "on" : "off", d.reason);
        return EXIT_SUCCESS;
    }
    if (run == Run::Cycle) {
        // The outcome is logged and persisted by the manager; a skip is not.
        const auto o = manager.runScheduled();
        if (o.skipped)
            spdlog::info("Push {}", o.summary);
        return o.success ? EXIT_SUCCESS : EXIT_FAILURE;
    }

    auto bus = ferry::openBus();
    ferry::EventLoop loop(*bus, args.idleTimeout);
    pushd::PushAdaptor api(*bus, loop, manager);
    ferry::LogControl logControl(*bus, loop, "ferry-pushd");
    const auto st = manager.state();
    ferry::notifyReady(st.lastResult.empty() ? "Waiting for the first push" : "Last push: " + st.lastResult);
    loop.run("org.ferry.Push1");
    return EXIT_SUCCESS;
} catch (const std::exception& e) {
    ferry::logFatal(e);
    return EXIT_FAILURE;
}
