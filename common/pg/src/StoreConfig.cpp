#include "ferry/StoreConfig.h"

#include "ferry/MasterStore.h"
#include "ferry/PgPool.h"
#include "ferry/PgSqlConnection.h"
#include "ferry/PgStore.h"
#include "ferry/YamlReader.h"

#include <libpq-fe.h>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <mutex>
#include <type_traits>

namespace ferry {

namespace {

// A libpq connection string from key, refused empty or with a password.
std::string conninfo(YamlMap& map, const char* key)
{
    auto v = map.string(key);
    if (!v)
        return {};
    if (v->empty())
        map.fail(key, "must be a libpq connection string (or leave the key out for master.db)");
    // A password in a world-readable config file would be a leak: libpq
    // reads one from passfile= or ~/.pgpass instead.
    if (v->find("password=") != std::string::npos || v->find(":@") != std::string::npos ||
        (v->rfind("postgres", 0) == 0 && v->find('@') != std::string::npos &&
         v->substr(0, v->find('@')).find(':', 13) != std::string::npos))
        map.fail(key, "must not contain a password: put it in a passfile (mode 0600; "
                      "docs/postgresql.md says where) and name that file here (passfile=…)");
    return *v;
}

StoreConfig fromYaml(const std::string& file, std::optional<YamlMap> map)
{
    StoreConfig c;
    c.file = file;
    if (!map)
        return c;
    c.postgresql = conninfo(*map, "postgresql");
    c.authorizedKeysPostgresql = conninfo(*map, "authorized_keys_postgresql");
    c.readersPostgresql = conninfo(*map, "readers_postgresql");
    // The readers' role only narrows what the daemons' store shows; alone
    // it would leave the daemons on master.db and the readers elsewhere.
    if (!c.readersPostgresql.empty() && c.postgresql.empty())
        map->fail("readers_postgresql", "needs `postgresql:` too (the store the daemons write)");
    if (auto v = map->integer("connections", 1, 256))
        c.connections = static_cast<std::size_t>(*v);
    map->finish();
    return c;
}

} // namespace

StoreConfig loadStoreConfig(const Paths& paths)
{
    const std::string file = paths.configDir + "/store.yml";
    return fromYaml(file, YamlMap::loadFile(file));
}

StoreConfig parseStoreConfig(const std::string& name, const std::string& text)
{
    return fromYaml(name, YamlMap::loadString(name, text));
}

std::string readerConnection(const StoreConfig& config, const std::string& daemon)
{
    if (config.postgresql.empty() || !config.readersPostgresql.empty())
        return config.readersPostgresql;
    // Not a refusal: an upgraded master keeps serving its metrics until the
    // operator has made the role (docs/postgresql.md), and is told so.
    spdlog::warn("{} reads the PostgreSQL store with the daemons' connection (postgresql: in {}), whose role may "
                 "read every node key: set readers_postgresql: to a role given `ferryctl master grant-readers` "
                 "(docs/postgresql.md)",
                 daemon, config.file);
    return config.postgresql;
}

std::vector<std::string> storeNetworkHosts(const StoreConfig& config)
{
    if (config.postgresql.empty())
        return {};
    char* error = nullptr;
    PQconninfoOption* options = PQconninfoParse(config.postgresql.c_str(), &error);
    if (!options) {
        std::string why = error ? error : "out of memory";
        PQfreemem(error);
        while (!why.empty() && why.back() == '\n')
            why.pop_back();
        throw ConfigError("Failed to parse the PostgreSQL connection string in store.yml: " + why);
    }
    std::vector<std::string> hosts;
    for (PQconninfoOption* o = options; o->keyword; ++o) {
        if (!o->val || *o->val == '\0')
            continue;
        const std::string keyword = o->keyword;
        if (keyword != "host" && keyword != "hostaddr")
            continue;
        std::string list = o->val;
        for (std::size_t start = 0; start <= list.size();) {
            const auto comma = std::min(list.find(',', start), list.size());
            const std::string host = list.substr(start, comma - start);
            // A host that starts with '/' (or '@', Linux's abstract namespace) is a socket directory.
            if (!host.empty() && (keyword == "hostaddr" || (host[0] != '/' && host[0] != '@')))
                hosts.push_back(host);
            start = comma + 1;
        }
    }
    PQconninfoFree(options);
    return hosts;
}

std::unique_ptr<SessionStore> openSessionStore(const StoreConfig& config, const std::string& sqlitePath)
{
    if (!config.postgresql.empty())
        return std::make_unique<PgStore>(config.postgresql);
    return std::make_unique<MasterStore>(sqlitePath);
}

namespace {

class SingleMasterLease : public PullLease {};

class PgLease : public PullLease {
public:
    explicit PgLease(std::unique_ptr<PgStore::PullLease> lease) : m_lease(std::move(lease)) {}

private:
    std::unique_ptr<PgStore::PullLease> m_lease;
};

// A pooled connection, given back after what borrows it is gone.
struct Borrowed {
    std::shared_ptr<PgPool> owner;
    PgPool::Handle handle;
    explicit Borrowed(const std::shared_ptr<PgPool>& from) : owner(from), handle(from->acquire()) {}
};

class PooledTables : private Borrowed, public PgSqlConnection {
public:
    explicit PooledTables(const std::shared_ptr<PgPool>& from) : Borrowed(from), PgSqlConnection(*handle) {}
};

// A data session's store that borrows a pooled connection for each call
// only: every SessionStore operation is one transaction of its own, so a
// session holds no connection while it waits on the node (an idle or slow
// node cannot keep the pool from the others).
class PerCallSessionStore : public SessionStore {
public:
    explicit PerCallSessionStore(std::shared_ptr<PgPool> pool) : m_pool(std::move(pool)) {}

    template <typename Fn>
    std::invoke_result_t<Fn, PgStore&> call(Fn&& fn)
    {
        const auto handle = m_pool->acquire();
        PgStore store(*handle);
        return fn(store);
    }

    std::optional<std::string> nodeSecret(const std::string& name) override
    {
        return call([&](PgStore& s) { return s.nodeSecret(name); });
    }
    SessionAdmission admitSession(const SessionStart& start) override
    {
        return call([&](PgStore& s) { return s.admitSession(start); });
    }
    void storeReport(const std::string& node, const Epoch& epoch, const std::string& via, const std::string& address,
                     const HealthReport& report) override
    {
        call([&](PgStore& s) { s.storeReport(node, epoch, via, address, report); });
    }
    AckMessage storeBatch(const std::string& node, const Epoch& epoch, const std::vector<Record>& records,
                          const std::string& via, BatchLane lane) override
    {
        return call([&](PgStore& s) { return s.storeBatch(node, epoch, records, via, lane); });
    }
    std::vector<AckMessage> storeBatches(const std::string& node, const Epoch& epoch,
                                         const std::vector<BatchToStore>& batches, const std::string& via,
                                         const WithBatches& with) override
    {
        return call([&](PgStore& s) { return s.storeBatches(node, epoch, batches, via, with); });
    }
    std::uint64_t pullCursor(const std::string& node, const Epoch& epoch) override
    {
        return call([&](PgStore& s) { return s.pullCursor(node, epoch); });
    }
    void setPullCursor(const std::string& node, const Epoch& epoch, std::uint64_t cursor) override
    {
        call([&](PgStore& s) { s.setPullCursor(node, epoch, cursor); });
    }
    PushPacing pushPacing(const std::string& node) override
    {
        return call([&](PgStore& s) { return s.pushPacing(node); });
    }
    void notePacedPush(const std::string& node, std::int64_t startMs) override
    {
        call([&](PgStore& s) { s.notePacedPush(node, startMs); });
    }
    void addCounters(const std::vector<CounterDelta>& deltas) override
    {
        call([&](PgStore& s) { s.addCounters(deltas); });
    }
    std::vector<CounterValue> counters() override
    {
        return call([&](PgStore& s) { return s.counters(); });
    }

private:
    std::shared_ptr<PgPool> m_pool;
};

class PooledLease : private Borrowed, public PullLease {
public:
    PooledLease(const std::shared_ptr<PgPool>& from, const std::string& node)
        : Borrowed(from), m_lease(PgStore::tryPullLease(*handle, node))
    {}
    bool held() const { return m_lease != nullptr; }

private:
    std::unique_ptr<PgStore::PullLease> m_lease;
};

class PgStoreConnection : public StoreConnection {
public:
    explicit PgStoreConnection(const std::shared_ptr<PgPool>& from)
        : m_borrowed(from), m_tables(*m_borrowed.handle), m_store(*m_borrowed.handle)
    {}
    SqlConnection& tables() override { return m_tables; }
    SessionStore& sessionStore() override { return m_store; }
    std::unique_ptr<PullLease> tryPullLease(const std::string& node) override
    {
        auto lease = PgStore::tryPullLease(*m_borrowed.handle, node);
        if (!lease)
            return nullptr;
        return std::make_unique<PgLease>(std::move(lease));
    }

private:
    Borrowed m_borrowed;
    PgSqlConnection m_tables;
    PgStore m_store;
};

// master.db: each piece opened when first asked for; one master, so the
// lease is always granted.
class SqliteStoreConnection : public StoreConnection {
public:
    explicit SqliteStoreConnection(std::string path) : m_path(std::move(path)) {}
    // One SQLite connection for the pull's tables and its session: the
    // pull's state is written through the store's WAL hook, so that it does
    // not take SQLite's checkpoint at 1000 pages (the session's pages) into
    // its commit; and the state, its counters and the node's last pull go
    // in one transaction.
    SqlConnection& tables() override { return store().connection(); }
    SessionStore& sessionStore() override { return store(); }
    std::unique_ptr<PullLease> tryPullLease(const std::string&) override
    {
        return std::make_unique<SingleMasterLease>();
    }

private:
    MasterStore& store()
    {
        if (!m_store) {
            m_store = std::make_unique<MasterStore>(m_path);
            // The opener holds master.db open (holdOpen) and checkpoints at
            // the daemon's exit what the pulls leave.
            m_store->leaveCheckpointToLastClose();
        }
        return *m_store;
    }

    std::string m_path;
    std::unique_ptr<MasterStore> m_store;
};

} // namespace

struct MasterStoreOpener::HeldOpen {
    std::mutex lock;
    std::unique_ptr<MasterStore> store; // never used: only held open
};

MasterStoreOpener::MasterStoreOpener(StoreConfig config, std::string sqlitePath)
    : m_config(std::move(config)), m_sqlitePath(std::move(sqlitePath))
{
    if (isPostgres())
        m_pool = std::make_shared<PgPool>(m_config.postgresql, m_config.connections.value_or(kDefaultStoreConnections));
    else
        m_held = std::make_shared<HeldOpen>();
}

void MasterStoreOpener::holdOpen() const
{
    const std::lock_guard<std::mutex> guard(m_held->lock);
    // A MasterStore, not a bare connection: it holds node-keys.db (attached)
    // open as well, and its migration runs once here instead of racing the
    // first sessions. It never writes, so its close checkpoints nothing of
    // its own; the last close (this one, at exit) checkpoints the rest.
    if (!m_held->store)
        m_held->store = std::make_unique<MasterStore>(m_sqlitePath);
}

MasterStoreOpener MasterStoreOpener::fromPaths(const Paths& paths, const std::string& stateDir)
{
    return MasterStoreOpener(loadStoreConfig(paths), masterStorePath(stateDir.empty() ? paths.stateDir : stateDir));
}

std::unique_ptr<StoreConnection> MasterStoreOpener::connect() const
{
    if (isPostgres())
        return std::make_unique<PgStoreConnection>(m_pool);
    holdOpen();
    return std::make_unique<SqliteStoreConnection>(m_sqlitePath);
}

std::unique_ptr<SessionStore> MasterStoreOpener::sessionStore() const
{
    if (isPostgres())
        return std::make_unique<PerCallSessionStore>(m_pool);
    holdOpen();
    return std::make_unique<MasterStore>(m_sqlitePath);
}

std::unique_ptr<SqlConnection> MasterStoreOpener::tables() const
{
    if (isPostgres())
        return std::make_unique<PooledTables>(m_pool);
    return std::make_unique<SqliteConnection>(m_sqlitePath);
}

std::unique_ptr<PullLease> MasterStoreOpener::tryPullLease(const std::string& node) const
{
    if (!isPostgres())
        return std::make_unique<SingleMasterLease>();
    auto lease = std::make_unique<PooledLease>(m_pool, node);
    if (!lease->held())
        return nullptr;
    return lease;
}

void MasterStoreOpener::reserveConnections(std::size_t n, const std::string& who) const
{
    if (!m_pool)
        return;
    const auto raised = m_pool->reserve(n);
    if (!raised)
        return;
    if (m_config.connections)
        spdlog::warn("{} sets connections: {}, fewer than this daemon holds at once ({}, of which {} for {}): "
                     "holding up to {} PostgreSQL connections; set connections: {} or more",
                     m_config.file, *m_config.connections, *raised, n, who, *raised, *raised);
    else
        spdlog::info("Holding up to {} PostgreSQL connections, not the default {}: {} for {}", *raised,
                     kDefaultStoreConnections, n, who);
}

std::string MasterStoreOpener::describe() const
{
    return isPostgres() ? "PostgreSQL (store.yml)" : m_sqlitePath;
}

} // namespace ferry
