// ferry-pulld: the master's puller (org.ferry.Pull1). Started by D-Bus
// activation; serves the bus and exits when idle. It pulls only when asked:
// RunRound (ferry-pull-round.service, from ferry-pulld.timer), PullNow and
// PullAll (root), or --run-round on the command line. A pulld that a property
// read activated pulls nothing: any local user may read properties, and a
// round deletes acknowledged records on the nodes and switches their
// auto-mode push off.

#include <cstdlib>
#include <string>

#include "PullAdaptor.h"
#include "PulldConfig.h"
#include "Puller.h"
#include "SshNodeConnector.h"
#include "ferry/BackgroundJobs.h"
#include "ferry/Bus.h"
#include "ferry/DaemonArgs.h"
#include "ferry/Files.h"
#include "ferry/Log.h"
#include "ferry/MasterStore.h"
#include "ferry/SshSession.h"
#include "ferry/StoreConfig.h"

int main(int argc, char* argv[]) try {
    // Passive unless its timer's service asks for a round: a bus activation
    // (any local user reading a property) must not pull and delete records.
    bool roundAtStart = false;
    ferry::DaemonArgs args;
    ferry::ArgParser("ferry-pulld", "pulls the nodes' spools into the master's store (org.ferry.Pull1)")
        .daemonOptions(args)
        .flag("--run-round", "start a pull round at start-up (the timer's service passes it)",
              [&] { roundAtStart = true; })
        .flag("--no-round", "the old default's opposite; accepted and ignored (passive is the default)", [] {})
        .parse(argc, argv);
    ferry::initLogging("ferry-pulld", args.verbosity);
    // It holds node keys: no other process of user ferry may look inside.
    ferry::refuseSameUserInspection();
    const ferry::Paths paths = ferry::pathsFromEnvironment();
    const pulld::PulldConfig config = pulld::loadPulldConfig(paths);
    if (ferry::ensureKeyPair(config.keyFile))
        spdlog::info("Created the pull key {}: ship {}.pub in the node package", config.keyFile, config.keyFile);

    // master.db, or the PostgreSQL database store.yml names (shared with
    // other masters, which split the pulls by lease). Host keys come from
    // the registry's pins there (registration carries them).
    // The Puller sizes the pool to its concurrency (reserveConnections).
    const ferry::MasterStoreOpener store(ferry::loadStoreConfig(paths), ferry::masterStorePath(paths.stateDir));
    pulld::SshNodeConnector connector(config, store);
    pulld::Puller puller(store, config, connector);

    auto bus = ferry::openBus();
    ferry::EventLoop loop(*bus, args.idleTimeout);

    // The timer's round: nodes pulled less than min_interval ago (by an
    // earlier round or PullNow) are skipped. One at a time: a round asked
    // for while one runs is that round.
    ferry::BackgroundJobs rounds(loop, "org.ferry.Pull1", 1);
    auto startRound = [&]() -> bool {
        if (rounds.running() > 0)
            return false;
        rounds.start(
            "a pull round", [&] { puller.pullRound(false); },
            [&] { ferry::notifyStatus("Idle; last round " + ferry::formatTime(puller.lastRoundMs())); },
            [&](const sdbus::Error& e) { spdlog::error("Failed to run a pull round: {}", e.getMessage()); });
        if (rounds.running() == 0)
            throw ferry::Error("Failed to start a pull round: no worker could be started (see the journal)");
        return true;
    };
    pulld::PullAdaptor api(*bus, loop, puller, startRound);
    ferry::LogControl logControl(*bus, loop, "ferry-pulld");
    if (roundAtStart)
        startRound();
    ferry::notifyReady(roundAtStart ? "Pulling the nodes that are due" : "Waiting for requests");
    loop.run("org.ferry.Pull1");
    return EXIT_SUCCESS;
} catch (const std::exception& e) {
    ferry::logFatal(e);
    return EXIT_FAILURE;
}
