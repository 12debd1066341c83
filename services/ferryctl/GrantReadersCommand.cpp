// ferryctl master grant-readers: the privileges of the PostgreSQL role that
// ferry-metricsd and ferry-remote-write use (store.yml readers_postgresql:,
// docs/postgresql.md).
//
//   ferryctl master grant-readers ROLE [--to CONNINFO]
//
// Connects as the daemons' role (store.yml's postgresql:, or --to), which
// owns the tables, and gives ROLE SELECT on what the readers read and nothing
// else (PgStore::grantReaders); whatever ROLE had on the tables before is
// revoked. The role itself is the server administrator's to create. Run it
// again after an upgrade that adds a table the readers read.

#include <iostream>

#include "Commands.h"
#include "ferry/PgStore.h"
#include "ferry/StoreConfig.h"

namespace ferryctl {

int grantReadersCommand(const Options& options)
{
    const auto paths = ferry::pathsFromEnvironment();
    std::string conninfo, role;
    bool understood = true;
    for (std::size_t i = 1; i < options.args.size(); ++i) {
        if (options.args[i] == "--to" && i + 1 < options.args.size())
            conninfo = options.args[++i];
        else if (role.empty() && !options.args[i].empty() && options.args[i][0] != '-')
            role = options.args[i];
        else
            understood = false;
    }
    if (!understood || role.empty()) {
        std::cerr << "usage: ferryctl master grant-readers ROLE [--to CONNINFO]\n";
        return 2;
    }
    if (conninfo.empty())
        conninfo = ferry::loadStoreConfig(paths).postgresql;
    if (conninfo.empty()) {
        std::cerr << "ferryctl: the readers' role is for a PostgreSQL store: set `postgresql:` in " << paths.configDir
                  << "/store.yml or pass --to CONNINFO\n";
        return 1;
    }
    // Opening as the daemons' role creates or migrates the schema, so every
    // table the grants name exists.
    ferry::PgStore store(conninfo);
    for (const auto& statement : ferry::PgStore::grantReaders(store.connection(), role))
        std::cout << statement << ";\n";
    std::cout << "Role '" << role << "' may now read what ferry-metricsd and ferry-remote-write need, and no node "
              << "key. Next: readers_postgresql: in store.yml names it (docs/postgresql.md).\n";
    return 0;
}

} // namespace ferryctl
