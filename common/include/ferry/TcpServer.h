#pragma once
// The one TCP server of the master's endpoints (registryd on 50010,
// collectord on 127.0.0.1:50009): takes the sockets systemd passed or binds
// its own (IPv4 and IPv6), accepts on one thread, serves each admitted
// connection on a worker thread of its own, and decides who gets a slot.
// A worker whose connection ended waits (up to idleWorkerLife) for the next
// one, and at most maxIdleWorkers wait: a connection finds an idle worker
// or starts one, so a busy server does not create and tear down a thread
// per connection (its stack, its thread-local state; 8-10 % of collectord's
// CPU per push, bench/collector-push), and a quiet one keeps none. Every
// worker is joined: the accept loop joins those that retired, and stop()
// returns only once every one has exited (thread-local state such as
// OpenSSL's per-thread random generators included), so nothing of a session
// outlives the server or runs on while the process exits.
// Unix stream sockets (collectord's relay socket) are served alike: their
// source is the peer's uid from SO_PEERCRED, except for relayUid's: a relay
// speaks for many peers, so its connections skip steps 2 and 3 at accept and
// are limited once the handler names the peer it relays (relayedSource()).
//
// Admission, in order (a refusal closes the connection at once):
//   1. the server is stopping                                       → refused
//   2. the source's token bucket is empty (sourceRate per second,
//      sourceBurst at most; a source is an IPv4 address, an IPv6 /64, or,
//      with loopbackByUid, the uid owning the peer socket of a loopback
//      connection: local users are told apart from sshd's forwards)   → refused
//   3. the source already has maxPerSource connections that have not
//      authenticated                            → its own oldest one is cut
//   4. maxUnauthenticated connections have not authenticated, or
//      maxConnections are open                  → the oldest connection that
//      has not authenticated is cut; if every one has              → refused
// A genuine client authenticates within one round trip, so whoever holds
// slots without authenticating is the one whose slot goes. A connection
// that has not authenticated by authDeadline is cut; connectionDeadline (if
// set) bounds the whole connection. After authentication at most
// maxPerIdentity connections run per identity (node name).
//
// Refusals, evictions and deadline cuts are counted and logged as one line
// per summaryInterval, never one per connection: a flood cannot flood the
// journal.

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <list>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <optional>
#include <thread>
#include <vector>

#include "ferry/Stream.h"

struct sockaddr;

namespace ferry {

struct TcpServerOptions {
    std::size_t maxConnections = 256;
    std::size_t maxUnauthenticated = 64;
    // registryd's YAML calls this max_per_source.
    std::size_t maxPerSource = 8;
    std::size_t maxPerIdentity = 2;
    // From accept to authenticated(): whoever is slower is cut.
    std::chrono::milliseconds authDeadline{10000};
    // From accept to the end; zero for no bound (a session sending a backlog).
    std::chrono::milliseconds connectionDeadline{0};
    // Token bucket per source; a rate of zero turns the bucket off.
    double sourceRate = 5.0;
    double sourceBurst = 20.0;
    std::size_t maxTrackedSources = 4096;
    bool loopbackByUid = false;
    // A unix-socket peer with this uid relays for others (collectord: the
    // tunnel user's relay, one for every node's push): its connections take
    // their source from TcpConnection::relayedSource(), not from the uid.
    std::optional<std::uint32_t> relayUid;
    std::chrono::milliseconds summaryInterval{60000};
    // Workers waiting for a connection (at most; more retire) and how long
    // one waits before it retires.
    std::size_t maxIdleWorkers = 8;
    std::chrono::milliseconds idleWorkerLife{30000};
    // Sent (best effort, non-blocking) to a refused peer before closing.
    std::function<std::string(const std::string& reason)> refusalMessage;
};

class TcpServer;

// What a handler gets: the socket (non-blocking, owned by the server), who
// is at the other end, and the hook that marks it authenticated.
class TcpConnection {
public:
    int fd() const { return m_fd; }
    const std::string& peer() const { return m_peer; }
    // "127.0.0.1", "2001:db8:1:2::/64", "uid 1000 on loopback",
    // "uid 998 on a unix socket".
    const std::string& source() const { return m_source; }
    // On a unix socket: the peer's uid as the kernel gave it (SO_PEERCRED)
    // when it connected; nullopt on TCP.
    std::optional<std::uint32_t> unixPeerUid() const { return m_unixPeerUid; }
    // When the server will cut this connection if it has not authenticated.
    Deadline authDeadline() const { return m_authDeadline; }
    // Marks the connection authenticated as identity. False when identity
    // already has maxPerIdentity connections: the caller must end the session.
    bool authenticated(const std::string& identity);
    bool isAuthenticated() const;
    // For a connection of TcpServerOptions::relayUid: the peer it relays
    // ("192.0.2.1", "2001:db8::1" literal) becomes its source, and steps 2
    // and 3 of the admission run for that source now. False when the
    // source's bucket is empty: the caller must end the connection.
    bool relayedSource(const std::string& address);
    // True once the server cut the connection (deadline, eviction, stop):
    // the handler's failure is then expected and counted, not worth a line.
    bool wasCut() const;
    // Counts what went wrong in the next summary line instead of a line of
    // its own ("closed before a complete request").
    void countFailure(const std::string& what);

private:
    friend class TcpServer;
    TcpServer* m_server = nullptr;
    int m_fd = -1;
    std::uint64_t m_id = 0;
    std::string m_peer;
    std::string m_source;
    std::optional<std::uint32_t> m_unixPeerUid;
    std::string m_identity;  // empty until authenticated
    bool m_cut = false;
    Clock::time_point m_accepted;
    Deadline m_authDeadline;
};

class TcpServer {
public:
    using Handler = std::function<void(TcpConnection&)>;

    struct Stats {
        std::size_t open = 0;
        std::size_t unauthenticated = 0;
        std::uint64_t accepted = 0;
        std::uint64_t refused = 0;
        std::uint64_t cut = 0;
        std::size_t workers = 0;     // threads serving or waiting
        std::size_t idleWorkers = 0; // of them, waiting
        std::uint64_t workersStarted = 0;
    };

    // Takes ownership of listenFds. onOpen/onClose bracket each admitted
    // connection (called under the server's lock: keep them short).
    TcpServer(std::string name, std::vector<int> listenFds, TcpServerOptions options, Handler handler,
              std::function<void()> onOpen = {}, std::function<void()> onClose = {});
    ~TcpServer();
    TcpServer(const TcpServer&) = delete;
    TcpServer& operator=(const TcpServer&) = delete;

    void start();
    // Stops accepting, cuts open connections and waits for their threads.
    void stop();
    Stats stats() const;

private:
    friend class TcpConnection;
    using Conn = std::shared_ptr<TcpConnection>;

    void acceptLoop();
    void admit(int fd);
    // Hands conn to an idle worker, or starts one with it (under m_mutex).
    void dispatchLocked(const Conn& conn);
    // A worker: serves first, then whatever dispatchLocked queues for it
    // while it waits, until it retires.
    void work(std::uint64_t worker, Conn first);
    void serve(const Conn& conn);
    void finished(const Conn& conn);
    // Joins the workers that retired (not under m_mutex).
    void joinEnded();
    bool takeToken(const std::string& source, Clock::time_point now);
    void cutLocked(TcpConnection& c, const std::string& why);
    void refuse(int fd, const std::string& source, const std::string& reason);
    void countRefusal(const std::string& source, const std::string& reason);
    // Step 3 of the admission for source: its oldest unauthenticated
    // connection other than except is cut when it has maxPerSource.
    void makeRoomForSource(const std::string& source, const TcpConnection* except);
    int enforceDeadlines(Clock::time_point now);
    void summarise(Clock::time_point now, bool force);
    std::string sourceOf(int fd, const sockaddr* peer);

    std::string m_name;
    std::vector<int> m_listenFds;
    TcpServerOptions m_options;
    Handler m_handler;
    std::function<void()> m_onOpen;
    std::function<void()> m_onClose;
    int m_stopFd = -1;
    std::thread m_acceptThread;

    mutable std::mutex m_mutex;
    std::condition_variable m_allDone;
    std::list<Conn> m_conns;  // in accept order: the front is the oldest
    // The workers (by their id), and those that retired, to be joined.
    std::map<std::uint64_t, std::thread> m_workers;
    std::vector<std::thread> m_ended;
    // Connections handed to an idle worker that has not taken them yet
    // (never more than m_idleWorkers), and the idle workers' wake-up.
    std::list<Conn> m_handed;
    std::size_t m_idleWorkers = 0;
    std::condition_variable m_workReady;
    std::uint64_t m_nextWorker = 1;
    std::map<std::string, std::size_t> m_perIdentity;
    struct Bucket {
        double tokens;
        Clock::time_point last;
    };
    std::map<std::string, Bucket> m_buckets;
    bool m_stopping = false;
    std::uint64_t m_nextId = 1;
    Stats m_stats;

    // The summary of the current interval.
    Clock::time_point m_intervalStart;
    std::map<std::string, std::uint64_t> m_counts;         // reason → count
    std::map<std::string, std::uint64_t> m_refusedSources;  // source → refusals
};

// The sockets systemd passed (sd_listen_fds), or, when there are none,
// sockets bound here to each comma-separated address ("0.0.0.0:50010",
// "[::]:50010" (dual-stack), "127.0.0.1:50009,[::1]:50009"). fromSystemd
// tells which it was.
std::vector<int> listeningSockets(const std::string& addresses, bool& fromSystemd);

// A unix stream socket bound at path (a stale socket file there is
// replaced), with the given mode and, unless gid is -1, group: for a server
// started without systemd's socket.
int bindUnixSocket(const std::string& path, unsigned mode, long gid);

// The key a peer address is limited under: the IPv4 address (also when
// mapped into IPv6), or the IPv6 /64.
std::string sourceKey(const sockaddr* address);

} // namespace ferry
