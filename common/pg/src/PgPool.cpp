#include "ferry/PgPool.h"

#include <spdlog/spdlog.h>

#include "ferry/PgStore.h"

namespace ferry {

PgPool::PgPool(std::string conninfo, std::size_t maxConnections, std::chrono::milliseconds waitLimit)
    : m_conninfo(std::move(conninfo)), m_max(std::max<std::size_t>(1, maxConnections)), m_waitLimit(waitLimit)
{}

PgPool::Handle::~Handle()
{
    if (m_connection)
        m_pool->giveBack(std::move(m_connection));
}

std::optional<std::size_t> PgPool::reserve(std::size_t n)
{
    std::lock_guard lock(m_mutex);
    m_reserved += n;
    if (m_reserved <= m_max)
        return std::nullopt;
    m_max = m_reserved;
    // Borrowers waiting for a connection may make one now.
    m_returned.notify_all();
    return m_max;
}

std::size_t PgPool::maxConnections() const
{
    std::lock_guard lock(m_mutex);
    return m_max;
}

std::size_t PgPool::connectionsMade() const
{
    std::lock_guard lock(m_mutex);
    return m_made;
}

std::unique_ptr<PgConnection> PgPool::connect()
{
    auto connection = std::make_unique<PgConnection>(m_conninfo);
    bool migrate = false;
    {
        std::lock_guard lock(m_mutex);
        migrate = !m_migrated;
    }
    // Masters started together migrate once: PgStore::migrate takes an
    // advisory lock; a second pool connection that races here finds the
    // schema current.
    if (migrate) {
        PgStore::migrate(*connection);
        std::lock_guard lock(m_mutex);
        m_migrated = true;
    }
    return connection;
}

PgPool::Handle PgPool::acquire()
{
    std::unique_lock lock(m_mutex);
    const auto deadline = std::chrono::steady_clock::now() + m_waitLimit;
    for (;;) {
        while (!m_idle.empty()) {
            auto connection = std::move(m_idle.back());
            m_idle.pop_back();
            if (connection->usable())
                return Handle(*this, std::move(connection));
            --m_open;
            spdlog::info("Dropped a PostgreSQL connection to {} that the server closed; connecting again",
                         connection->where());
        }
        if (m_open < m_max) {
            ++m_open;
            lock.unlock();
            try {
                auto connection = connect();
                lock.lock();
                ++m_made;
                return Handle(*this, std::move(connection));
            } catch (...) {
                lock.lock();
                --m_open;
                m_returned.notify_one();
                throw;
            }
        }
        if (m_returned.wait_until(lock, deadline) == std::cv_status::timeout && m_idle.empty() && m_open >= m_max)
            throw Error("Failed to get a connection to the PostgreSQL store: all " + std::to_string(m_max) +
                        " of this daemon's connections stayed in use for " + std::to_string(m_waitLimit.count()) +
                        " ms (connections: in store.yml)");
    }
}

void PgPool::giveBack(std::unique_ptr<PgConnection> connection)
{
    // Whatever a borrower left open is undone here, not carried to the next one.
    if (!connection->usable()) {
        try {
            if (connection->alive())
                connection->exec("ROLLBACK");
        } catch (const std::exception& e) {
            spdlog::debug("Dropping a PostgreSQL connection that could not be rolled back: {}", e.what());
        }
    }
    std::lock_guard lock(m_mutex);
    if (connection->usable())
        m_idle.push_back(std::move(connection));
    else
        --m_open;
    m_returned.notify_one();
}

} // namespace ferry
