// ferry-fwcheckd: answers "can the master reach my sshd?" on the bus as
// org.ferry.FwCheck1. Started by its timer (also 5 minutes after boot) or
// its path unit (sshd_config, hosts.allow/deny, and the request file pushd
// writes when pulls stop coming), it checks once at start;
// started by D-Bus activation (anyone reading a property) it starts
// passive and answers from the saved result: only root's Check() makes it
// list the firewall then. Exits when idle. `--check` runs one check and
// prints it as JSON, without a bus.

#include <chrono>
#include <cstdlib>
#include <iostream>
#include <optional>
#include <string>

#include "Capabilities.h"
#include "Checker.h"
#include "FwCheckAdaptor.h"
#include "HostReader.h"
#include "Manager.h"
#include "ferry/Bus.h"
#include "ferry/DaemonArgs.h"
#include "ferry/Error.h"
#include "ferry/FileWatch.h"
#include "ferry/Log.h"
#include "ferry/NodeConfig.h"

#include <spdlog/spdlog.h>

namespace {

struct Args {
    int verbosity = 0;
    bool checkOnly = false;
    std::optional<bool> initialCheck;  // unset: decided by how we were started
    int idleSeconds = 30;
    std::string pullUser = "ferry";
    std::string pullShell = "/usr/sbin/ferry-login";
    std::string sshdConfig;
    std::string hostsAllow = "/etc/hosts.allow";
    std::string hostsDeny = "/etc/hosts.deny";
};

Args parseArgs(int argc, char* argv[])
{
    Args a;
    auto text = [](std::string& field) { return [&field](const std::string& v) { field = v; }; };
    ferry::ArgParser("ferry-fwcheckd", "tells whether the master can reach this node's sshd (org.ferry.FwCheck1)")
        .flag("-v|--verbose", "more logging (twice: trace)", [&a] { ++a.verbosity; })
        .flag("--check", "run one check, print it as JSON and exit (no bus)", [&a] { a.checkOnly = true; })
        .flag("--initial-check", "check at start-up (default: only when a timer or path unit started it)",
              [&a] { a.initialCheck = true; })
        .flag("--no-initial-check", "do not check at start-up", [&a] { a.initialCheck = false; })
        .option("--idle-timeout", "SECONDS", "exit after this long without work (0: never; default 30)",
                [&a](const std::string& v) {
                    a.idleSeconds = static_cast<int>(ferry::parseNumberArg("--idle-timeout", v, 0, 86400));
                })
        .option("--pull-user", "NAME", "the user the master logs in as (default ferry)", text(a.pullUser))
        .option("--pull-shell", "PATH", "that user's login shell (default /usr/sbin/ferry-login)", text(a.pullShell))
        .option("--sshd-config", "PATH", "sshd's configuration (default /etc/ssh/sshd_config)", text(a.sshdConfig))
        .option("--hosts-allow", "PATH", "hosts_access allow file (default /etc/hosts.allow)", text(a.hostsAllow))
        .option("--hosts-deny", "PATH", "hosts_access deny file (default /etc/hosts.deny)", text(a.hostsDeny))
        .parse(argc, argv);
    return a;
}

// systemd sets TRIGGER_UNIT for a service its timer or path unit started
// (systemd.exec(5), "best-effort"); bus activation and a plain start leave
// it unset.
bool startedByTrigger()
{
    const char* unit = std::getenv("TRIGGER_UNIT");
    return unit != nullptr && *unit != '\0';
}

} // namespace

int main(int argc, char* argv[]) try {
    const Args args = parseArgs(argc, argv);
    ferry::initLogging("ferry-fwcheckd", args.verbosity);
    // Only the nftables reading in this process needs a capability; the
    // others are handed to the listing tools that need them (Capabilities.h).
    fwcheck::keepEffectiveCapabilities({CAP_NET_ADMIN});
    const ferry::Paths paths = ferry::pathsFromEnvironment();
    const ferry::NodeConfig config = ferry::loadNodeConfig(paths);

    fwcheck::CheckSettings settings = fwcheck::CheckSettings::fromNodeConfig(config);
    settings.pullUser = args.pullUser;
    settings.pullShell = args.pullShell;
    settings.hostsAllow = args.hostsAllow;
    settings.hostsDeny = args.hostsDeny;
    fwcheck::HostReaderOptions readerOptions;
    if (!args.sshdConfig.empty()) {
        readerOptions.sshdConfig = args.sshdConfig;
        settings.sshdConfigPath = args.sshdConfig;
    }
    fwcheck::HostReader reader(readerOptions);
    fwcheck::Checker checker(reader, settings);
    fwcheck::Manager manager(checker, paths.fwcheckResultFile());

    if (args.checkOnly) {
        const auto report = manager.check();
        std::cout << fwcheck::toJson(report).dump(2) << "\n";
        return report.verdict == "reachable" ? EXIT_SUCCESS : EXIT_FAILURE;
    }

    manager.loadSaved();
    auto bus = ferry::openBus();
    ferry::EventLoop loop(*bus, std::chrono::seconds(args.idleSeconds));
    fwcheck::FwCheckAdaptor api(*bus, loop, manager);
    ferry::LogControl logControl(*bus, loop, "ferry-fwcheckd");
    const std::string sshdConfig = args.sshdConfig.empty() ? "/etc/ssh/sshd_config" : args.sshdConfig;
    // Re-check while running when a checked file changes: the path units
    // start the daemon when it is not running, but a start request for a
    // running service is a no-op.
    ferry::FileWatch watch({sshdConfig, sshdConfig + ".d/", args.hostsAllow, args.hostsDeny});
    loop.watch(watch.fd(), [&] {
        if (watch.changed())
            api.recheckAfterChange();
    });
    // pushd asks for a fresh check through this file when pulls stop coming
    // (only root and ferry can write the state directory). ferry-fwcheckd.path
    // starts us for it; while we run, a start request would be a no-op.
    ferry::FileWatch requests({paths.fwcheckRequestFile()});
    loop.watch(requests.fd(), [&] {
        if (requests.changed())
            api.checkOnRequest();
    });
    if (args.initialCheck.value_or(startedByTrigger()))
        api.checkInBackground();
    else
        spdlog::debug("Started without a timer or path trigger: passive until asked to check");
    ferry::notifyReady("Last verdict: " + manager.current().verdict);
    loop.run("org.ferry.FwCheck1");
    ferry::notifyStopping();
    return EXIT_SUCCESS;
} catch (const std::exception& e) {
    ferry::logFatal(e);
    return EXIT_FAILURE;
}
