// ferry-vpn-forwarderd: forwards TCP ports from the VPN address to the
// forensic container and follows the VPN link as it comes and goes. Unlike
// Ferry's other daemons it stays resident: it must see every rtnetlink
// event while the VPN is configured.

#include <atomic>
#include <cstdlib>
#include <iostream>
#include <string>
#include <string_view>

#include "ForwarderConfig.h"
#include "Manager.h"
#include "NftFirewall.h"
#include "RtNetlink.h"
#include "ToggleStore.h"
#include "VpnForwarderAdaptor.h"
#include "ferry/Bus.h"
#include "ferry/DaemonArgs.h"
#include "ferry/Error.h"
#include "ferry/Log.h"
#include "ferry/Paths.h"

namespace {

struct Args {
    int verbosity = 0;
    std::string configFile;  // empty: <config dir>/vpn-forwarder.yml
    bool checkConfig = false;
};

Args parseArgs(int argc, char* argv[])
{
    Args args;
    ferry::ArgParser("ferry-vpn-forwarderd",
                     "forwards TCP ports from the VPN address to the forensic container (org.ferry.VpnForwarder1)")
        .flag("-v|--verbose", "more logging (twice: trace)", [&args] { ++args.verbosity; })
        .flag("-vv", "trace logging", [&args] { args.verbosity = 2; })
        .option("--config", "FILE", "configuration file (default: $FERRY_CONFIG_DIR or /etc/ferry, vpn-forwarder.yml)",
                [&args](const std::string& v) { args.configFile = v; })
        .flag("--check-config", "validate the configuration and exit", [&args] { args.checkConfig = true; })
        .parse(argc, argv);
    return args;
}

} // namespace

int main(int argc, char* argv[]) try {
    const Args args = parseArgs(argc, argv);
    ferry::initLogging("ferry-vpn-forwarderd", args.verbosity);
    const ferry::Paths paths = ferry::pathsFromEnvironment();
    const std::string configFile = args.configFile.empty() ? paths.configDir + "/vpn-forwarder.yml" : args.configFile;
    const vpnfwd::ForwarderConfig config = vpnfwd::loadForwarderConfig(configFile);
    if (args.checkConfig) {
        std::cout << configFile << ": OK\n";
        return EXIT_SUCCESS;
    }

    vpnfwd::RtNetlink network;
    vpnfwd::NftFirewall firewall;
    vpnfwd::ToggleStore toggles(paths.stateDir + "/vpn-forwarder.state");
    vpnfwd::Manager manager(config, network, firewall, toggles);

    auto bus = ferry::openBus();
    // No idle timeout: this daemon must see every link event while the VPN
    // is configured (the one exception to "exit when idle").
    ferry::EventLoop loop(*bus, std::chrono::milliseconds(0));
    vpnfwd::VpnForwarderAdaptor api(*bus, loop, manager);
    ferry::LogControl logControl(*bus, loop, "ferry-vpn-forwarderd");
    manager.onChanged([&](const std::vector<std::string>& changed) {
        api.emitChanged(changed);
        ferry::notifyStatus(manager.statusLine());
    });

    // Events arrive on the watcher's thread; the work is done on the loop's.
    // A burst of events while a refresh is pending costs one refresh.
    std::atomic<bool> pending{false};
    network.watch([&] {
        if (!pending.exchange(true))
            loop.post([&] {
                pending = false;
                manager.refresh();
            });
    });
    manager.start();

    ferry::notifyReady(manager.statusLine());
    loop.run(vpnfwd::kBusName);
    network.stopWatching();
    manager.shutdown();
    return EXIT_SUCCESS;
} catch (const std::exception& e) {
    ferry::logFatal(e);
    return EXIT_FAILURE;
}
