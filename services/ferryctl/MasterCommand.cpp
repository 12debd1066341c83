// ferryctl master …: the master operator's commands over the master store.
//   ferryctl master nodes            list enrolled nodes and what they sent
//   ferryctl master add-node NAME    enrol NAME; its secret is read from stdin

#include <sys/stat.h>
#include <unistd.h>

#include <iostream>
#include <iterator>

#include <nlohmann/json.hpp>

#include "Commands.h"
#include "ferry/Bus.h"
#include "ferry/Crypto.h"
#include "ferry/MasterStore.h"
#include "ferry/NodeConfig.h"

namespace ferryctl {

namespace {

// The daemons run as the owner of the state directory; a store created here
// by root must stay theirs.
void matchOwnership(const std::string& stateDir, const std::string& dbPath)
{
    struct stat st{};
    if (::geteuid() != 0 || ::stat(stateDir.c_str(), &st) != 0)
        return;
    for (const char* suffix : {"", "-wal", "-shm"}) {
        const std::string p = dbPath + suffix;
        if (::access(p.c_str(), F_OK) == 0 && ::chown(p.c_str(), st.st_uid, st.st_gid) != 0)
            std::cerr << "warning: cannot chown " << p << "\n";
    }
}

int nodes(const Options& options, ferry::MasterStore& store)
{
    const auto list = store.nodes();
    if (options.json) {
        nlohmann::json j = nlohmann::json::array();
        for (const auto& n : list)
            j.push_back({{"name", n.name}, {"state", n.state}, {"mode", n.mode}, {"last_push_ms", n.lastPushMs},
                         {"last_pull_ms", n.lastPullMs}, {"records_stored", n.recordsStored}, {"last_seq", n.lastSeq}});
        std::cout << j.dump(2) << "\n";
        return 0;
    }
    std::printf("%-24s %-9s %-20s %-20s %10s\n", "NODE", "STATE", "LAST PUSH", "LAST PULL", "RECORDS");
    for (const auto& n : list)
        std::printf("%-24s %-9s %-20s %-20s %10llu\n", n.name.c_str(), n.state.c_str(),
                    ferry::formatTime(n.lastPushMs).c_str(), ferry::formatTime(n.lastPullMs).c_str(),
                    static_cast<unsigned long long>(n.recordsStored));
    return 0;
}

int addNode(const Options& options, ferry::MasterStore& store, const ferry::Paths& paths)
{
    if (options.args.size() != 2) {
        std::cerr << "usage: ferryctl master add-node NAME  (the node's secret on stdin)\n";
        return 2;
    }
    const std::string& name = options.args[1];
    std::string secret(std::istreambuf_iterator<char>(std::cin), {});
    while (!secret.empty() && (secret.back() == '\n' || secret.back() == '\r' || secret.back() == ' '))
        secret.pop_back();
    if (secret.size() < 32 || secret.size() > 128 || secret.find_first_not_of("0123456789abcdefABCDEF") != std::string::npos) {
        std::cerr << "ferryctl master add-node: the secret on stdin must be 32 to 128 hex characters "
                     "(the node's /var/lib/ferry/secret, shown by `ferryctl secret` on the node)\n";
        return 2;
    }
    store.addNode(name, secret);
    matchOwnership(paths.stateDir, ferry::masterStorePath(paths.stateDir));
    std::cout << "Enrolled node '" << name << "'\n";
    return 0;
}

} // namespace

int masterCommand(const Options& options)
{
    if (options.args.empty()) {
        std::cerr << "usage: ferryctl master nodes | add-node NAME\n";
        return 2;
    }
    const auto paths = ferry::pathsFromEnvironment();
    ferry::MasterStore store(ferry::masterStorePath(paths.stateDir));
    matchOwnership(paths.stateDir, ferry::masterStorePath(paths.stateDir));
    const std::string& sub = options.args[0];
    if (sub == "nodes")
        return nodes(options, store);
    if (sub == "add-node")
        return addNode(options, store, paths);
    std::cerr << "ferryctl master: unknown subcommand '" << sub << "'\n";
    return 2;
}

} // namespace ferryctl
