#pragma once
// Where the master keeps its registry and records: /etc/ferry/store.yml.
//
//   postgresql: "host=db.example port=5432 dbname=ferry user=ferry passfile=/etc/ferry/pgpass"
//
// Absent file or key: master.db (SQLite) in the state directory, the
// embedded default for one master. With `postgresql:` (a libpq connection
// string; a password belongs in the passfile, never in this file) every
// master daemon pointed there shares one store (docs/postgresql.md).

#include <memory>
#include <string>

#include "ferry/Paths.h"
#include "ferry/SessionStore.h"

namespace ferry {

struct StoreConfig {
    std::string postgresql;  // libpq connection string; empty: SQLite
};

StoreConfig loadStoreConfig(const Paths& paths);
StoreConfig parseStoreConfig(const std::string& name, const std::string& text);

// The store a data session uses: PostgreSQL when configured, else
// master.db at sqlitePath.
std::unique_ptr<SessionStore> openSessionStore(const StoreConfig& config, const std::string& sqlitePath);

} // namespace ferry
