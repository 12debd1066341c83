// ferryctl secret: print what the master operator gives `ferryctl master
// add-node NAME`: the node's key for that master ("k1:<master id>:<key>",
// derived from the node secret, Crypto.h), so that no master holds the
// secret itself. Root only: the key is what proves the node to that master.

#include <unistd.h>

#include <algorithm>
#include <iostream>
#include <vector>

#include <nlohmann/json.hpp>

#include "Commands.h"
#include "ferry/Crypto.h"
#include "ferry/NodeConfig.h"

namespace ferryctl {

int secretCommand(const Options& options)
{
    std::string masterId;
    const auto& args = options.args;
    if (args.size() == 2 && args[0] == "--master")
        masterId = args[1];
    else if (args.size() == 1 && args[0].rfind("--master=", 0) == 0)
        masterId = args[0].substr(9);
    else if (!args.empty()) {
        std::cerr << "usage: ferryctl secret [--master ID]\n";
        return 2;
    }
    if (!masterId.empty() && !ferry::isValidMasterId(masterId)) {
        std::cerr << "ferryctl secret: a master id is 1-255 printable characters without spaces\n";
        return 2;
    }
    if (::geteuid() != 0) {
        std::cerr << "ferryctl secret: only root may read the node secret\n";
        return 1;
    }
    const auto paths = ferry::pathsFromEnvironment();
    const std::string secret = ferry::loadSecret(paths.secretFile());
    const ferry::NodeConfig config = ferry::loadNodeConfig(paths);
    std::vector<std::string> ids;
    if (!masterId.empty())
        ids.push_back(masterId);
    else
        for (const auto& m : config.masters)
            if (std::find(ids.begin(), ids.end(), ferry::masterIdOf(m)) == ids.end())
                ids.push_back(ferry::masterIdOf(m));
    if (options.json) {
        nlohmann::json keys = nlohmann::json::object();
        for (const auto& id : ids)
            keys[id] = ferry::formatNodeCredential(id, ferry::deriveMasterKey(secret, id));
        nlohmann::json out{{"node", config.nodeName}, {"keys", keys}, {"file", paths.secretFile()}};
        if (ids.empty())
            out["secret"] = secret;
        std::cout << out.dump(2) << "\n";
        return 0;
    }
    if (ids.empty()) {
        // No master known: the secret itself, which a master replaces with
        // the key for its id at the node's first registration.
        std::cout << secret << "\n";
        std::cerr << "No masters in " << paths.configFile() << ": this is the node secret itself. Prefer "
                  << "`ferryctl secret --master ID` (ID as the node knows the master), so that no master holds it.\n";
        return 0;
    }
    for (const auto& id : ids)
        std::cout << ferry::formatNodeCredential(id, ferry::deriveMasterKey(secret, id)) << "\n";
    if (::isatty(STDOUT_FILENO))
        std::cerr << "On each master: echo <its line> | ferryctl master add-node " << config.nodeName << "\n";
    return 0;
}

} // namespace ferryctl
