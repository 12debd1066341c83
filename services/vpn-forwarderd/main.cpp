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
#include "ferry/Error.h"
#include "ferry/Log.h"
#include "ferry/NodeConfig.h"

namespace {

struct Args {
    int verbosity = 0;
    std::string configFile;  // empty: <config dir>/vpn-forwarder.yml
    bool checkConfig = false;
};

void usage(std::ostream& out)
{
    out << "Usage: ferry-vpn-forwarderd [-v|-vv] [--config FILE] [--check-config]\n"
           "Forwards TCP ports from the VPN address to the forensic container (org.ferry.VpnForwarder1).\n"
           "  --config FILE    configuration file (default: $FERRY_CONFIG_DIR or /etc/ferry, vpn-forwarder.yml)\n"
           "  --check-config   validate the configuration and exit\n";
}

Args parseArgs(int argc, char* argv[])
{
    Args args;
    for (int i = 1; i < argc; ++i) {
        const std::string_view a = argv[i];
        if (a == "-v")
            args.verbosity = 1;
        else if (a == "-vv")
            args.verbosity = 2;
        else if (a == "--check-config")
            args.checkConfig = true;
        else if (a == "--config" && i + 1 < argc)
            args.configFile = argv[++i];
        else if (a == "-h" || a == "--help") {
            usage(std::cout);
            std::exit(EXIT_SUCCESS);
        } else {
            usage(std::cerr);
            std::exit(2);
        }
    }
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
