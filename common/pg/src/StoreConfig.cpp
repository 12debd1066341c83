#include "ferry/StoreConfig.h"

#include "ferry/MasterStore.h"
#include "ferry/PgSqlConnection.h"
#include "ferry/PgStore.h"
#include "ferry/YamlReader.h"

#include <libpq-fe.h>

#include <algorithm>

namespace ferry {

namespace {

StoreConfig fromYaml(std::optional<YamlMap> map)
{
    StoreConfig c;
    if (!map)
        return c;
    if (auto v = map->string("postgresql")) {
        if (v->empty())
            map->fail("postgresql", "must be a libpq connection string (or leave the key out for master.db)");
        // A password in a world-readable config file would be a leak: libpq
        // reads one from passfile= or ~/.pgpass instead.
        if (v->find("password=") != std::string::npos || v->find(":@") != std::string::npos ||
            (v->rfind("postgres", 0) == 0 && v->find('@') != std::string::npos &&
             v->substr(0, v->find('@')).find(':', 13) != std::string::npos))
            map->fail("postgresql", "must not contain a password: put it in a passfile (passfile=/etc/ferry/pgpass, "
                                    "mode 0600) and name that file here");
        c.postgresql = *v;
    }
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
