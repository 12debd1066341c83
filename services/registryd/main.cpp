// ferry-registryd: the master's node registry. Nodes register on TCP 50010
// (sockets from systemd, or bound here); the operator decides over
// org.ferry.Registry1. Exits when idle; socket or bus activation brings it back.

#include <cstdlib>
#include <iostream>

#include <spdlog/spdlog.h>

#include "Manager.h"
#include "Options.h"
#include "RegistryAdaptor.h"
#include "RegistryServer.h"
#include "ferry/Bus.h"
#include "ferry/Log.h"
#include "ferry/MasterStore.h"
#include "ferry/Paths.h"
#include "ferry/RegistryStore.h"
#include "ferry/StoreConfig.h"

int main(int argc, char* argv[]) try {
    // Errors in the arguments or the config file are logged under our name too.
    ferry::initLogging("ferry-registryd");
    auto options = registryd::parseArgs(argc, argv);
    if (options.help) {
        std::cout << registryd::usage();
        return EXIT_SUCCESS;
    }
    ferry::initLogging("ferry-registryd", options.verbosity);
    const std::string stateDir = options.stateDir.empty() ? ferry::pathsFromEnvironment().stateDir : options.stateDir;
    options.manager.hostKeys = registryd::loadHostKeys(options.hostKeyFiles);
    options.manager.pullKeyFile = stateDir + "/pull_id_ed25519.pub";

    // master.db, or the PostgreSQL database store.yml names: there every
    // master's registryd shares the registry.
    const auto opener = ferry::MasterStoreOpener::fromPaths(ferry::pathsFromEnvironment(), stateDir);
    ferry::RegistryStore registry{opener.tables()};
    spdlog::debug("The registry is in {}", opener.describe());
    if (options.manager.krlFile.empty())
        options.manager.krlFile = stateDir + "/revoked_keys.krl";
    registryd::Manager manager{registry, options.manager, ferry::nowMs};
    manager.prepare();
    bool fromSystemd = false;
    auto sockets = registryd::listeningSockets(options.listen, fromSystemd);
    if (!fromSystemd && !options.idleTimeoutGiven)
        options.idleTimeout = std::chrono::milliseconds(0);
    auto bus = ferry::openBus();
    ferry::EventLoop loop{*bus, options.idleTimeout};
    registryd::RegistryAdaptor adaptor{*bus, loop, manager};
    ferry::LogControl logControl{*bus, loop, "ferry-registryd"};

    // A connection in progress keeps the daemon from exiting idle.
    registryd::RegistryServer server{
        std::move(sockets), options.server,
        [&manager](const ferry::Frame& request, const std::string& peer) { return manager.handle(request, peer); },
        [busy = loop.activity()] { busy(true); }, [busy = loop.activity()] { busy(false); }};
    server.start();

    ferry::notifyReady("Serving registrations");
    loop.run("org.ferry.Registry1");
    ferry::notifyStopping();
    server.stop();
    return EXIT_SUCCESS;
} catch (const std::exception& e) {
    ferry::logFatal(e);
    return EXIT_FAILURE;
}
