// ferry-keyregd: the node's key pair and its registration with the masters
// (org.ferry.KeyReg1). Registers when asked (Register: `ferryctl register`,
// and ferry-keyreg-boot.service at every boot; or --register), retries with
// backoff while a master is unreachable or pending, and exits when there is
// nothing left to do. Started by the bus for anything else (a status query),
// it registers nothing: any local user may read its properties.

#include <cstdlib>
#include <iostream>

#include "KeyRegAdaptor.h"
#include "Manager.h"
#include "Options.h"
#include "Registrar.h"
#include "ferry/Bus.h"
#include "ferry/Log.h"
#include "ferry/NodeConfig.h"

int main(int argc, char* argv[]) try {
    // Errors in the arguments or the config file are logged under our name too.
    ferry::initLogging("ferry-keyregd");
    const auto options = keyregd::parseArgs(argc, argv);
    if (options.help) {
        std::cout << keyregd::usage();
        return EXIT_SUCCESS;
    }
    ferry::initLogging("ferry-keyregd", options.verbosity);
    const auto paths = ferry::pathsFromEnvironment();
    const auto config = ferry::loadNodeConfig(paths);

    keyregd::Manager manager{paths, config, options.manager};
    manager.prepare();
    auto bus = ferry::openBus();
    ferry::EventLoop loop{*bus, options.idleTimeout};
    keyregd::Registrar registrar{manager, loop};
    keyregd::KeyRegAdaptor adaptor{*bus, loop, manager, registrar};
    manager.setOnChange([&adaptor](const keyregd::Status& before, const keyregd::Status& after) {
        adaptor.statusChanged(before, after);
        if (before.state != after.state || before.reason != after.reason)
            ferry::notifyStatus("Registration " + after.state + (after.reason.empty() ? "" : ": " + after.reason));
    });
    ferry::LogControl logControl{*bus, loop, "ferry-keyregd"};

    registrar.start(options.registerAtStart);
    ferry::notifyReady(options.registerAtStart
                           ? "Registering with " + std::to_string(config.masters.size()) + " master(s)"
                           : std::string("Waiting for requests"));
    loop.run("org.ferry.KeyReg1");
    ferry::notifyStopping();
    registrar.stop();
    manager.setOnChange({});
    return EXIT_SUCCESS;
} catch (const std::exception& e) {
    ferry::logFatal(e);
    return EXIT_FAILURE;
}
