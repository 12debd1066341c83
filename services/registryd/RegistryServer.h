#pragma once
// The TCP side of registryd: one request, one answer, close, on the shared
// ferry::TcpServer (admission, per-source buckets, deadlines, summarised
// refusals). Every registry connection is unauthenticated: the whole
// exchange must finish within connectionDeadline.

#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "ferry/TcpServer.h"
#include "ferry/Wire.h"

namespace registryd {

// Defaults for the registry: 128 connections, 8 per source (an IPv4 address
// or an IPv6 /64), 5 new connections a second per source (20 at once), 10 s
// for the whole exchange.
struct ServerOptions : ferry::TcpServerOptions {
    ServerOptions()
    {
        maxConnections = 128;
        maxUnauthenticated = 128;
        maxPerSource = 8;
        authDeadline = std::chrono::milliseconds(10000);
        connectionDeadline = std::chrono::milliseconds(10000);
    }
};

class RegistryServer {
public:
    using Handler = std::function<ferry::Frame(const ferry::Frame& request, const std::string& peer)>;

    // Takes ownership of listenFds. onOpen runs as each connection is
    // admitted, onClose as it ends (on server threads, under the server's
    // lock: keep them short and thread-safe).
    RegistryServer(std::vector<int> listenFds, ServerOptions options, Handler handler, std::function<void()> onOpen,
                   std::function<void()> onClose);

    void start() { m_server->start(); }
    // Stops accepting, cuts open connections and waits for their threads.
    void stop() { m_server->stop(); }
    ferry::TcpServer::Stats stats() const { return m_server->stats(); }

private:
    void serve(ferry::TcpConnection& conn);

    ServerOptions m_options;
    Handler m_handler;
    std::unique_ptr<ferry::TcpServer> m_server;
};

// The sockets systemd passed, or sockets bound to each comma-separated
// address ("0.0.0.0:50010", "[::]:50010" for both families).
inline std::vector<int> listeningSockets(const std::string& address, bool& fromSystemd)
{
    return ferry::listeningSockets(address, fromSystemd);
}

} // namespace registryd
