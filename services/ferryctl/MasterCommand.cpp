// ferryctl master …: the master operator's commands.
//   ferryctl master nodes                          nodes, their registration and what they sent
//   ferryctl master add-node NAME                  enrol NAME; its secret is read from stdin
//   ferryctl master accept NAME [--with-secret]    let NAME's key log in (secret from stdin if asked)
//   ferryctl master decline NAME [REASON…]         refuse NAME; it is told the reason
//   ferryctl master revoke NAME [REASON…]          NAME's key stops logging in at its next connection
//   ferryctl master accept-hostkey NAME            pin NAME's changed sshd host keys for pulls
//   ferryctl master pull NODE | --all              pull now, through ferry-pulld (MasterPullCommand.cpp)
//   ferryctl master set-policy NAME [--min-push-period S|default] [--min-pull-interval S|default]
//
// Changes go through registryd (org.ferry.Registry1, bus-activated). When
// there is no bus or no registryd on it (a master set up without the bus
// policy, or a test), they are written to the store directly: the registry
// has one set of rules either way (ferry::RegistryStore). The store is the
// PostgreSQL database store.yml names, or master.db (openMasterTables).

#include <grp.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include <cstdio>
#include <iostream>
#include <iterator>
#include <vector>

#include <nlohmann/json.hpp>
#include <sdbus-c++/sdbus-c++.h>

#include "Commands.h"
#include "TerminalText.h"
#include "ferry/AuthorizedKeysView.h"
#include "ferry/Bus.h"
#include "ferry/Crypto.h"
#include "ferry/MasterQueries.h"
#include "ferry/Paths.h"
#include "ferry/RegistryProtocol.h"
#include "ferry/RegistryStore.h"
#include "ferry/StoreConfig.h"
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

// The daemons run as the owner of the state directory, and that owner can
// put anything in it: a symlink named master.db-wal or -shm would make root
// write through it, and a chown by path would hand its target to that user.
// So root never touches the store: it becomes the directory's owner first,
// and whatever it creates is the daemons' without any chown. It keeps the
// ferry-keys group (node-keys.db) and drops every other.
void becomeStateOwner(const std::string& stateDir)
{
    if (::geteuid() != 0)
        return;
    struct stat st{};
    if (::lstat(stateDir.c_str(), &st) != 0)
        throw std::runtime_error("cannot use the state directory " + stateDir + ": " + std::strerror(errno));
    if (!S_ISDIR(st.st_mode))
        throw std::runtime_error("cannot use the state directory " + stateDir + ": not a directory (a symlink?)");
    if (st.st_uid == 0)
        return;
    // The node keys' group, as the daemons that need them have it
    // (MasterStore::attachNodeKeys); no other group of root's.
    std::vector<gid_t> groups;
    if (const group* keys = ::getgrnam("ferry-keys"); keys != nullptr)
        groups.push_back(keys->gr_gid);
    if (::setgroups(groups.size(), groups.data()) != 0 || ::setresgid(st.st_gid, st.st_gid, st.st_gid) != 0 ||
        ::setresuid(st.st_uid, st.st_uid, st.st_uid) != 0)
        throw std::runtime_error("cannot become the owner of " + stateDir + " (uid " + std::to_string(st.st_uid) +
                                 "): " + std::strerror(errno));
}

} // namespace

std::unique_ptr<ferry::SqlConnection> openMasterTables(const ferry::Paths& paths, std::string* where)
{
    // store.yml is read as the caller (root can read it), the database
    // opened as the state directory's owner (whose passfile libpq reads).
    const auto opener = ferry::MasterStoreOpener::fromPaths(paths);
    if (where != nullptr)
        *where = opener.describe();
    becomeStateOwner(paths.stateDir);
    return opener.tables();
}

namespace {

std::string readSecret(const std::string& command)
{
    std::string secret(std::istreambuf_iterator<char>(std::cin), {});
    while (!secret.empty() && (secret.back() == '\n' || secret.back() == '\r' || secret.back() == ' '))
        secret.pop_back();
    try {
        if (ferry::parseNodeCredential(secret).legacy)
            std::cerr << "Note: this is the node secret itself; the master keeps it only until the node's next "
                         "registration, then only the key for the master id the node uses. `ferryctl secret "
                         "--master ID` on the node gives that key directly.\n";
    } catch (const std::exception& e) {
        throw std::runtime_error(std::string(e.what()) + " on stdin; " + command + " not done");
    }
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
        std::cerr << "ferryctl master: registryd is not reachable on the system bus (" << e.getName() << "); " << what
                  << " in " << ferry::MasterStoreOpener::fromPaths(paths).describe() << " directly\n";
    }
    const auto opener = ferry::MasterStoreOpener::fromPaths(paths);
    ferry::RegistryStore store(openMasterTables(paths));
    // Without registryd, ferryctl keeps the helper's view itself.
    if (!opener.isPostgres())
        store.keepAuthorizedKeysView(ferry::authorizedKeysViewPath(opener.sqlitePath()));
    onStore(store);
    return 0;
}

int nodes(const Options& options, const ferry::Paths& paths)
{
    std::vector<ferry::RegistryNode> registry;
    std::vector<ferry::NodeInfo> traffic;
    {
        ferry::RegistryStore store(openMasterTables(paths));
        registry = store.nodes();
        traffic = ferry::MasterQueries(store.connection()).nodes();
    }
    auto trafficOf = [&](const std::string& name) {
        for (const auto& t : traffic)
            if (t.name == name)
                return t;
        return ferry::NodeInfo{};
    };
    // Fingerprints are computed by our own strict parser: this process
    // reads every node secret, and key text came from the network.
    auto fingerprint = [](const std::string& key) -> std::string {
        return key.empty() ? std::string() : ferry::keyFingerprintOrNote(key);
    };
    auto fingerprints = [](const std::vector<std::string>& keys) {
        std::string out;
        for (const auto& k : keys)
            out += (out.empty() ? "" : ", ") + ferry::keyFingerprintOrNote(k);
        return out;
    };
    auto optionalSeconds = [](const std::optional<std::uint32_t>& v) -> nlohmann::json {
        return v ? nlohmann::json(*v) : nlohmann::json(nullptr);
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
                         {"records_stored", t.recordsStored}, {"last_seq", t.lastSeq},
                         {"epoch", t.activeEpoch}, {"epochs", t.epochs}, {"suspect", t.suspect},
                         {"host_keys", n.hostKeys}, {"host_key_fingerprints", fingerprints(n.hostKeys)},
                         {"pending_host_keys", n.pendingHostKeys},
                         {"pending_host_key_fingerprints", fingerprints(n.pendingHostKeys)},
                         {"pending_host_keys_seen_ms", n.pendingHostKeysSeenMs},
                         {"min_push_period_s", optionalSeconds(n.minPushPeriodS)},
                         {"min_pull_interval_s", optionalSeconds(n.minPullIntervalS)}});
        }
        std::cout << j.dump(2) << "\n";
        return 0;
    }
    std::printf("%-24s %-9s %-5s %-22s %-51s %-60s %-20s %-20s %10s  %-8s %6s  %s\n", "NODE", "STATE", "MODE",
                "SSH", "KEY", "SSHD HOST KEY", "LAST SEEN", "LAST PUSH", "RECORDS", "EPOCH", "EPOCHS", "REASON");
    for (const auto& n : registry) {
        const auto t = trafficOf(n.name);
        std::string key = fingerprint(n.publicKey);
        if (key.empty())
            key = "(no key yet)";
        std::string ssh = "-";
        if (!n.sshHost.empty())
            ssh = (n.sshHost.find(':') != std::string::npos ? "[" + n.sshHost + "]" : n.sshHost) + ":" +
                  std::to_string(t.sshPort);
        // A suspect node shows it in place of its epoch: `ferryctl master
        // epochs NODE` lists them with their addresses.
        const std::string epoch = t.suspect ? "SUSPECT" : t.activeEpoch.empty() ? "-" : t.activeEpoch.substr(0, 8);
        std::string hostKey = n.hostKeys.empty() ? "(not pinned)" : ferry::keyFingerprintOrNote(n.hostKeys.front());
        if (n.hostKeys.size() > 1)
            hostKey += " (+" + std::to_string(n.hostKeys.size() - 1) + ")";
        if (!n.pendingHostKeys.empty())
            hostKey = "CHANGED, pulls refused: " + hostKey;
        std::printf("%-24s %-9s %-5s %-22s %-51s %-60s %-20s %-20s %10llu  %-8s %6llu  %s\n", n.name.c_str(),
                    n.state.c_str(), n.mode.c_str(), ssh.c_str(), key.c_str(), hostKey.c_str(),
                    ferry::formatTime(n.lastSeenMs).c_str(), ferry::formatTime(t.lastPushMs).c_str(),
                    static_cast<unsigned long long>(t.recordsStored), epoch.c_str(),
                    static_cast<unsigned long long>(t.epochs), terminalSafe(n.reason).c_str());
        if (!n.pendingHostKeys.empty())
            std::printf("  ! %s: sshd host key changed (at %s): pinned %s, now offered %s; if the change is "
                        "expected: ferryctl master accept-hostkey %s\n",
                        n.name.c_str(), ferry::formatTime(n.pendingHostKeysSeenMs).c_str(),
                        fingerprints(n.hostKeys).c_str(), fingerprints(n.pendingHostKeys).c_str(), n.name.c_str());
    }
    return 0;
}

// The spools a node has used: reinstalls, and for a suspect node the
// spools that speak for it at once, with the address each came from.
int epochs(const Options& options, const ferry::Paths& paths, const std::string& name)
{
    std::vector<ferry::EpochInfo> list;
    {
        const auto tables = openMasterTables(paths);
        list = ferry::MasterQueries(*tables).epochs(name);
    }
    if (options.json) {
        nlohmann::json j = nlohmann::json::array();
        for (const auto& e : list)
            j.push_back({{"epoch", e.epoch}, {"state", e.state}, {"from_address", e.fromAddress},
                         {"first_seen_ms", e.firstSeenMs}, {"last_seen_ms", e.lastSeenMs},
                         {"decided_ms", e.decidedMs}, {"records_stored", e.recordsStored}, {"last_seq", e.lastSeq}});
        std::cout << j.dump(2) << "\n";
        return 0;
    }
    if (list.empty()) {
        std::cerr << "ferryctl master epochs: node '" << name << "' has had no session yet\n";
        return 1;
    }
    std::printf("%-32s %-8s %-24s %-20s %-20s %10s %10s\n", "EPOCH", "STATE", "FROM", "FIRST SEEN", "LAST SEEN",
                "RECORDS", "LAST SEQ");
    for (const auto& e : list)
        std::printf("%-32s %-8s %-24s %-20s %-20s %10llu %10llu\n", e.epoch.c_str(), e.state.c_str(),
                    e.fromAddress.c_str(), ferry::formatTime(e.firstSeenMs).c_str(),
                    ferry::formatTime(e.lastSeenMs).c_str(), static_cast<unsigned long long>(e.recordsStored),
                    static_cast<unsigned long long>(e.lastSeq));
    return 0;
}

int resolve(const ferry::Paths& paths, const std::string& name, const std::string& keep)
{
    try {
        const auto tables = openMasterTables(paths);
        ferry::MasterQueries(*tables).resolveEpochs(name, keep);
    } catch (const std::exception& e) {
        std::cerr << "ferryctl master resolve: " << e.what() << "\n";
        return 1;
    }
    std::cout << "Node '" << name << "': kept epoch " << keep
              << "; the other epochs are retired and their data stays on their machines\n";
    return 0;
}

int usage()
{
    std::cerr
        << "usage: ferryctl master nodes\n"
           "       ferryctl master show NODE\n"
           "       ferryctl master add-node NAME            (the node's secret on stdin)\n"
           "       ferryctl master accept NAME [--with-secret]  (secret on stdin with --with-secret)\n"
           "       ferryctl master decline NAME [REASON…]\n"
           "       ferryctl master revoke NAME [REASON…]\n"
           "       ferryctl master epochs NAME              (the node's spools, and where they came from)\n"
           "       ferryctl master resolve NAME --keep EPOCH  (a suspect node: keep one spool)\n"
           "       ferryctl master migrate [--to CONNINFO]  (master.db → the PostgreSQL store)\n"
           "       ferryctl master grant-readers ROLE [--to CONNINFO]  (PostgreSQL: metricsd's role)\n"

           "       ferryctl master accept-hostkey NAME\n"
           "       ferryctl master pull NODE | --all        (pull now through ferry-pulld; root)\n"
           "       ferryctl master set-policy NAME [--min-push-period S|default] [--min-pull-interval S|default]\n";
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
    if (sub == "migrate")
        return migrateCommand(options);
    if (sub == "grant-readers")
        return grantReadersCommand(options);
    if (sub == "pull")
        return masterPullCommand(options);
    if (options.args.size() < 2)
        return usage();
    const std::string name = options.args[1];
    if (sub == "epochs")
        return options.args.size() == 2 ? epochs(options, paths, name) : usage();
    if (sub == "resolve")
        return options.args.size() == 4 && options.args[2] == "--keep" ? resolve(paths, name, options.args[3])
                                                                          : usage();
    if (sub == "show") {
        if (options.args.size() != 2)
            return usage();
        // It reads as the state directory's owner (openMasterTables):
        // nothing of root's is left behind in master.db's directory.
        return masterShowCommand(options, name);
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
    if (sub == "accept-hostkey") {
        if (options.args.size() != 2)
            return usage();
        const int rc = change(
            paths, "accepting the host keys of " + name, [&](RegistryProxy& r) { r.AcceptHostKeys(name); },
            [&](ferry::RegistryStore& s) { s.acceptHostKeys(name); });
        if (rc == 0)
            std::cout << "Pinned the new sshd host keys of node '" << name << "'\n";
        return rc;
    }
    if (sub == "set-policy") {
        // -1: the master's default; otherwise seconds.
        std::int64_t push = -1, pull = -1;
        bool given = false;
        for (std::size_t i = 2; i < options.args.size(); i += 2) {
            const auto& flag = options.args[i];
            if (i + 1 >= options.args.size() || (flag != "--min-push-period" && flag != "--min-pull-interval"))
                return usage();
            const auto& v = options.args[i + 1];
            std::int64_t seconds = -1;
            if (v != "default") {
                if (v.empty() || v.size() > 6 || v.find_first_not_of("0123456789") != std::string::npos ||
                    std::stoll(v) > ferry::kMaxPolicySeconds) {
                    std::cerr << "ferryctl master: " << flag << " takes seconds (0–" << ferry::kMaxPolicySeconds
                              << ") or 'default'\n";
                    return 2;
                }
                seconds = std::stoll(v);
            }
            (flag == "--min-push-period" ? push : pull) = seconds;
            given = true;
        }
        if (!given)
            return usage();
        auto opt = [](std::int64_t v) {
            return v < 0 ? std::nullopt : std::optional<std::uint32_t>(static_cast<std::uint32_t>(v));
        };
        const int rc = change(
            paths, "setting the period floor of " + name, [&](RegistryProxy& r) { r.SetNodePolicy(name, push, pull); },
            [&](ferry::RegistryStore& s) { s.setPolicy(name, opt(push), opt(pull)); });
        if (rc == 0)
            std::cout << "Node '" << name << "': minimum push period "
                      << (push < 0 ? std::string("default") : std::to_string(push) + " s") << ", minimum pull interval "
                      << (pull < 0 ? std::string("default") : std::to_string(pull) + " s")
                      << " (from its next push on; sent to the node at its next registration)\n";
        return rc;
    }
    std::cerr << "ferryctl master: unknown subcommand '" << sub << "'\n";
    return usage();
}

} // namespace ferryctl
