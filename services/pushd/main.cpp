// ferry-pushd: the node's push transport (org.ferry.Push1). As a daemon it
// is started on demand by D-Bus activation (ferryctl, the pull login shell)
// and exits after an idle period. Its timers do not start it: they run
// ferry-push-once (once_main.cpp), the same core without the bus.

#include <cstdlib>

#include "CollectorConnector.h"
#include "Manager.h"
#include "PushAdaptor.h"
#include "ferry/Bus.h"
#include "ferry/DaemonArgs.h"
#include "ferry/Log.h"

int main(int argc, char* argv[]) try {
    ferry::DaemonArgs args;
    ferry::ArgParser("ferry-pushd", "pushes the node's spool to the master (org.ferry.Push1)")
        .daemonOptions(args)
        .parse(argc, argv);
    ferry::initLogging("ferry-pushd", args.verbosity);
    const ferry::Paths paths = ferry::pathsFromEnvironment();
    const auto config = ferry::loadNodeConfig(paths);
    const auto plugins = ferry::loadPluginsConfig(paths);
    pushd::SshCollectorConnector connector(config, paths);
    pushd::Manager manager(config, plugins, paths, connector);

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
