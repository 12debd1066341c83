// ferry-metricsd: the master's Prometheus endpoint. Started by
// ferry-metrics.socket (or binds --listen itself), serves GET /metrics from
// master.db opened read-only, and exits after an idle period; systemd keeps
// the socket and starts it again on the next scrape.

#include <csignal>
#include <cstdlib>
#include <string>

#include <systemd/sd-daemon.h>

#include "Server.h"
#include "ferry/Bus.h"
#include "ferry/DaemonArgs.h"
#include "ferry/Log.h"
#include "ferry/MasterStore.h"
#include "ferry/NodeConfig.h"
#include "ferry/StoreConfig.h"

int main(int argc, char* argv[]) try {
    std::string host = "127.0.0.1";
    std::uint16_t port = 9464;
    metricsd::ServerSettings settings;
    const auto args = ferry::parseDaemonArgs(
        argc, argv, std::chrono::seconds(300),
        "ferry-metricsd [-v] [--listen=ADDR:PORT] [--store=FILE] [--stale=SECONDS] [--max-age=SECONDS] "
        "[--idle-timeout=SECONDS]",
        [&](const std::string& s) {
            if (s.rfind("--listen=", 0) == 0) {
                const auto m = ferry::parseMasterAddress(s.substr(9), 9464);
                host = m.host;
                port = m.sshPort;
            } else if (s.rfind("--store=", 0) == 0) {
                settings.storePath = s.substr(8);
            } else if (s.rfind("--stale=", 0) == 0) {
                settings.staleMs = ferry::parseNumberArg("--stale", s.substr(8), 1, 86400 * 30) * 1000;
            } else if (s.rfind("--max-age=", 0) == 0) {
                settings.maxAgeMs = ferry::parseNumberArg("--max-age", s.substr(10), 0, 86400 * 365) * 1000;
            } else {
                return false;
            }
            return true;
        });
    ferry::initLogging("ferry-metricsd", args.verbosity);
    // --store names a master.db; without it, the store store.yml names
    // (PostgreSQL, shared by several masters, through the readers' role of
    // readers_postgresql:) or the state directory's.
    if (settings.storePath.empty()) {
        const ferry::Paths paths = ferry::pathsFromEnvironment();
        settings.storePath = ferry::masterStorePath(paths.stateDir);
        settings.postgresql = ferry::readerConnection(ferry::loadStoreConfig(paths), "ferry-metricsd");
    }
    // ferry-remote-write keeps its state beside the store.
    settings.remoteWriteState =
        settings.storePath.substr(0, settings.storePath.find_last_of('/') + 1) + "remote-write.db";

    const int n = sd_listen_fds(1);
    if (n > 1)
        throw ferry::Error("Expected one socket from systemd, got " + std::to_string(n));

    // Signals are blocked before libmicrohttpd starts its thread, so only
    // this thread receives them.
    sigset_t stopSignals;
    sigemptyset(&stopSignals);
    sigaddset(&stopSignals, SIGTERM);
    sigaddset(&stopSignals, SIGINT);
    pthread_sigmask(SIG_BLOCK, &stopSignals, nullptr);
    std::signal(SIGPIPE, SIG_IGN);

    metricsd::Server server(settings);
    server.start(n == 1 ? SD_LISTEN_FDS_START : -1, host, port);
    ferry::notifyReady(n == 1 ? "Serving /metrics on the socket from systemd"
                              : "Serving /metrics on " + host + ":" + std::to_string(port));
    spdlog::info("Serving /metrics from {} ({})",
                 settings.postgresql.empty() ? settings.storePath : "PostgreSQL (store.yml)",
                 n == 1 ? "socket from systemd" : host + ":" + std::to_string(port));
    for (;;) {
        const timespec tick{1, 0};
        const int sig = sigtimedwait(&stopSignals, nullptr, &tick);
        if (sig > 0)
            break;
        const auto idle = std::chrono::steady_clock::now() - server.lastActivity();
        if (args.idleTimeout.count() > 0 && server.activeConnections() == 0 && idle >= args.idleTimeout) {
            spdlog::info("Exiting after {} s without requests ({} served)",
                         std::chrono::duration_cast<std::chrono::seconds>(idle).count(), server.requests());
            break;
        }
    }
    ferry::notifyStopping();
    server.stop();
    return EXIT_SUCCESS;
} catch (const std::exception& e) {
    ferry::logFatal(e);
    return EXIT_FAILURE;
}
