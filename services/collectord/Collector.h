#pragma once
// collectord's core: serves node sessions on the shared ferry::TcpServer.
// Connections that have not authenticated are limited apart from sessions
// that have (a local user's idle connections cannot starve genuine pushes),
// loopback peers are told apart by the uid owning their socket (sshd's
// forwards versus local users), and each node runs at most
// kMaxSessionsPerNode sessions at once. Knows nothing of D-Bus.
//
// Pushes arrive through ferry-tunnel-relay (sshd's ForceCommand for the
// tunnel user) on a unix socket, each with a header line naming the node's
// address as sshd saw it (ferry/RelayHeader.h). The header is believed only
// from the tunnel user's uid (SO_PEERCRED); a connection on a unix socket
// from any other uid is refused with one journal line. Connections on the
// TCP socket (127.0.0.1:50009) carry no header: their address is the TCP
// peer's.

#include <atomic>
#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include "CollectorSession.h"
#include "ferry/MasterStore.h"
#include "ferry/StoreConfig.h"
#include "ferry/TcpServer.h"

namespace collectord {

// The collector's admission defaults (see ferry/TcpServer.h for the rules).
ferry::TcpServerOptions defaultServerOptions();

class Collector {
public:
    static constexpr std::size_t kMaxSessionsPerNode = 2;
    struct SharedMaster;

    // onBusy(+1/-1) brackets each connection (the event loop holds idle exit).
    Collector(std::string storePath, SessionOptions options, std::function<void(int)> onBusy);
    ~Collector();

    // Starts serving on listenFds (taken over).
    void start(std::vector<int> listenFds, ferry::TcpServerOptions serverOptions = defaultServerOptions());
    void stop();
    // Writes the session counters that the shared master.db connection
    // keeps for its next write (addCountersLater); main calls it every
    // kPendingFlush, stop() once more.
    void flushPending();
    static constexpr std::chrono::seconds kPendingFlush{5};
    std::uint64_t sessions() const { return m_sessions; }
    const std::string& storePath() const { return m_storePath; }
    // The tunnel user's uid, whose relay header names the node's address
    // (nullopt: no relay is believed, every unix-socket connection is refused).
    void trustRelayUid(std::optional<std::uint32_t> uid) { m_relayUid = uid; }
    // PostgreSQL instead of master.db at storePath (store.yml).
    void useStore(ferry::StoreConfig config) { m_store = ferry::MasterStoreOpener(std::move(config), m_storePath); }
    // The store's tables (for the bus properties), on its backend.
    std::unique_ptr<ferry::SqlConnection> tables() const { return m_store.tables(); }

private:
    void serve(ferry::TcpConnection& conn);
    // A store for one session. On master.db, a view of ONE connection that
    // every session shares, call by call under its lock (each call is a
    // transaction of its own or a single read). master.db takes one writer
    // at a time anyway; with one connection no session's commit throws away
    // the page cache of another (SQLite resets a connection's cache when
    // another connection wrote, and collectord then read master.db's pages
    // again on every session: a third of its system time), and no session
    // waits in SQLite's busy handler, which sleeps rather than queues.
    // Opening master.db per session cost more than the session's writes.
    // PostgreSQL has its pool already.
    std::unique_ptr<ferry::SessionStore> takeStore();
    // After a session that ended cleanly: the checkpoint that closing a
    // connection would do. (After a failure in the store, the connection is
    // not used for new sessions.)
    void giveBack(std::unique_ptr<ferry::SessionStore> store);
    // What the relay's header said: the node's address, and with a version 2
    // header the SSH channel's descriptors (owned: closed unless taken).
    struct Relayed {
        Relayed() = default;
        Relayed(Relayed&& o) noexcept;
        Relayed& operator=(Relayed&&) = delete;
        ~Relayed();
        std::string peer;
        int in = -1;  // the node's bytes (sshd's pipe to the relay's stdin)
        int out = -1; // toward the node (the relay's stdout)
    };
    // The relay's header, or nullopt after the one journal line that says
    // why the connection is refused.
    std::optional<Relayed> relayedPeer(ferry::TcpConnection& conn);
    // A session that ended cleanly, for the summary line: every
    // kSummaryInterval (when a session ends; stop() writes the rest) one
    // journal line at info, instead of one per push.
    void countSession(const SessionResult& r);
    void summariseLocked(std::chrono::steady_clock::time_point now, bool force);

    std::string m_storePath;
    // One pool of PostgreSQL connections for every session and bus call.
    ferry::MasterStoreOpener m_store{ferry::StoreConfig{}, m_storePath};
    SessionOptions m_options;
    std::function<void(int)> m_onBusy;
    std::optional<std::uint32_t> m_relayUid;
    std::atomic<std::uint64_t> m_sessions{0};
    // The shared master.db connection (takeStore); one that has served
    // kSharedStoreLife is replaced for new sessions.
    static constexpr std::chrono::seconds kSharedStoreLife{60};
    std::mutex m_sharedMutex;
    std::mutex m_openingMutex; // held while a new shared connection opens
    std::shared_ptr<SharedMaster> m_shared;
    std::unique_ptr<ferry::TcpServer> m_server;
    struct Totals {
        std::uint64_t sessions = 0, stored = 0, duplicates = 0, held = 0, early = 0;
    };
    static constexpr std::chrono::seconds kSummaryInterval{60};
    std::mutex m_totalsMutex;
    Totals m_totals;
    std::chrono::steady_clock::time_point m_totalsSince = std::chrono::steady_clock::now();
};

} // namespace collectord
