// ferry-registryd: the master's node registry. Nodes register on TCP 50010
// (sockets from systemd, or bound here); the operator decides over
// org.ferry.Registry1. Exits when idle; socket or bus activation brings it back.

#include <cstdlib>
#include <functional>
#include <iostream>
#include <memory>

#include <spdlog/spdlog.h>

#include "Manager.h"
#include "Options.h"
#include "RegistryAdaptor.h"
#include "RegistryServer.h"
#include "ferry/AuthorizedKeysView.h"
#include "ferry/Bus.h"
#include "ferry/Files.h"
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
    // It holds node keys: no other process of user ferry may look inside.
    ferry::refuseSameUserInspection();
    const std::string stateDir = options.stateDir.empty() ? ferry::pathsFromEnvironment().stateDir : options.stateDir;
    if (!options.syncKrl)
        options.manager.hostKeys = registryd::loadHostKeys(options.hostKeyFiles);
    options.manager.pullKeyFile = stateDir + "/pull_id_ed25519.pub";

    // master.db, or the PostgreSQL database store.yml names: there every
    // master's registryd shares the registry.
    const auto opener = ferry::MasterStoreOpener::fromPaths(ferry::pathsFromEnvironment(), stateDir);
    // Opened again after a failed request (Manager::reopenIfFailed).
    ferry::RegistryStore registry{
        std::function<std::unique_ptr<ferry::SqlConnection>()>([&opener] { return opener.tables(); })};
    spdlog::debug("The registry is in {}", opener.describe());
    if (!opener.isPostgres()) {
        // sshd's AuthorizedKeysCommand helper reads this view, never master.db.
        registry.keepAuthorizedKeysView(ferry::authorizedKeysViewPath(opener.sqlitePath()));
        const auto keys = registry.writeAuthorizedKeysView();
        spdlog::debug("The authorized keys view {} holds {} keys", ferry::authorizedKeysViewPath(opener.sqlitePath()),
                      keys);
        // From now on the Manager writes it, once for all the changes made
        // meanwhile, before it answers about any of them.
        registry.deferAuthorizedKeysView();
    }
    if (options.manager.krlFile.empty())
        options.manager.krlFile = stateDir + "/revoked_keys.krl";
    registryd::Manager manager{registry, options.manager, ferry::nowMs};
    if (options.syncKrl) {
        if (options.manager.caKeyFile.empty())
            spdlog::debug("No CA key is configured (ca_key in registry.yml): there is no KRL to keep");
        else if (manager.refreshKrl())
            spdlog::info("Rewrote the revocation list {} from the store", options.manager.krlFile);
        return EXIT_SUCCESS;
    }
    manager.prepare();
    bool fromSystemd = false;
    auto sockets = registryd::listeningSockets(options.listen, fromSystemd);
    if (!fromSystemd && !options.idleTimeoutGiven)
        options.idleTimeout = std::chrono::milliseconds(0);
    auto bus = ferry::openBus();
    ferry::EventLoop loop{*bus, options.idleTimeout};
    registryd::RegistryAdaptor adaptor{*bus, loop, manager};
    ferry::LogControl logControl{*bus, loop, "ferry-registryd"};
    // Another master sharing the store may revoke a certificate: its serial
    // must reach this master's sshd too. Not activity: it does not keep
    // registryd from exiting idle (ferry-krl-sync.timer takes over then).
    if (options.manager.krlRefresh.count() > 0 && !options.manager.caKeyFile.empty()) {
        loop.every(options.manager.krlRefresh, [&manager, failing = false]() mutable {
            try {
                if (manager.refreshKrl())
                    spdlog::info(
                        "Rewrote the revocation list from the store (a new revocation, or its hourly rewrite)");
                if (failing)
                    spdlog::info("Keeping the revocation list current works again");
                failing = false;
            } catch (const std::exception& e) {
                if (!failing)
                    spdlog::error("Failed to keep the revocation list current (retrying): {}", e.what());
                failing = true;
            }
        });
    }

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
    if (manager.groupCommits() > 0)
        spdlog::info("Committed {} registrations in {} groups; rewrote the authorized keys view {} times",
                     manager.groupedRegistrations(), manager.groupCommits(), manager.viewWrites());
    return EXIT_SUCCESS;
} catch (const std::exception& e) {
    ferry::logFatal(e);
    return EXIT_FAILURE;
}
