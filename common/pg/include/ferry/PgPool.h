#pragma once
// A daemon's bounded set of PostgreSQL connections, reused across
// operations: a pull, a push session or a bus call borrows one and gives it
// back, instead of connecting (and checking the schema) each time. At most
// maxConnections are open at once, so that N masters hold at most N × that
// many of the server's max_connections. A borrower that finds all of them in
// use waits up to waitLimit, then gets an Error naming the limit (store.yml
// `connections:`), never an unbounded queue.
//
// Reconnects on failure: a connection that the server closed (restart,
// pg_terminate_backend, a network cut) is found dead when it is borrowed
// (libpq reads what is pending without blocking) or returned, is dropped,
// and the next borrower gets a new one. One returned inside a transaction
// (an exception between BEGIN and COMMIT) is rolled back first, or dropped.
// The schema is created or migrated once per pool, on its first connection.

#include <chrono>
#include <condition_variable>
#include <cstddef>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include "ferry/PgConnection.h"

namespace ferry {

class PgPool {
public:
    PgPool(std::string conninfo, std::size_t maxConnections,
           std::chrono::milliseconds waitLimit = std::chrono::seconds(10));
    PgPool(const PgPool&) = delete;
    PgPool& operator=(const PgPool&) = delete;

    // A borrowed connection; given back when destroyed.
    class Handle {
    public:
        Handle(Handle&& other) noexcept = default;
        Handle& operator=(Handle&&) = delete;
        ~Handle();
        PgConnection& operator*() const { return *m_connection; }
        PgConnection* operator->() const { return m_connection.get(); }

    private:
        friend class PgPool;
        Handle(PgPool& pool, std::unique_ptr<PgConnection> connection)
            : m_pool(&pool), m_connection(std::move(connection))
        {}
        PgPool* m_pool;
        std::unique_ptr<PgConnection> m_connection;
    };

    // Throws Error when no connection can be made, or none is free within waitLimit.
    Handle acquire();

    // Adds n to the connections that the pool's users may hold at once, and
    // raises the bound to their sum when that is higher: the new bound then,
    // else nullopt. Users who each hold one while borrowing another would
    // otherwise wait on each other until waitLimit and fail.
    std::optional<std::size_t> reserve(std::size_t n);

    std::size_t maxConnections() const;
    // Connections made over the pool's life (a new one after each failure).
    std::size_t connectionsMade() const;

private:
    void giveBack(std::unique_ptr<PgConnection> connection);
    std::unique_ptr<PgConnection> connect();

    const std::string m_conninfo;
    std::size_t m_max;
    std::size_t m_reserved = 0;
    const std::chrono::milliseconds m_waitLimit;
    mutable std::mutex m_mutex;
    std::condition_variable m_returned;
    std::vector<std::unique_ptr<PgConnection>> m_idle;
    std::size_t m_open = 0; // idle + lent + being made
    std::size_t m_made = 0;
    bool m_migrated = false;
};

} // namespace ferry
