// ferry-collectord: the master's collector (org.ferry.Collector1). Takes its
// listening sockets from systemd (ferry-collectord.socket: the relay socket
// /run/ferry-collector-relay.sock and 127.0.0.1:50009) or binds --listen and
// --relay-socket itself; exits after an idle period.

#include <pwd.h>

#include <csignal>

#include <cstdlib>
#include <optional>
#include <string>

#include "Collector.h"
#include "CollectorAdaptor.h"
#include "ferry/Bus.h"
#include "ferry/DaemonArgs.h"
#include "ferry/Files.h"
#include "ferry/Log.h"
#include "ferry/NodeConfig.h"
#include "ferry/PeriodFloorConfig.h"
#include "ferry/PullProtocol.h"
#include "ferry/SshKeys.h"
#include "ferry/TcpServer.h"

namespace {

struct Listen {
    std::string host = "127.0.0.1";
    std::uint16_t port = 50009;
};

} // namespace

int main(int argc, char* argv[]) try {
    Listen listen;
    std::string sshdHostKeyDir = "/etc/ssh";
    std::string relaySocket;
    std::string tunnelUser = "ferry-tunnel";
    ferry::DaemonArgs args{.idleTimeout = std::chrono::seconds(60)};
    ferry::ArgParser("ferry-collectord", "stores what nodes push through the master's sshd (org.ferry.Collector1)")
        .daemonOptions(args)
        .option("--listen", "ADDR:PORT", "listen here without systemd's socket (default 127.0.0.1:50009)",
                [&](const std::string& v) {
                    const auto m = ferry::parseMasterAddress(v, 50009);
                    listen = {m.host, m.sshPort};
                })
        .option("--sshd-host-keys", "DIR",
                "the master sshd's host keys (ssh_host_*_key.pub), which a node's session binding must name "
                "(default /etc/ssh)",
                [&](const std::string& v) { sshdHostKeyDir = v; })
        .option("--relay-socket", "PATH",
                "without systemd's sockets, also listen here for ferry-tunnel-relay (mode 0660, the tunnel user's "
                "group)",
                [&](const std::string& v) { relaySocket = v; })
        .option("--tunnel-user", "USER",
                "the user sshd runs ferry-tunnel-relay as: only its relay header is believed (default ferry-tunnel)",
                [&](const std::string& v) { tunnelUser = v; })
        .parse(argc, argv);
    ferry::initLogging("ferry-collectord", args.verbosity);
    // A relayed session is served on sshd's pipes: a node gone mid-write is
    // an error return there, not a signal (as systemd's IgnoreSIGPIPE=yes
    // would have it, also when started by hand or by a test).
    ::signal(SIGPIPE, SIG_IGN);
    // It holds node keys: no other process of user ferry may look inside.
    ferry::refuseSameUserInspection();
    const ferry::Paths paths = ferry::pathsFromEnvironment();
    const std::string storePath = ferry::masterStorePath(paths.stateDir);
    const ferry::StoreConfig storeConfig = ferry::loadStoreConfig(paths);
    // Create or migrate the tables before any session.
    ferry::openSessionStore(storeConfig, storePath);
    collectord::SessionOptions sessionOptions;
    const ferry::PeriodFloorDefaults floor = ferry::loadPeriodFloorDefaults(paths);
    sessionOptions.minPushPeriodS = floor.minPushPeriodS;
    sessionOptions.minPullIntervalS = floor.minPullIntervalS;

    bool fromSystemd = false;
    auto sockets = ferry::listeningSockets(listen.host.find(':') != std::string::npos
                                               ? "[" + listen.host + "]:" + std::to_string(listen.port)
                                               : listen.host + ":" + std::to_string(listen.port),
                                           fromSystemd);
    // Whose relay header names a node's address: the tunnel user's uid.
    std::optional<std::uint32_t> relayUid;
    long relayGid = -1;
    if (const passwd* pw = ::getpwnam(tunnelUser.c_str())) {
        relayUid = pw->pw_uid;
        relayGid = static_cast<long>(pw->pw_gid);
    } else {
        spdlog::warn("No user {}: relayed pushes are refused (the master package creates it)",
                     ferry::escapeForLog(tunnelUser));
    }
    if (!fromSystemd && !relaySocket.empty())
        sockets.push_back(ferry::bindUnixSocket(relaySocket, 0660, relayGid));

    auto bus = ferry::openBus();
    ferry::EventLoop loop(*bus, args.idleTimeout);
    // Nodes bind their proofs to the master sshd's host key they verified;
    // one relayed from a session with another sshd is refused.
    sessionOptions.sshdHostKeys = ferry::sshdHostKeyFingerprints(sshdHostKeyDir);
    if (sessionOptions.sshdHostKeys.empty())
        spdlog::warn("No sshd host keys in {}: session bindings are not checked", sshdHostKeyDir);
    collectord::Collector collector(storePath, sessionOptions,
                                    [busy = loop.activity()](int delta) { busy(delta > 0); });
    collector.useStore(storeConfig);
    collector.trustRelayUid(relayUid);
    collector.start(std::move(sockets));
    // The session counters a push leaves for the next one's transaction are
    // written within kPendingFlush when no push follows.
    loop.every(collectord::Collector::kPendingFlush, [&collector] { collector.flushPending(); });
    collectord::CollectorAdaptor api(*bus, loop, collector);
    ferry::LogControl logControl(*bus, loop, "ferry-collectord");
    const std::string where = fromSystemd ? std::string("the sockets from systemd")
                                          : listen.host + ":" + std::to_string(listen.port) +
                                                (relaySocket.empty() ? "" : " and " + relaySocket);
    spdlog::info("Accepting node sessions on {}; storing in {}", where,
                 storeConfig.postgresql.empty() ? storePath : std::string("PostgreSQL (store.yml)"));
    ferry::notifyReady("Accepting node sessions on " + where);
    loop.run("org.ferry.Collector1");
    collector.stop();
    return EXIT_SUCCESS;
} catch (const std::exception& e) {
    ferry::logFatal(e);
    return EXIT_FAILURE;
}
