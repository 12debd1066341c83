// ferry-collectord: the master's collector (org.ferry.Collector1). Takes its
// listening socket from systemd (ferry-collectord.socket, 127.0.0.1:50009)
// or binds --listen itself; exits after an idle period.

#include <cstdlib>
#include <string>

#include "Collector.h"
#include "CollectorAdaptor.h"
#include "ferry/Bus.h"
#include "ferry/DaemonArgs.h"
#include "ferry/Log.h"
#include "ferry/NodeConfig.h"
#include "ferry/PeriodFloorConfig.h"
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
        .parse(argc, argv);
    ferry::initLogging("ferry-collectord", args.verbosity);
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
    collector.start(std::move(sockets));
    collectord::CollectorAdaptor api(*bus, loop, collector);
    ferry::LogControl logControl(*bus, loop, "ferry-collectord");
    const std::string where = fromSystemd ? std::string("the socket from systemd")
                                     : listen.host + ":" + std::to_string(listen.port);
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
