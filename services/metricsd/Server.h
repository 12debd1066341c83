#pragma once
// metricsd's HTTP side (libmicrohttpd): GET /metrics and /metrics?node=NAME.
// Each request opens the store read-only and streams an Exposition.
// One internal thread; connections, per-address connections, idle time and
// memory per connection are bounded.

#include <atomic>
#include <chrono>
#include <cstdint>
#include <string>

#include "Exposition.h"

struct MHD_Daemon;

namespace metricsd {

struct ServerSettings {
    std::string storePath;  // master.db
    std::string postgresql; // or a PostgreSQL store (libpq connection string), when set
    std::string remoteWriteState;
    std::int64_t staleMs = 5 * 60 * 1000;
    std::int64_t maxAgeMs = 60 * 60 * 1000;
    unsigned connectionLimit = 32;
    unsigned perAddressLimit = 8;
    unsigned connectionTimeoutSeconds = 30;
};

class Server {
public:
    explicit Server(ServerSettings settings);
    ~Server();
    Server(const Server&) = delete;
    Server& operator=(const Server&) = delete;

    // Serves on a socket passed by systemd (listenFd ≥ 0), else binds host:port.
    void start(int listenFd, const std::string& host, std::uint16_t port);
    void stop();

    unsigned activeConnections() const { return m_connections.load(); }
    std::chrono::steady_clock::time_point lastActivity() const;
    std::uint64_t requests() const { return m_requests.load(); }

    // Called by libmicrohttpd's callbacks.
    struct Callbacks;

private:
    ServerSettings m_settings;
    MHD_Daemon* m_daemon = nullptr;
    std::atomic<unsigned> m_connections{0};
    std::atomic<std::int64_t> m_lastActivityNs{0};
    std::atomic<std::uint64_t> m_requests{0};
    void touch();
};

} // namespace metricsd
