#include "Server.h"

#include <arpa/inet.h>
#include <netinet/in.h>

#include <cstring>
#include <memory>

#include <microhttpd.h>
#include <spdlog/spdlog.h>

#include "ferry/Bus.h"
#include "ferry/Error.h"
#include "ferry/PullProtocol.h"

namespace metricsd {

namespace {

constexpr std::size_t kChunkBytes = 64 * 1024;

// One /metrics response being streamed.
struct Stream {
    std::unique_ptr<StoreReader> store;
    std::unique_ptr<Exposition> exposition;
    std::string buffer;
    std::size_t offset = 0;
    std::string node;
};

ssize_t readChunk(void* cls, std::uint64_t, char* buf, std::size_t max)
{
    auto* s = static_cast<Stream*>(cls);
    try {
        if (s->offset >= s->buffer.size()) {
            s->buffer.clear();
            s->offset = 0;
            if (!s->exposition->next(s->buffer, kChunkBytes))
                return MHD_CONTENT_READER_END_OF_STREAM;
        }
        const std::size_t n = std::min(max, s->buffer.size() - s->offset);
        std::memcpy(buf, s->buffer.data() + s->offset, n);
        s->offset += n;
        return static_cast<ssize_t>(n);
    } catch (const std::exception& e) {
        spdlog::error("Failed to write /metrics: {}", e.what());
        return MHD_CONTENT_READER_END_WITH_ERROR;
    }
}

void freeStream(void* cls)
{
    delete static_cast<Stream*>(cls);
}

MHD_Result answer(MHD_Connection* conn, unsigned status, const std::string& text)
{
    MHD_Response* r = MHD_create_response_from_buffer(text.size(), const_cast<char*>(text.data()), MHD_RESPMEM_MUST_COPY);
    MHD_add_response_header(r, MHD_HTTP_HEADER_CONTENT_TYPE, "text/plain; charset=utf-8");
    if (status == MHD_HTTP_METHOD_NOT_ALLOWED)
        MHD_add_response_header(r, MHD_HTTP_HEADER_ALLOW, "GET, HEAD");
    const MHD_Result ret = MHD_queue_response(conn, status, r);
    MHD_destroy_response(r);
    return ret;
}

int firstCallMarker;

} // namespace

struct Server::Callbacks {
    static MHD_Result handle(void* cls, MHD_Connection* conn, const char* url, const char* method, const char*,
                             const char*, std::size_t* uploadSize, void** ctx)
    {
        auto* self = static_cast<Server*>(cls);
        // Answering on the second call keeps the connection alive (answering on
        // the first makes libmicrohttpd close it after the response).
        if (*ctx == nullptr) {
            *ctx = &firstCallMarker;
            return MHD_YES;
        }
        if (*uploadSize != 0) {
            *uploadSize = 0;
            return MHD_YES;
        }
        self->touch();
        ++self->m_requests;
        const std::string m = method, path = url;
        if (m != MHD_HTTP_METHOD_GET && m != MHD_HTTP_METHOD_HEAD)
            return answer(conn, MHD_HTTP_METHOD_NOT_ALLOWED, "Only GET and HEAD are served.\n");
        if (path != "/metrics") {
            if (path == "/")
                return answer(conn, MHD_HTTP_OK, "Ferry metrics: see /metrics (all nodes) or /metrics?node=NAME.\n");
            return answer(conn, MHD_HTTP_NOT_FOUND, "Not found: only /metrics is served.\n");
        }
        auto stream = std::make_unique<Stream>();
        ExpositionOptions options;
        options.nowMs = ferry::nowMs();
        options.staleMs = self->m_settings.staleMs;
        options.maxAgeMs = self->m_settings.maxAgeMs;
        options.remoteWriteState = self->m_settings.remoteWriteState;
        if (const char* node = MHD_lookup_connection_value(conn, MHD_GET_ARGUMENT_KIND, "node"))
            options.onlyNode = std::string(node);
        try {
            stream->store = StoreReader::open(self->m_settings.storePath, self->m_settings.postgresql);
            stream->exposition = std::make_unique<Exposition>(*stream->store, options);
            const auto started = std::chrono::steady_clock::now();
            stream->exposition->prepare();
            spdlog::debug("Prepared /metrics: {} nodes, {} series in {} ms", stream->exposition->nodeCount(),
                          stream->exposition->seriesCount(),
                          std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now() - started)
                              .count());
        } catch (const std::exception& e) {
            spdlog::error("Failed to answer GET /metrics: {}", e.what());
            return answer(conn, MHD_HTTP_SERVICE_UNAVAILABLE, std::string("Failed to read the store: ") + e.what() + "\n");
        }
        MHD_Response* r = MHD_create_response_from_callback(MHD_SIZE_UNKNOWN, kChunkBytes, &readChunk, stream.release(),
                                                            &freeStream);
        MHD_add_response_header(r, MHD_HTTP_HEADER_CONTENT_TYPE, "text/plain; version=0.0.4; charset=utf-8");
        const MHD_Result ret = MHD_queue_response(conn, MHD_HTTP_OK, r);
        MHD_destroy_response(r);
        return ret;
    }

    static void connection(void* cls, MHD_Connection*, void**, MHD_ConnectionNotificationCode code)
    {
        auto* self = static_cast<Server*>(cls);
        if (code == MHD_CONNECTION_NOTIFY_STARTED)
            ++self->m_connections;
        else if (code == MHD_CONNECTION_NOTIFY_CLOSED)
            --self->m_connections;
        self->touch();
    }

    static void completed(void* cls, MHD_Connection*, void** ctx, MHD_RequestTerminationCode code)
    {
        auto* self = static_cast<Server*>(cls);
        if (code != MHD_REQUEST_TERMINATED_COMPLETED_OK && code != MHD_REQUEST_TERMINATED_CLIENT_ABORT)
            spdlog::debug("A request ended early (libmicrohttpd code {})", static_cast<int>(code));
        *ctx = nullptr;
        self->touch();
    }

    static void log(void*, const char* fmt, va_list ap)
    {
        char buf[512];
        std::vsnprintf(buf, sizeof buf, fmt, ap);
        std::string s = buf;
        while (!s.empty() && s.back() == '\n')
            s.pop_back();
        spdlog::warn("HTTP: {}", s);
    }
};

Server::Server(ServerSettings settings) : m_settings(std::move(settings))
{
    touch();
}

Server::~Server()
{
    stop();
}

void Server::touch()
{
    m_lastActivityNs = std::chrono::steady_clock::now().time_since_epoch().count();
}

std::chrono::steady_clock::time_point Server::lastActivity() const
{
    return std::chrono::steady_clock::time_point(std::chrono::steady_clock::duration(m_lastActivityNs.load()));
}

void Server::start(int listenFd, const std::string& host, std::uint16_t port)
{
    unsigned flags = MHD_USE_AUTO_INTERNAL_THREAD | MHD_USE_ERROR_LOG;
    sockaddr_in v4{};
    sockaddr_in6 v6{};
    const sockaddr* addr = nullptr;
    if (listenFd < 0) {
        if (::inet_pton(AF_INET, host.c_str(), &v4.sin_addr) == 1) {
            v4.sin_family = AF_INET;
            v4.sin_port = htons(port);
            addr = reinterpret_cast<const sockaddr*>(&v4);
        } else if (::inet_pton(AF_INET6, host.c_str(), &v6.sin6_addr) == 1) {
            v6.sin6_family = AF_INET6;
            v6.sin6_port = htons(port);
            addr = reinterpret_cast<const sockaddr*>(&v6);
            flags |= MHD_USE_IPv6;
        } else {
            throw ferry::ConfigError("Failed to listen on " + host + ": not an IPv4 or IPv6 address");
        }
    }
    MHD_OptionItem options[] = {
        {MHD_OPTION_CONNECTION_LIMIT, m_settings.connectionLimit, nullptr},
        {MHD_OPTION_PER_IP_CONNECTION_LIMIT, m_settings.perAddressLimit, nullptr},
        {MHD_OPTION_CONNECTION_TIMEOUT, m_settings.connectionTimeoutSeconds, nullptr},
        {MHD_OPTION_CONNECTION_MEMORY_LIMIT, 64 * 1024, nullptr},
        listenFd >= 0 ? MHD_OptionItem{MHD_OPTION_LISTEN_SOCKET, listenFd, nullptr}
                      : MHD_OptionItem{MHD_OPTION_SOCK_ADDR, 0, const_cast<sockaddr*>(addr)},
        {MHD_OPTION_END, 0, nullptr}};
    m_daemon = MHD_start_daemon(flags, 0, nullptr, nullptr, &Callbacks::handle, this,
                                MHD_OPTION_EXTERNAL_LOGGER, &Callbacks::log, this,
                                MHD_OPTION_NOTIFY_CONNECTION, &Callbacks::connection, this,
                                MHD_OPTION_NOTIFY_COMPLETED, &Callbacks::completed, this,
                                MHD_OPTION_ARRAY, options, MHD_OPTION_END);
    if (!m_daemon)
        throw ferry::Error(listenFd >= 0 ? std::string("Failed to serve HTTP on the socket passed by systemd")
                                         : "Failed to listen on " + host + ":" + std::to_string(port) +
                                               " (address in use?)");
}

void Server::stop()
{
    if (m_daemon) {
        MHD_stop_daemon(m_daemon);
        m_daemon = nullptr;
    }
}

} // namespace metricsd
