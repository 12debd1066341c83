// ferry-pulld: the master's puller (org.ferry.Pull1). Started by
// ferry-pulld.timer (every 5 minutes) or by D-Bus activation; pulls the nodes
// that are due, serves the bus, and exits when idle.

#include <cstdlib>
#include <string>
#include <thread>

#include "PullAdaptor.h"
#include "Puller.h"
#include "PulldConfig.h"
#include "SshNodeConnector.h"
#include "ferry/Bus.h"
#include "ferry/DaemonArgs.h"
#include "ferry/Log.h"
#include "ferry/MasterStore.h"
#include "ferry/SshSession.h"

int main(int argc, char* argv[]) try {
    bool roundAtStart = true;
    ferry::DaemonArgs args;
    ferry::ArgParser("ferry-pulld", "pulls the nodes' spools into the master's store (org.ferry.Pull1)")
        .daemonOptions(args)
        .flag("--no-round", "do not start a pull round at start-up", [&] { roundAtStart = false; })
        .parse(argc, argv);
    ferry::initLogging("ferry-pulld", args.verbosity);
    const ferry::Paths paths = ferry::pathsFromEnvironment();
    const pulld::PulldConfig config = pulld::loadPulldConfig(paths);
    if (ferry::ensureKeyPair(config.keyFile))
        spdlog::info("Created the pull key {}: ship {}.pub in the node package", config.keyFile, config.keyFile);

    pulld::SshNodeConnector connector(config);
    pulld::Puller puller(ferry::masterStorePath(paths.stateDir), config, connector);

    auto bus = ferry::openBus();
    ferry::EventLoop loop(*bus, args.idleTimeout);
    pulld::PullAdaptor api(*bus, loop, puller);
    ferry::LogControl logControl(*bus, loop, "ferry-pulld");

    // The timer's round: nodes pulled less than min_interval ago (by an
    // earlier round or PullNow) are skipped, so an activation for a status
    // query between two timer ticks pulls nothing.
    std::thread round;
    bool roundRunning = false;  // touched on the loop thread only
    auto startRound = [&] {
        if (roundRunning)
            return;
        if (round.joinable())
            round.join();  // the last round has posted its end: it is finishing
        roundRunning = true;
        loop.hold();
        round = std::thread([&] {
            try {
                puller.pullRound(false);
            } catch (const std::exception& e) {
                spdlog::error("Failed to run a pull round: {}", e.what());
            }
            loop.post([&] {
                roundRunning = false;
                loop.release();
                ferry::notifyStatus("Idle; last round " + ferry::formatTime(puller.lastRoundMs()));
            });
        });
    };
    if (roundAtStart) {
        startRound();
        // The timer cannot start a unit that is already running: an instance
        // kept alive by bus traffic checks for due nodes itself, once a minute.
        loop.every(std::chrono::minutes(1), startRound);
    }
    ferry::notifyReady(roundAtStart ? "Pulling the nodes that are due" : "Waiting for requests");
    loop.run("org.ferry.Pull1");
    if (round.joinable())
        round.join();
    return EXIT_SUCCESS;
} catch (const std::exception& e) {
    ferry::logFatal(e);
    return EXIT_FAILURE;
}
