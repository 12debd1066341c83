#pragma once
// Where the master keeps its registry and records: /etc/ferry/store.yml.
//
//   postgresql: "host=db.example port=5432 dbname=ferry user=ferry passfile=/etc/ferry/pgpass"
//   authorized_keys_postgresql: "host=db.example dbname=ferry user=ferry-authkeys passfile=…"
//
// Absent file or key: master.db (SQLite) in the state directory, the
// embedded default for one master. With `postgresql:` (a libpq connection
// string; a password belongs in the passfile, never in this file) every
// master daemon pointed there shares one store (docs/postgresql.md).

#include <memory>
#include <string>

#include "ferry/Paths.h"
#include "ferry/SessionStore.h"
#include "ferry/SqlConnection.h"

namespace ferry {

struct StoreConfig {
    std::string postgresql;  // libpq connection string; empty: SQLite
    // The AuthorizedKeysCommand helper's own connection (it runs as
    // ferry-authkeys, a role that may read nodes' name, state and public_key
    // only, docs/postgresql.md); empty: postgresql.
    std::string authorizedKeysPostgresql = {};
};

StoreConfig loadStoreConfig(const Paths& paths);
StoreConfig parseStoreConfig(const std::string& name, const std::string& text);

// The store a data session uses: PostgreSQL when configured, else
// master.db at sqlitePath.
std::unique_ptr<SessionStore> openSessionStore(const StoreConfig& config, const std::string& sqlitePath);

// Held by a master while it pulls one node; released when destroyed (or,
// on PostgreSQL, when the master's connection dies with it).
class PullLease {
public:
    virtual ~PullLease() = default;
};

// Every master daemon's way to its store, whichever backend store.yml
// names: registryd, pulld, ferryctl and metricsd open what they need here,
// so none of them reaches master.db behind a configured PostgreSQL.
class MasterStoreOpener {
public:
    MasterStoreOpener(StoreConfig config, std::string sqlitePath);
    // store.yml of paths, and master.db in stateDir (paths.stateDir when empty).
    static MasterStoreOpener fromPaths(const Paths& paths, const std::string& stateDir = {});

    // Data sessions (push and pull).
    std::unique_ptr<SessionStore> sessionStore() const;
    // The registry, pull state, epochs and records for everything else
    // (RegistryStore, MasterQueries, the metrics reader).
    std::unique_ptr<SqlConnection> tables() const;
    // The pull lease of node: nullptr while another master holds it. With
    // master.db there is one master, and the lease is always granted.
    std::unique_ptr<PullLease> tryPullLease(const std::string& node) const;

    bool isPostgres() const { return !m_config.postgresql.empty(); }
    const std::string& sqlitePath() const { return m_sqlitePath; }
    // "master.db at PATH" or "PostgreSQL (store.yml)", for messages.
    std::string describe() const;

private:
    StoreConfig m_config;
    std::string m_sqlitePath;
};

} // namespace ferry
