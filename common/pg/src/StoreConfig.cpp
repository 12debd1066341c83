#include "ferry/StoreConfig.h"

#include "ferry/MasterStore.h"
#include "ferry/PgSqlConnection.h"
#include "ferry/PgStore.h"
#include "ferry/YamlReader.h"

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
        map.fail(key, "must not contain a password: put it in a passfile (passfile=/etc/ferry/pgpass, "
                      "mode 0600) and name that file here");
    return *v;
}

StoreConfig fromYaml(std::optional<YamlMap> map)
{
    StoreConfig c;
    if (!map)
        return c;
    c.postgresql = conninfo(*map, "postgresql");
    c.authorizedKeysPostgresql = conninfo(*map, "authorized_keys_postgresql");
    map->finish();
    return c;
}

} // namespace

StoreConfig loadStoreConfig(const Paths& paths)
{
    return fromYaml(YamlMap::loadFile(paths.configDir + "/store.yml"));
}

StoreConfig parseStoreConfig(const std::string& name, const std::string& text)
{
    return fromYaml(YamlMap::loadString(name, text));
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

} // namespace

MasterStoreOpener::MasterStoreOpener(StoreConfig config, std::string sqlitePath)
    : m_config(std::move(config)), m_sqlitePath(std::move(sqlitePath))
{}

MasterStoreOpener MasterStoreOpener::fromPaths(const Paths& paths, const std::string& stateDir)
{
    return MasterStoreOpener(loadStoreConfig(paths), masterStorePath(stateDir.empty() ? paths.stateDir : stateDir));
}

std::unique_ptr<SessionStore> MasterStoreOpener::sessionStore() const
{
    return openSessionStore(m_config, m_sqlitePath);
}

std::unique_ptr<SqlConnection> MasterStoreOpener::tables() const
{
    if (isPostgres())
        return std::make_unique<PgSqlConnection>(m_config.postgresql);
    return std::make_unique<SqliteConnection>(m_sqlitePath);
}

std::unique_ptr<PullLease> MasterStoreOpener::tryPullLease(const std::string& node) const
{
    if (!isPostgres())
        return std::make_unique<SingleMasterLease>();
    auto lease = PgStore::tryPullLease(m_config.postgresql, node);
    if (!lease)
        return nullptr;
    return std::make_unique<PgLease>(std::move(lease));
}

std::string MasterStoreOpener::describe() const
{
    return isPostgres() ? "PostgreSQL (store.yml)" : m_sqlitePath;
}

} // namespace ferry
