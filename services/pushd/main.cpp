// ferry-pushd: the node's push transport (org.ferry.Push1). Started on
// demand by its timers (through ferryctl) or by D-Bus activation; exits
// after an idle period.

#include <cstdlib>
#include <cstring>
#include <string>

#include "CollectorConnector.h"
#include "Manager.h"
#include "PushAdaptor.h"
#include "ferry/Bus.h"
#include "ferry/Log.h"

namespace {

struct Args {
    int verbosity = 0;
    std::chrono::milliseconds idle{30000};
};

Args parseArgs(int argc, char* argv[])
{
    Args a;
    for (int i = 1; i < argc; ++i) {
        const std::string s = argv[i];
        if (s == "-v" || s == "--verbose")
            ++a.verbosity;
        else if (s.rfind("--idle-timeout=", 0) == 0)
            a.idle = std::chrono::milliseconds(std::atoll(s.c_str() + 15) * 1000);
        else
            throw ferry::Error("Unknown argument '" + s + "' (usage: ferry-pushd [-v] [--idle-timeout=SECONDS])");
    }
    return a;
}

} // namespace

int main(int argc, char* argv[]) try {
    const Args args = parseArgs(argc, argv);
    ferry::initLogging("ferry-pushd", args.verbosity);
    const ferry::Paths paths = ferry::pathsFromEnvironment();
    const auto config = ferry::loadNodeConfig(paths);
    const auto plugins = ferry::loadPluginsConfig(paths);
    pushd::SshCollectorConnector connector(config, paths);
    pushd::Manager manager(config, plugins, paths, connector);

    auto bus = ferry::openBus();
    ferry::EventLoop loop(*bus, args.idle);
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
