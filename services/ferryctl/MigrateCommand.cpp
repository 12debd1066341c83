// ferryctl master migrate: moves a master from master.db (SQLite) to the
// PostgreSQL store that several masters share (docs/postgresql.md).
//
//   ferryctl master migrate [--to CONNINFO]
//
// Copies every node, record, epoch and pull cursor of master.db into the
// PostgreSQL store named by --to or by `postgresql:` in store.yml. Rows that
// are already there are kept, so an interrupted copy can simply be run
// again. master.db is only read. Exit status 1 unless the target holds at
// least every record and node of the source afterwards.

#include <cstdio>
#include <iostream>

#include "Commands.h"
#include "ferry/MasterStore.h"
#include "ferry/PgStore.h"
#include "ferry/StoreConfig.h"

namespace ferryctl {

int migrateCommand(const Options& options)
{
    const auto paths = ferry::pathsFromEnvironment();
    std::string conninfo;
    for (std::size_t i = 1; i < options.args.size(); ++i) {
        if (options.args[i] == "--to" && i + 1 < options.args.size())
            conninfo = options.args[++i];
        else {
            std::cerr << "usage: ferryctl master migrate [--to CONNINFO]\n";
            return 2;
        }
    }
    if (conninfo.empty())
        conninfo = ferry::loadStoreConfig(paths).postgresql;
    if (conninfo.empty()) {
        std::cerr << "ferryctl: no PostgreSQL store to migrate to: set `postgresql:` in " << paths.configDir
                  << "/store.yml or pass --to CONNINFO\n";
        return 1;
    }
    const std::string source = ferry::masterStorePath(paths.stateDir);
    ferry::PgStore target(conninfo);
    const auto r = ferry::migrateSqliteToPostgres(source, target);
    std::printf("Copied %llu of %llu nodes and %llu of %llu records from %s (the rest were there already).\n",
                static_cast<unsigned long long>(r.copied.nodes), static_cast<unsigned long long>(r.source.nodes),
                static_cast<unsigned long long>(r.copied.records), static_cast<unsigned long long>(r.source.records),
                source.c_str());
    std::printf("PostgreSQL store at %s now holds %llu nodes and %llu records.\n", target.connection().where().c_str(),
                static_cast<unsigned long long>(r.target.nodes), static_cast<unsigned long long>(r.target.records));
    if (r.target.records < r.source.records || r.target.nodes < r.source.nodes) {
        std::fprintf(stderr, "ferryctl: the PostgreSQL store holds fewer rows than master.db: do not switch yet\n");
        return 1;
    }
    std::printf("Next: set `postgresql:` in store.yml on every master and restart ferry-collectord.\n");
    return 0;
}

} // namespace ferryctl
