#pragma once
// The TCP side of registryd: accepts on the listening sockets (handed over by
// systemd, or bound here), serves each connection on its own thread with one
// deadline for the whole exchange, bounds frame size, and limits connections
// in total and per source address. One request, one answer, close.

#include <chrono>
#include <condition_variable>
#include <functional>
#include <map>
#include <mutex>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "ferry/Wire.h"

namespace registryd {

struct ServerOptions {
    // From accept to the answer: a client that has not sent its whole request
    // by then (slowloris) is closed.
    std::chrono::milliseconds connectionDeadline{10000};
    std::size_t maxConnections = 128;
    std::size_t maxPerSource = 8;
};

class RegistryServer {
public:
    using Handler = std::function<ferry::Frame(const ferry::Frame& request, const std::string& peer)>;

    // Takes ownership of listenFds. onOpen runs as each connection is
    // admitted, onClose as it ends (on server threads, under the server's
    // lock: keep them short and thread-safe).
    RegistryServer(std::vector<int> listenFds, ServerOptions options, Handler handler, std::function<void()> onOpen,
                   std::function<void()> onClose);
    ~RegistryServer();
    RegistryServer(const RegistryServer&) = delete;
    RegistryServer& operator=(const RegistryServer&) = delete;

    void start();
    // Stops accepting, cuts open connections and waits for their threads.
    void stop();

private:
    void acceptLoop();
    void admit(int fd);
    void serve(int fd, const std::string& peer);
    void finished(int fd, const std::string& host);

    std::vector<int> m_listenFds;
    ServerOptions m_options;
    Handler m_handler;
    std::function<void()> m_onOpen;
    std::function<void()> m_onClose;
    int m_stopFd = -1;
    std::thread m_acceptThread;

    std::mutex m_mutex;
    std::condition_variable m_allDone;
    std::size_t m_active = 0;
    std::map<std::string, std::size_t> m_perSource;
    std::set<int> m_openFds;
    bool m_stopping = false;
};

// The sockets systemd passed (sd_listen_fds), or, when there are none, a
// socket bound here to address ("0.0.0.0:50010", "[::1]:50010").
// fromSystemd tells which it was.
std::vector<int> listeningSockets(const std::string& address, bool& fromSystemd);

} // namespace registryd
