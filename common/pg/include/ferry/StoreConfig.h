#pragma once
// Where the master keeps its registry and records: /etc/ferry/store.yml.
//
//   postgresql: "host=db.example port=5432 dbname=ferry user=ferry passfile=/var/lib/ferry-keys/pgpass"
//   authorized_keys_postgresql: "host=db.example dbname=ferry user=ferry-authkeys passfile=…"
//   readers_postgresql: "host=db.example dbname=ferry user=ferry-readers passfile=…"
//
//   connections: 8     # at most this many per daemon (default 8; raised to
//                      # what a daemon needs at once, with a warning)
//
// Absent file or key: master.db (SQLite) in the state directory, the
// embedded default for one master. With `postgresql:` (a libpq connection
// string; a password belongs in the passfile, never in this file) every
// master daemon pointed there shares one store (docs/postgresql.md).

#include <cstddef>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "ferry/Paths.h"
#include "ferry/SessionStore.h"
#include "ferry/SqlConnection.h"

namespace ferry {

constexpr std::size_t kDefaultStoreConnections = 8;

struct StoreConfig {
    std::string postgresql;  // libpq connection string; empty: SQLite
    // The most PostgreSQL connections one daemon holds (its PgPool):
    // store.yml's `connections:` (a raise above it is then a warning), or
    // kDefaultStoreConnections when the key is absent.
    std::optional<std::size_t> connections = {};
    // The AuthorizedKeysCommand helper's own connection (it runs as
    // ferry-authkeys, a role that may read nodes' name, state and public_key
    // only, docs/postgresql.md); empty: postgresql.
    std::string authorizedKeysPostgresql = {};
    // The readers' connection (ferry-metricsd, ferry-remote-write): a role
    // that may read records, reports, counters and nodes' public columns,
    // and not node_keys (`ferryctl master grant-readers`,
    // docs/postgresql.md); only with postgresql.
    std::string readersPostgresql = {};
    // Where it was read, for messages.
    std::string file = "store.yml";
};

StoreConfig loadStoreConfig(const Paths& paths);
StoreConfig parseStoreConfig(const std::string& name, const std::string& text);

// The network hosts the configured PostgreSQL connection string names, as
// libpq parses it (host= and hostaddr=, comma-separated lists, or a URI's
// authority): empty for master.db and for a database reached through a Unix
// socket (host=/run/postgresql, or no host at all: libpq's default socket),
// which the strict sandboxes of the master units allow. Throws ConfigError
// when libpq cannot parse the string.
std::vector<std::string> storeNetworkHosts(const StoreConfig& config);

// The connection string of a reader of the store (ferry-metricsd,
// ferry-remote-write; daemon names it in the message): readers_postgresql,
// else postgresql after one warning that the reader runs with the daemons'
// role, which may read every node key; "" for master.db.
std::string readerConnection(const StoreConfig& config, const std::string& daemon);

// The store a data session uses: PostgreSQL when configured, else
// master.db at sqlitePath.
std::unique_ptr<SessionStore> openSessionStore(const StoreConfig& config, const std::string& sqlitePath);

// Held by a master while it pulls one node; released when destroyed (or,
// on PostgreSQL, when the master's connection dies with it).
class PullLease {
public:
    virtual ~PullLease() = default;
};

class PgPool;

// One connection to the store for one piece of work (a pull): its lease,
// its bookkeeping and its data session all run on it, borrowed from the
// daemon's pool (PostgreSQL) for as long as this lives.
class StoreConnection {
public:
    virtual ~StoreConnection() = default;
    virtual SqlConnection& tables() = 0;
    virtual SessionStore& sessionStore() = 0;
    // nullptr while another master holds the node's lease; the lease must
    // be released (destroyed) before this connection.
    virtual std::unique_ptr<PullLease> tryPullLease(const std::string& node) = 0;
};

// Every master daemon's way to its store, whichever backend store.yml
// names: registryd, pulld, ferryctl and metricsd open what they need here,
// so none of them reaches master.db behind a configured PostgreSQL.
class MasterStoreOpener {
public:
    MasterStoreOpener(StoreConfig config, std::string sqlitePath);
    // store.yml of paths, and master.db in stateDir (paths.stateDir when empty).
    static MasterStoreOpener fromPaths(const Paths& paths, const std::string& stateDir = {});

    // Copies share one pool of at most config.connections (or the default) PostgreSQL
    // connections (none is made before the first use).

    // Declares that `who` may hold up to n connections of the pool at once
    // (pulld: its concurrency + 1, since a pull borrows a second connection
    // briefly while it holds its own). The pool's bound is raised to the sum
    // of every declaration, so users sharing one pool never wait on each
    // other until the 10 s limit and fail; a raise above store.yml's
    // `connections:` is logged once, as a warning, naming the file, the key
    // and the minimum. No-op on master.db.
    void reserveConnections(std::size_t n, const std::string& who) const;

    // One connection for a whole piece of work (see StoreConnection).
    std::unique_ptr<StoreConnection> connect() const;
    // Data sessions (push): on PostgreSQL each call borrows a pooled
    // connection for its own length only.
    std::unique_ptr<SessionStore> sessionStore() const;
    // The registry, pull state, epochs and records for everything else
    // (RegistryStore, MasterQueries, the metrics reader).
    std::unique_ptr<SqlConnection> tables() const;
    // The pull lease of node: nullptr while another master holds it. With
    // master.db there is one master, and the lease is always granted.
    std::unique_ptr<PullLease> tryPullLease(const std::string& node) const;

    bool isPostgres() const { return !m_config.postgresql.empty(); }
    // The PostgreSQL pool (nullptr on master.db), for its figures.
    const std::shared_ptr<PgPool>& pool() const { return m_pool; }
    const std::string& sqlitePath() const { return m_sqlitePath; }
    // "master.db at PATH" or "PostgreSQL (store.yml)", for messages.
    std::string describe() const;

private:
    // master.db: one connection held open from the first session or pull
    // connection for as long as any copy of this opener lives, so that the
    // close of a session's store is never the file's last close. SQLite
    // checkpoints and deletes the WAL at the last close, and the next first
    // write started a new WAL with two syncs of its own (its header and the
    // directory), paid in the handshake of every push while the node
    // waited; the held connection keeps the WAL, so a session's only sync
    // is its FULL commit. The WAL stays bounded by MasterStore's own
    // checkpoints (at a session's close past 1000 pages).
    struct HeldOpen;
    void holdOpen() const;

    StoreConfig m_config;
    std::string m_sqlitePath;
    std::shared_ptr<PgPool> m_pool;
    std::shared_ptr<HeldOpen> m_held;
};

} // namespace ferry
