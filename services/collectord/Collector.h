#pragma once
// collectord's core: accepts connections on the listening socket and serves
// each on a worker thread, at most kMaxSessions at once. Knows nothing of D-Bus.

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <mutex>
#include <string>

#include "CollectorSession.h"
#include "ferry/MasterStore.h"
#include "ferry/StoreConfig.h"

namespace collectord {

class Collector {
public:
    static constexpr int kMaxSessions = 64;

    // onBusy(+1/-1) brackets each session (the event loop holds idle exit).
    Collector(std::string storePath, SessionOptions options, std::function<void(int)> onBusy);
    ~Collector();

    // Accepts every pending connection on a non-blocking listening fd.
    void acceptFrom(int listenFd);
    std::uint64_t sessions() const { return m_sessions; }
    const std::string& storePath() const { return m_storePath; }
    // PostgreSQL instead of master.db at storePath (store.yml).
    void useStore(ferry::StoreConfig config) { m_storeConfig = std::move(config); }

private:
    void serve(int fd);

    std::string m_storePath;
    ferry::StoreConfig m_storeConfig;
    SessionOptions m_options;
    std::function<void(int)> m_onBusy;
    std::atomic<std::uint64_t> m_sessions{0};
    // Sessions run on detached threads (a joinable thread would keep its
    // stack until joined, and a busy collector never goes idle); the
    // destructor waits for the count to reach zero instead.
    int m_active = 0;
    std::mutex m_mutex;
    std::condition_variable m_idle;
};

// A listening socket on host:port (non-blocking, close-on-exec).
int listenTcp(const std::string& host, std::uint16_t port);

} // namespace collectord
