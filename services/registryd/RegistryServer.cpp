#include "RegistryServer.h"

#include <spdlog/spdlog.h>

#include "ferry/Error.h"
#include "ferry/RegistryProtocol.h"
#include "ferry/Stream.h"

namespace registryd {

RegistryServer::RegistryServer(std::vector<int> listenFds, ServerOptions options, Handler handler,
                               std::function<void()> onOpen, std::function<void()> onClose)
    : m_options(options), m_handler(std::move(handler))
{
    m_options.authDeadline = m_options.connectionDeadline;
    m_options.maxUnauthenticated = m_options.maxConnections;
    m_options.refusalMessage = [](const std::string& reason) {
        return ferry::encodeFrame(ferry::MessageType::Error,
                                  ferry::encode(ferry::ErrorMessage{"busy", reason + "; retry later"}));
    };
    // The handler answers a timed-out client itself; the server's own cut
    // comes a little later, for a client that does not read either.
    ferry::TcpServerOptions serverOptions = m_options;
    serverOptions.authDeadline += std::chrono::milliseconds(500);
    serverOptions.connectionDeadline += std::chrono::milliseconds(500);
    m_server = std::make_unique<ferry::TcpServer>(
        "registry", std::move(listenFds), serverOptions, [this](ferry::TcpConnection& c) { serve(c); },
        std::move(onOpen), std::move(onClose));
}

void RegistryServer::serve(ferry::TcpConnection& conn)
{
    const std::string& peer = conn.peer();
    const auto deadline = ferry::deadlineIn(m_options.connectionDeadline);
    // Not owned: the server closes it after the handler returns.
    ferry::FdStream stream(conn.fd(), conn.fd(), peer, false);
    // What a stranger can cause is counted in the server's summary line,
    // never logged once per connection.
    try {
        const auto request = ferry::readFrame(stream, deadline, ferry::kMaxRegistryFrame);
        const auto reply = m_handler(request, peer);
        ferry::writeFrame(stream, reply.type, reply.payload, deadline);
    } catch (const ferry::TimeoutError&) {
        conn.countFailure("closed without a complete request in time");
        try {
            ferry::writeFrame(stream, ferry::MessageType::Error,
                              ferry::encode(ferry::ErrorMessage{"timeout", "no complete request in time"}),
                              ferry::deadlineIn(std::chrono::milliseconds(100)));
        } catch (const std::exception&) {
            // The peer is not reading either; closing is all that is left.
        }
    } catch (const ferry::ClosedError& e) {
        conn.countFailure(conn.wasCut() ? "closed by the server before a complete request"
                                        : "closed by the peer before a complete request");
        spdlog::debug("Connection from {} closed before a complete request: {}", peer, e.what());
    } catch (const ferry::ProtocolError& e) {
        conn.countFailure("refused as malformed");
        spdlog::debug("Refused the request from {}: {}", peer, e.what());
        try {
            ferry::writeFrame(stream, ferry::MessageType::Error,
                              ferry::encode(ferry::ErrorMessage{"bad-request", e.what()}),
                              ferry::deadlineIn(std::chrono::milliseconds(200)));
        } catch (const std::exception&) {
            // Best effort: the peer may already be gone.
        }
    } catch (const std::exception& e) {
        spdlog::warn("Failed to serve {}: {}", peer, e.what());
    }
}

} // namespace registryd
