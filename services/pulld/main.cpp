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
#include "ferry/Log.h"
#include "ferry/MasterStore.h"
#include "ferry/SshSession.h"

namespace {

struct Args {
    int verbosity = 0;
    bool round = true;
    std::chrono::milliseconds idle{30000};
};

Args parseArgs(int argc, char* argv[])
{
    Args a;
    for (int i = 1; i < argc; ++i) {
        const std::string s = argv[i];
        if (s == "-v" || s == "--verbose") {
            ++a.verbosity;
        } else if (s == "--no-round") {
            a.round = false;
        } else if (s.rfind("--idle-timeout=", 0) == 0) {
            a.idle = std::chrono::milliseconds(std::atoll(s.c_str() + 15) * 1000);
        } else {
            throw ferry::Error("Unknown argument '" + s +
                               "' (usage: ferry-pulld [-v] [--no-round] [--idle-timeout=SECONDS])");
        }
    }
    return a;
}

} // namespace

int main(int argc, char* argv[]) try {
    const Args args = parseArgs(argc, argv);
    ferry::initLogging("ferry-pulld", args.verbosity);
    const ferry::Paths paths = ferry::pathsFromEnvironment();
    const pulld::PulldConfig config = pulld::loadPulldConfig(paths);
    if (ferry::ensureKeyPair(config.keyFile))
        spdlog::info("Created the pull key {}: ship {}.pub in the node package", config.keyFile, config.keyFile);

    pulld::SshNodeConnector connector(config);
    pulld::Puller puller(ferry::masterStorePath(paths.stateDir), config, connector);

    auto bus = ferry::openBus();
    ferry::EventLoop loop(*bus, args.idle);
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
    if (args.round) {
        startRound();
        // The timer cannot start a unit that is already running: an instance
        // kept alive by bus traffic checks for due nodes itself, once a minute.
        loop.every(std::chrono::minutes(1), startRound);
    }
    ferry::notifyReady(args.round ? "Pulling the nodes that are due" : "Waiting for requests");
    loop.run("org.ferry.Pull1");
    if (round.joinable())
        round.join();
    return EXIT_SUCCESS;
} catch (const std::exception& e) {
    ferry::logFatal(e);
    return EXIT_FAILURE;
}
