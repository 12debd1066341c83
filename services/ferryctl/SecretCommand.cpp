// ferryctl secret: print this node's secret, for the master operator's
// `ferryctl master add-node NAME`. Root only: the secret is what proves the
// node to the master.

#include <unistd.h>

#include <iostream>

#include <nlohmann/json.hpp>

#include "Commands.h"
#include "ferry/Crypto.h"
#include "ferry/NodeConfig.h"

namespace ferryctl {

int secretCommand(const Options& options)
{
    if (!options.args.empty()) {
        std::cerr << "usage: ferryctl secret\n";
        return 2;
    }
    if (::geteuid() != 0) {
        std::cerr << "ferryctl secret: only root may read the node secret\n";
        return 1;
    }
    const auto paths = ferry::pathsFromEnvironment();
    const std::string secret = ferry::loadSecret(paths.secretFile());
    const std::string node = ferry::loadNodeConfig(paths).nodeName;
    if (options.json) {
        std::cout << nlohmann::json{{"node", node}, {"secret", secret}, {"file", paths.secretFile()}}.dump(2) << "\n";
        return 0;
    }
    std::cout << secret << "\n";
    if (::isatty(STDOUT_FILENO))
        std::cerr << "On the master: echo <this secret> | ferryctl master add-node " << node << "\n";
    return 0;
}

} // namespace ferryctl
