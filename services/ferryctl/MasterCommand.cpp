// ferryctl master …: the master operator's commands.
//   ferryctl master nodes                          nodes, their registration and what they sent
//   ferryctl master add-node NAME                  enrol NAME; its secret is read from stdin
//   ferryctl master accept NAME [--with-secret]    let NAME's key log in (secret from stdin if asked)
//   ferryctl master decline NAME [REASON…]         refuse NAME; it is told the reason
//   ferryctl master revoke NAME [REASON…]          NAME's key stops logging in at its next connection
//
// Changes go through registryd (org.ferry.Registry1, bus-activated). When
// there is no bus or no registryd on it (a master set up without the bus
// policy, or a test), they are written to master.db directly: the registry
// has one set of rules either way (ferry::RegistryStore).

#include <sys/stat.h>
#include <unistd.h>

#include <cstdio>
#include <iostream>
#include <iterator>

#include <nlohmann/json.hpp>
#include <sdbus-c++/sdbus-c++.h>

#include "Commands.h"
#include "ferry/Bus.h"
#include "ferry/MasterStore.h"
#include "ferry/NodeConfig.h"
#include "ferry/RegistryStore.h"
#include "ferry/SshSession.h"
#include "org.ferry.Registry1-proxy.h"

namespace ferryctl {

namespace {

class RegistryProxy final : public sdbus::ProxyInterfaces<org::ferry::Registry1_proxy> {
public:
    explicit RegistryProxy(sdbus::IConnection& bus)
        : ProxyInterfaces(bus, "org.ferry.Registry1", "/org/ferry/Registry1")
    {
        registerProxy();
    }
    ~RegistryProxy() { unregisterProxy(); }

private:
    void onNodeChanged(const std::string&, const std::string&) override {}
};

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

std::string readSecret(const std::string& command)
{
    std::string secret(std::istreambuf_iterator<char>(std::cin), {});
    while (!secret.empty() && (secret.back() == '\n' || secret.back() == '\r' || secret.back() == ' '))
        secret.pop_back();
    if (secret.size() < 32 || secret.size() > 128 ||
        secret.find_first_not_of("0123456789abcdefABCDEF") != std::string::npos)
        throw std::runtime_error("the secret on stdin must be 32 to 128 hex characters (the node's "
                                 "/var/lib/ferry/secret, shown by `ferryctl secret` on the node); " +
                                 command + " not done");
    return secret;
}

std::string joinReason(const std::vector<std::string>& args)
{
    std::string out;
    for (std::size_t i = 2; i < args.size(); ++i)
        out += (out.empty() ? "" : " ") + args[i];
    return out;
}

bool busUnavailable(const sdbus::Error& e)
{
    const auto& n = e.getName();
    return n == "org.freedesktop.DBus.Error.ServiceUnknown" || n == "org.freedesktop.DBus.Error.NameHasNoOwner" ||
           n == "org.freedesktop.DBus.Error.FileNotFound" || n == "org.freedesktop.DBus.Error.NoServer" ||
           n == "org.freedesktop.DBus.Error.Spawn.ChildExited" || n.rfind("System.Error.", 0) == 0;
}

// Runs the change over the bus, or on the store when registryd is not on a bus.
int change(const ferry::Paths& paths, const std::string& what,
           const std::function<void(RegistryProxy&)>& overBus,
           const std::function<void(ferry::RegistryStore&)>& onStore)
{
    try {
        auto bus = sdbus::createSystemBusConnection();
        RegistryProxy registry(*bus);
        overBus(registry);
        return 0;
    } catch (const sdbus::Error& e) {
        if (!busUnavailable(e)) {
            std::cerr << "ferryctl master: " << e.getMessage() << " (" << e.getName() << ")\n";
            return 1;
        }
        std::cerr << "ferryctl master: registryd is not reachable on the system bus (" << e.getName()
                  << "); " << what << " in " << ferry::masterStorePath(paths.stateDir) << " directly\n";
    }
    const std::string db = ferry::masterStorePath(paths.stateDir);
    {
        ferry::RegistryStore store(db);
        onStore(store);
    }
    matchOwnership(paths.stateDir, db);
    return 0;
}

int nodes(const Options& options, const ferry::Paths& paths)
{
    const std::string db = ferry::masterStorePath(paths.stateDir);
    std::vector<ferry::RegistryNode> registry;
    std::vector<ferry::NodeInfo> traffic;
    {
        ferry::RegistryStore store(db);
        registry = store.nodes();
        ferry::MasterStore master(db);
        traffic = master.nodes();
    }
    matchOwnership(paths.stateDir, db);
    auto trafficOf = [&](const std::string& name) {
        for (const auto& t : traffic)
            if (t.name == name)
                return t;
        return ferry::NodeInfo{};
    };
    auto fingerprint = [](const std::string& key) -> std::string {
        if (key.empty())
            return "";
        try {
            return ferry::fingerprintOf(key);
        } catch (const std::exception&) {
            return "(unparsable key)";
        }
    };
    if (options.json) {
        nlohmann::json j = nlohmann::json::array();
        for (const auto& n : registry) {
            const auto t = trafficOf(n.name);
            j.push_back({{"name", n.name}, {"state", n.state}, {"reason", n.reason}, {"mode", n.mode},
                         {"fingerprint", fingerprint(n.publicKey)}, {"public_key", n.publicKey},
                         {"has_secret", n.hasSecret}, {"ssh_host", n.sshHost}, {"ssh_port", t.sshPort},
                         {"first_seen_ms", n.firstSeenMs},
                         {"last_seen_ms", n.lastSeenMs}, {"last_push_ms", t.lastPushMs}, {"last_pull_ms", t.lastPullMs},
                         {"records_stored", t.recordsStored}, {"last_seq", t.lastSeq}});
        }
        std::cout << j.dump(2) << "\n";
        return 0;
    }
    std::printf("%-24s %-9s %-5s %-22s %-51s %-20s %-20s %10s  %s\n", "NODE", "STATE", "MODE", "SSH", "KEY",
                "LAST SEEN", "LAST PUSH", "RECORDS", "REASON");
    for (const auto& n : registry) {
        const auto t = trafficOf(n.name);
        std::string key = fingerprint(n.publicKey);
        if (key.empty())
            key = "(no key yet)";
        std::string ssh = "-";
        if (!n.sshHost.empty())
            ssh = (n.sshHost.find(':') != std::string::npos ? "[" + n.sshHost + "]" : n.sshHost) + ":" +
                  std::to_string(t.sshPort);
        std::printf("%-24s %-9s %-5s %-22s %-51s %-20s %-20s %10llu  %s\n", n.name.c_str(), n.state.c_str(),
                    n.mode.c_str(), ssh.c_str(), key.c_str(), ferry::formatTime(n.lastSeenMs).c_str(),
                    ferry::formatTime(t.lastPushMs).c_str(), static_cast<unsigned long long>(t.recordsStored),
                    n.reason.c_str());
    }
    return 0;
}

int usage()
{
    std::cerr << "usage: ferryctl master nodes\n"
                 "       ferryctl master show NODE\n"
                 "       ferryctl master add-node NAME            (the node's secret on stdin)\n"
                 "       ferryctl master accept NAME [--with-secret]  (secret on stdin with --with-secret)\n"
                 "       ferryctl master decline NAME [REASON…]\n"
                 "       ferryctl master revoke NAME [REASON…]\n";
    return 2;
}

} // namespace

int masterCommand(const Options& options)
{
    if (options.args.empty())
        return usage();
    const auto paths = ferry::pathsFromEnvironment();
    const std::string& sub = options.args[0];
    if (sub == "nodes")
        return options.args.size() == 1 ? nodes(options, paths) : usage();
    if (options.args.size() < 2)
        return usage();
    const std::string name = options.args[1];
    if (sub == "show") {
        if (options.args.size() != 2)
            return usage();
        const int rc = masterShowCommand(options, name);
        matchOwnership(paths.stateDir, ferry::masterStorePath(paths.stateDir));
        return rc;
    }

    if (sub == "add-node") {
        if (options.args.size() != 2)
            return usage();
        const std::string secret = readSecret("add-node");
        const int rc = change(
            paths, "enrolling " + name, [&](RegistryProxy& r) { r.AddNode(name, secret); },
            [&](ferry::RegistryStore& s) { s.addNode(name, secret); });
        if (rc == 0)
            std::cout << "Enrolled node '" << name << "'\n";
        return rc;
    }
    if (sub == "accept") {
        if (options.args.size() > 3 || (options.args.size() == 3 && options.args[2] != "--with-secret"))
            return usage();
        const std::string secret = options.args.size() == 3 ? readSecret("accept") : "";
        const int rc = change(
            paths, "accepting " + name, [&](RegistryProxy& r) { r.Accept(name, secret); },
            [&](ferry::RegistryStore& s) { s.accept(name, secret); });
        if (rc == 0)
            std::cout << "Accepted node '" << name << "'\n";
        return rc;
    }
    if (sub == "decline" || sub == "revoke") {
        const std::string reason = joinReason(options.args);
        const bool decline = sub == "decline";
        const int rc = change(
            paths, (decline ? "declining " : "revoking ") + name,
            [&](RegistryProxy& r) { decline ? r.Decline(name, reason) : r.Revoke(name, reason); },
            [&](ferry::RegistryStore& s) { decline ? s.decline(name, reason) : s.revoke(name, reason); });
        if (rc == 0)
            std::cout << (decline ? "Declined" : "Revoked") << " node '" << name << "'\n";
        return rc;
    }
    std::cerr << "ferryctl master: unknown subcommand '" << sub << "'\n";
    return usage();
}

} // namespace ferryctl
