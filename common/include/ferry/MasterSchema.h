#pragma once
// The one definition of master.db, of node-keys.db beside it and of the
// AuthorizedKeysCommand helper's view: every table, index and migration.
// Only MasterStore applies the first two (MasterStore::attachNodeKeys and
// migrate) and AuthorizedKeysView.cpp writes the view; registryd, pulld,
// collectord and ferryctl reach the files through them, and the helper,
// which must stay small, reads the view with the query text below.
// Dependency-free on purpose (no SQLite, no Ferry types), so that any
// reader — the helper, a metrics exporter, a later PostgreSQL port — can
// include it.
//
// Versions (PRAGMA user_version):
//   0  a new file, or one made by the release before this owner existed
//      (tables created ad hoc by each daemon; records keyed (node, seq))
//   1  that release's schema, every table present (kMigrations[0] brings
//      any file of that release there, whichever daemons had run)
//   2  spool epochs: records keyed (node, epoch, seq); pull cursors per
//      (node, epoch); node_epochs; node_reports
//   3  registration v2 (node sshd host keys pinned for pulls, host key
//      changes awaiting the operator, per-node period floors, OpenSSH
//      certificates and their revocations) and the cause of a node's last
//      failed pull
//   4  store order (records.stored_order, node_epochs.stored_order: the
//      order in which a (node, epoch)'s records were stored, which differs
//      from seq once the newest records travel ahead of a backlog) and the
//      master's own counters (master_counters)
//   5  the period floor enforced per push: when each node's last on-time
//      push began (node_pacing)
//   6  records in a rowid table with a unique index on (node, epoch, seq),
//      no longer WITHOUT ROWID: SQLite keeps whole rows in a WITHOUT ROWID
//      b-tree, which suits rows under ~1/20 of a page; a sampler record is
//      ~1 KB, so each leaf held three rows and a week's backlog stored 2.7x
//      slower into a file 3.3x larger (bench/backlog, bench/pull)
//   7  node keys leave master.db: nodes.secret is blank, and each node's key
//      (its derived key k1:<master id>:<key>, or a legacy secret until the
//      node's next registration) is in node_keys of node-keys.db, a file in
//      a directory that only the daemons that prove or check keys can open
//      (collectord, registryd, pulld; root's ferryctl). master.db stays
//      readable by every master daemon, the metrics exporters included.
//   8  node_certificates in a rowid table, no longer WITHOUT ROWID, for the
//      reason of version 6: a WITHOUT ROWID b-tree keeps at most ~1000 bytes
//      of a row in its page and the rest in overflow pages of their own, and
//      with an RSA CA (its key and signature are in every certificate) a
//      certificate row is 1.6 KB: each took 4.6 KiB of master.db
//      (bench/master-load, 1000 nodes: 5.08 KiB per node in all)
//
// node-keys.db is attached to every read-write connection on master.db as
// schema "keys" (MasterStore::attachNodeKeys), so `node_keys` needs no
// prefix in SQL and the same statements run on PostgreSQL, where node_keys
// is a table of its own that can be granted to fewer roles. Step 7 copies
// the keys there in a transaction of their own first, and blanks the column
// only after that one committed: a crash between the two loses nothing, and
// the copy runs again.
//
// A new file gets kSchema and kMasterSchemaVersion at once. An existing one
// runs every migration above its version in order, each in the same
// transaction as the user_version it reaches. A file newer than this code
// is refused, not touched.
//
// Epochs are 32 lower-case hex digits (Epoch::hex()); the legacy epoch of
// records from before epochs is 32 zeros.

namespace ferry::schema {

inline constexpr int kMasterSchemaVersion = 8;

inline constexpr const char* kLegacyEpochHex = "00000000000000000000000000000000";

// The current schema, for a new file.
inline constexpr const char* kSchema = R"SQL(
CREATE TABLE nodes (
  name TEXT PRIMARY KEY,
  secret TEXT NOT NULL,                        -- always '' (version 7): keys are in node_keys
  state TEXT NOT NULL DEFAULT 'accepted',      -- accepted | pending | declined | revoked
  mode TEXT NOT NULL DEFAULT 'push',           -- push | pull | auto
  public_key TEXT NOT NULL DEFAULT '',
  ssh_host TEXT NOT NULL DEFAULT '',
  ssh_port INTEGER NOT NULL DEFAULT 22,
  first_seen INTEGER NOT NULL DEFAULT 0,       -- ms since the epoch, here and below
  last_seen INTEGER NOT NULL DEFAULT 0,
  last_push INTEGER NOT NULL DEFAULT 0,
  last_pull INTEGER NOT NULL DEFAULT 0,
  records_stored INTEGER NOT NULL DEFAULT 0,
  reason TEXT NOT NULL DEFAULT '',             -- why declined or revoked
  pending_request BLOB,                        -- registration awaiting a decision
  pending_mac BLOB
);
-- sshd asks the AuthorizedKeysCommand helper for every connection: the
-- lookup by key must stay an index probe however many nodes exist.
CREATE INDEX nodes_public_key ON nodes(public_key);
CREATE TABLE records (
  node TEXT NOT NULL,
  epoch TEXT NOT NULL,
  seq INTEGER NOT NULL,
  time_ms INTEGER NOT NULL,
  kind TEXT NOT NULL,
  payload BLOB NOT NULL,
  received_ms INTEGER NOT NULL,
  via TEXT NOT NULL,                           -- push | pull
  stored_order INTEGER NOT NULL DEFAULT 0      -- 1, 2, … per (node, epoch), in the order of storing
);
-- (node, epoch, seq) is a record's name: stored once (INSERT OR IGNORE).
CREATE UNIQUE INDEX records_key ON records(node, epoch, seq);
-- Remote-write follows each (node, epoch) in the order it was stored.
CREATE INDEX records_order ON records(node, epoch, stored_order);
CREATE TABLE node_epochs (
  node TEXT NOT NULL,
  epoch TEXT NOT NULL,
  first_seen INTEGER NOT NULL,
  last_seen INTEGER NOT NULL,
  from_address TEXT NOT NULL DEFAULT '',       -- peer of the last session of this epoch
  state TEXT NOT NULL DEFAULT 'active' CHECK (state IN ('active', 'retired', 'suspect')),
  decided_ms INTEGER NOT NULL DEFAULT 0,       -- when an operator set the state (0: automatic)
  records_stored INTEGER NOT NULL DEFAULT 0,
  last_seq INTEGER NOT NULL DEFAULT 0,
  stored_order INTEGER NOT NULL DEFAULT 0,     -- the last store order given in this epoch
  PRIMARY KEY (node, epoch)
) WITHOUT ROWID;
CREATE TABLE node_reports (
  node TEXT PRIMARY KEY,                       -- the latest health report per node
  epoch TEXT NOT NULL,
  received_ms INTEGER NOT NULL,
  via TEXT NOT NULL,
  from_address TEXT NOT NULL,
  spool_records INTEGER NOT NULL,
  spool_bytes INTEGER NOT NULL,
  oldest_unsent_ms INTEGER NOT NULL,           -- 0: nothing queued
  last_seq INTEGER NOT NULL,
  dropped_age INTEGER NOT NULL,
  dropped_size INTEGER NOT NULL,
  dropped_bytes INTEGER NOT NULL,
  transport_mode TEXT NOT NULL,
  transport_reason TEXT NOT NULL,
  spool_resets INTEGER NOT NULL,
  last_reset TEXT NOT NULL,
  last_reset_ms INTEGER NOT NULL,
  fwcheck_verdict TEXT NOT NULL
);
CREATE TABLE pull_state (
  node TEXT PRIMARY KEY,
  last_attempt INTEGER NOT NULL DEFAULT 0,
  last_success INTEGER NOT NULL DEFAULT 0,
  last_result TEXT NOT NULL DEFAULT '',
  last_records INTEGER NOT NULL DEFAULT 0,
  total_records INTEGER NOT NULL DEFAULT 0
);
-- Every record of (node, epoch) up to cursor is stored here.
CREATE TABLE pull_cursors (
  node TEXT NOT NULL,
  epoch TEXT NOT NULL,
  cursor INTEGER NOT NULL DEFAULT 0,
  PRIMARY KEY (node, epoch)
) WITHOUT ROWID;
CREATE TABLE registry_nonces (
  node TEXT NOT NULL,
  nonce BLOB NOT NULL,
  time_ms INTEGER NOT NULL,
  PRIMARY KEY (node, nonce)
) WITHOUT ROWID;
CREATE INDEX registry_nonces_time ON registry_nonces(time_ms);
CREATE TABLE node_host_keys (
  node TEXT NOT NULL,
  key TEXT NOT NULL,                           -- "<type> <base64>", as sshd's host key .pub
  position INTEGER NOT NULL,
  PRIMARY KEY (node, key)
) WITHOUT ROWID;
CREATE TABLE node_host_key_changes (
  node TEXT PRIMARY KEY,                       -- a signed registration brought other host keys
  keys TEXT NOT NULL,
  seen_ms INTEGER NOT NULL
) WITHOUT ROWID;
CREATE TABLE node_policy (
  node TEXT PRIMARY KEY,                       -- per-node period floor; NULL: the registry's default
  min_push_period_s INTEGER,
  min_pull_interval_s INTEGER
) WITHOUT ROWID;
CREATE TABLE node_certificates (
  node TEXT PRIMARY KEY,
  serial INTEGER NOT NULL UNIQUE,
  public_key TEXT NOT NULL,
  certificate TEXT NOT NULL,                   -- rows of up to ~1.6 KB: a rowid table (version 8)
  valid_to_ms INTEGER NOT NULL
);
CREATE TABLE revoked_certificates (
  serial INTEGER PRIMARY KEY,
  node TEXT NOT NULL,
  revoked_ms INTEGER NOT NULL
);
CREATE TABLE pull_failure (
  node TEXT PRIMARY KEY,                       -- the cause of the node's last failed pull
  at INTEGER NOT NULL,
  cause TEXT NOT NULL,
  message TEXT NOT NULL
);
CREATE TABLE master_counters (
  name TEXT NOT NULL,                          -- ferry_<name>_total on /metrics
  labels TEXT NOT NULL DEFAULT '',             -- exposition text, e.g. outcome="ok",transport="push"
  value INTEGER NOT NULL,
  PRIMARY KEY (name, labels)
) WITHOUT ROWID;
CREATE TABLE node_pacing (
  node TEXT PRIMARY KEY,                       -- the period floor: when the node's last push that
  last_paced_push_ms INTEGER NOT NULL          -- kept to it began (early pushes do not move it)
) WITHOUT ROWID;
)SQL";

// A column some files of version 0 lack (registryd added these when it ran).
struct AddedColumn {
    const char* table;
    const char* column;
    const char* declaration;
};

struct Migration {
    int toVersion;
    // Columns to add first where missing (ALTER TABLE … ADD COLUMN).
    const AddedColumn* columns;
    int columnCount;
    const char* sql;
};

inline constexpr AddedColumn kRegistryColumns[] = {
    {"nodes", "pending_request", "BLOB"},
    {"nodes", "pending_mac", "BLOB"},
};

inline constexpr AddedColumn kStoreOrderColumns[] = {
    {"records", "stored_order", "INTEGER NOT NULL DEFAULT 0"},
    {"node_epochs", "stored_order", "INTEGER NOT NULL DEFAULT 0"},
};
inline constexpr Migration kMigrations[] = {
    // 0 → 1: whatever daemons of the release before ran, every table of that
    // release exists afterwards (the release's own statements, verbatim).
    {1, nullptr, 0, R"SQL(
CREATE TABLE IF NOT EXISTS nodes ( name TEXT PRIMARY KEY, secret TEXT NOT NULL, state TEXT NOT NULL DEFAULT 'accepted', mode TEXT NOT NULL DEFAULT 'push', public_key TEXT NOT NULL DEFAULT '', ssh_host TEXT NOT NULL DEFAULT '', ssh_port INTEGER NOT NULL DEFAULT 22, first_seen INTEGER NOT NULL DEFAULT 0, last_seen INTEGER NOT NULL DEFAULT 0, last_push INTEGER NOT NULL DEFAULT 0, last_pull INTEGER NOT NULL DEFAULT 0, records_stored INTEGER NOT NULL DEFAULT 0, reason TEXT NOT NULL DEFAULT '');
CREATE TABLE IF NOT EXISTS records ( node TEXT NOT NULL, seq INTEGER NOT NULL, time_ms INTEGER NOT NULL, kind TEXT NOT NULL, payload BLOB NOT NULL, received_ms INTEGER NOT NULL, via TEXT NOT NULL, PRIMARY KEY (node, seq)) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS registry_nonces ( node TEXT NOT NULL, nonce BLOB NOT NULL, time_ms INTEGER NOT NULL, PRIMARY KEY (node, nonce)) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS nodes_public_key ON nodes(public_key);
CREATE TABLE IF NOT EXISTS pull_state ( node TEXT PRIMARY KEY, cursor INTEGER NOT NULL DEFAULT 0, last_attempt INTEGER NOT NULL DEFAULT 0, last_success INTEGER NOT NULL DEFAULT 0, last_result TEXT NOT NULL DEFAULT '', last_records INTEGER NOT NULL DEFAULT 0, total_records INTEGER NOT NULL DEFAULT 0);
)SQL"},
    // 1 → 2: epochs. Records and pull cursors of the release belong to the
    // legacy epoch; every node that stored records gets that epoch, active.
    {2, kRegistryColumns, 2, R"SQL(
CREATE TABLE records_v2 (
  node TEXT NOT NULL, epoch TEXT NOT NULL, seq INTEGER NOT NULL, time_ms INTEGER NOT NULL,
  kind TEXT NOT NULL, payload BLOB NOT NULL, received_ms INTEGER NOT NULL, via TEXT NOT NULL,
  PRIMARY KEY (node, epoch, seq)
) WITHOUT ROWID;
INSERT INTO records_v2 (node, epoch, seq, time_ms, kind, payload, received_ms, via)
  SELECT node, '00000000000000000000000000000000', seq, time_ms, kind, payload, received_ms, via FROM records;
DROP TABLE records;
ALTER TABLE records_v2 RENAME TO records;
CREATE TABLE node_epochs (
  node TEXT NOT NULL, epoch TEXT NOT NULL, first_seen INTEGER NOT NULL, last_seen INTEGER NOT NULL,
  from_address TEXT NOT NULL DEFAULT '',
  state TEXT NOT NULL DEFAULT 'active' CHECK (state IN ('active', 'retired', 'suspect')),
  decided_ms INTEGER NOT NULL DEFAULT 0, records_stored INTEGER NOT NULL DEFAULT 0,
  last_seq INTEGER NOT NULL DEFAULT 0,
  PRIMARY KEY (node, epoch)
) WITHOUT ROWID;
INSERT INTO node_epochs (node, epoch, first_seen, last_seen, records_stored, last_seq)
  SELECT node, '00000000000000000000000000000000', MIN(received_ms), MAX(received_ms), COUNT(*), MAX(seq)
  FROM records GROUP BY node;
CREATE TABLE node_reports (
  node TEXT PRIMARY KEY, epoch TEXT NOT NULL, received_ms INTEGER NOT NULL, via TEXT NOT NULL,
  from_address TEXT NOT NULL, spool_records INTEGER NOT NULL, spool_bytes INTEGER NOT NULL,
  oldest_unsent_ms INTEGER NOT NULL, last_seq INTEGER NOT NULL, dropped_age INTEGER NOT NULL,
  dropped_size INTEGER NOT NULL, dropped_bytes INTEGER NOT NULL, transport_mode TEXT NOT NULL,
  transport_reason TEXT NOT NULL, spool_resets INTEGER NOT NULL, last_reset TEXT NOT NULL,
  last_reset_ms INTEGER NOT NULL, fwcheck_verdict TEXT NOT NULL
);
CREATE TABLE pull_cursors (
  node TEXT NOT NULL, epoch TEXT NOT NULL, cursor INTEGER NOT NULL DEFAULT 0,
  PRIMARY KEY (node, epoch)
) WITHOUT ROWID;
INSERT INTO pull_cursors (node, epoch, cursor)
  SELECT node, '00000000000000000000000000000000', cursor FROM pull_state WHERE cursor > 0;
CREATE TABLE pull_state_v2 (
  node TEXT PRIMARY KEY, last_attempt INTEGER NOT NULL DEFAULT 0, last_success INTEGER NOT NULL DEFAULT 0,
  last_result TEXT NOT NULL DEFAULT '', last_records INTEGER NOT NULL DEFAULT 0,
  total_records INTEGER NOT NULL DEFAULT 0
);
INSERT INTO pull_state_v2 SELECT node, last_attempt, last_success, last_result, last_records, total_records
  FROM pull_state;
DROP TABLE pull_state;
ALTER TABLE pull_state_v2 RENAME TO pull_state;
)SQL"},
    // 2 → 3: registration v2 and pull failure causes. IF NOT EXISTS: a
    // file that a registryd of the development branch touched may have some.
    {3, nullptr, 0, R"SQL(
CREATE INDEX IF NOT EXISTS registry_nonces_time ON registry_nonces(time_ms);
CREATE TABLE IF NOT EXISTS node_host_keys (
  node TEXT NOT NULL,
  key TEXT NOT NULL,                           -- "<type> <base64>", as sshd's host key .pub
  position INTEGER NOT NULL,
  PRIMARY KEY (node, key)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS node_host_key_changes (
  node TEXT PRIMARY KEY,                       -- a signed registration brought other host keys
  keys TEXT NOT NULL,
  seen_ms INTEGER NOT NULL
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS node_policy (
  node TEXT PRIMARY KEY,                       -- per-node period floor; NULL: the registry's default
  min_push_period_s INTEGER,
  min_pull_interval_s INTEGER
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS node_certificates (
  node TEXT PRIMARY KEY,
  serial INTEGER NOT NULL UNIQUE,
  public_key TEXT NOT NULL,
  certificate TEXT NOT NULL,
  valid_to_ms INTEGER NOT NULL
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS revoked_certificates (
  serial INTEGER PRIMARY KEY,
  node TEXT NOT NULL,
  revoked_ms INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS pull_failure (
  node TEXT PRIMARY KEY,                       -- the cause of the node's last failed pull
  at INTEGER NOT NULL,
  cause TEXT NOT NULL,
  message TEXT NOT NULL
);
)SQL"},
    // 3 → 4: store order and the master's counters. Records stored so far
    // were stored in sequence order, so their order is their seq, and
    // remote-write cursors (kept as orders from now on) stay where they are.
    {4, kStoreOrderColumns, 2, R"SQL(
UPDATE records SET stored_order = seq;
UPDATE node_epochs SET stored_order = COALESCE((SELECT MAX(r.seq) FROM records r
  WHERE r.node = node_epochs.node AND r.epoch = node_epochs.epoch), 0);
CREATE INDEX IF NOT EXISTS records_order ON records(node, epoch, stored_order);
CREATE TABLE IF NOT EXISTS master_counters (
  name TEXT NOT NULL,
  labels TEXT NOT NULL DEFAULT '',
  value INTEGER NOT NULL,
  PRIMARY KEY (name, labels)
) WITHOUT ROWID;
)SQL"},
    // 4 → 5: the period floor enforced per push.
    {5, nullptr, 0, R"SQL(
CREATE TABLE IF NOT EXISTS node_pacing (
  node TEXT PRIMARY KEY,                       -- the period floor: when the node's last push that
  last_paced_push_ms INTEGER NOT NULL          -- kept to it began (early pushes do not move it)
) WITHOUT ROWID;
)SQL"},
    // 5 → 6: records leave WITHOUT ROWID (see the version list above). A
    // one-time copy of every record, in the transaction of the step.
    {6, nullptr, 0, R"SQL(
CREATE TABLE records_v6 (
  node TEXT NOT NULL, epoch TEXT NOT NULL, seq INTEGER NOT NULL, time_ms INTEGER NOT NULL,
  kind TEXT NOT NULL, payload BLOB NOT NULL, received_ms INTEGER NOT NULL, via TEXT NOT NULL,
  stored_order INTEGER NOT NULL DEFAULT 0
);
INSERT INTO records_v6 (node, epoch, seq, time_ms, kind, payload, received_ms, via, stored_order)
  SELECT node, epoch, seq, time_ms, kind, payload, received_ms, via, stored_order FROM records
  ORDER BY node, epoch, seq;
DROP TABLE records;
ALTER TABLE records_v6 RENAME TO records;
CREATE UNIQUE INDEX records_key ON records(node, epoch, seq);
CREATE INDEX records_order ON records(node, epoch, stored_order);
)SQL"},
    // 6 → 7: node keys leave master.db. kNodeKeysCopy ran and committed
    // before this step (see the version list above). The table is rebuilt
    // rather than the column blanked in place: every earlier update of a
    // node's row (last_seen, records_stored) left a stale copy of the row,
    // secret included, in its page's free space. MasterStore::migrate runs
    // this step with secure_delete on, so the old pages are zeroed as they
    // are freed, and checkpoints the WAL afterwards.
    {7, nullptr, 0, R"SQL(
CREATE TABLE nodes_v7 (
  name TEXT PRIMARY KEY, secret TEXT NOT NULL, state TEXT NOT NULL DEFAULT 'accepted',
  mode TEXT NOT NULL DEFAULT 'push', public_key TEXT NOT NULL DEFAULT '', ssh_host TEXT NOT NULL DEFAULT '',
  ssh_port INTEGER NOT NULL DEFAULT 22, first_seen INTEGER NOT NULL DEFAULT 0, last_seen INTEGER NOT NULL DEFAULT 0,
  last_push INTEGER NOT NULL DEFAULT 0, last_pull INTEGER NOT NULL DEFAULT 0,
  records_stored INTEGER NOT NULL DEFAULT 0, reason TEXT NOT NULL DEFAULT '', pending_request BLOB, pending_mac BLOB
);
INSERT INTO nodes_v7 (name, secret, state, mode, public_key, ssh_host, ssh_port, first_seen, last_seen, last_push,
                      last_pull, records_stored, reason, pending_request, pending_mac)
  SELECT name, '', state, mode, public_key, ssh_host, ssh_port, first_seen, last_seen, last_push, last_pull,
         records_stored, reason, pending_request, pending_mac FROM nodes;
DROP TABLE nodes;
ALTER TABLE nodes_v7 RENAME TO nodes;
CREATE INDEX nodes_public_key ON nodes(public_key);
)SQL"},
    // 7 → 8: node_certificates leaves WITHOUT ROWID (see the version list
    // above); its rows are copied in the transaction of the step.
    {8, nullptr, 0, R"SQL(
CREATE TABLE node_certificates_v8 (
  node TEXT PRIMARY KEY,
  serial INTEGER NOT NULL UNIQUE,
  public_key TEXT NOT NULL,
  certificate TEXT NOT NULL,
  valid_to_ms INTEGER NOT NULL
);
INSERT INTO node_certificates_v8 (node, serial, public_key, certificate, valid_to_ms)
  SELECT node, serial, public_key, certificate, valid_to_ms FROM node_certificates ORDER BY node;
DROP TABLE node_certificates;
ALTER TABLE node_certificates_v8 RENAME TO node_certificates;
)SQL"},
};

// node-keys.db: one table, in the attached schema "keys". Created whenever
// the file is attached (IF NOT EXISTS).
inline constexpr const char* kNodeKeysSchema = R"SQL(
CREATE TABLE IF NOT EXISTS keys.node_keys (
  node TEXT PRIMARY KEY,                       -- nodes.name in master.db
  secret TEXT NOT NULL                         -- k1:<master id>:<key>, or a legacy node secret
) WITHOUT ROWID;
)SQL";

// Before step 7, in a transaction that writes node-keys.db only: every key
// still in master.db is copied (a key already copied is overwritten with
// the same text, so running it twice is harmless).
inline constexpr const char* kNodeKeysCopy = R"SQL(
INSERT INTO keys.node_keys (node, secret) SELECT name, secret FROM main.nodes WHERE secret <> ''
  ON CONFLICT(node) DO UPDATE SET secret = excluded.secret;
)SQL";

// The AuthorizedKeysCommand helper's view (AuthorizedKeysView.h): a file of
// its own, with the keys of accepted nodes only.
inline constexpr const char* kAuthorizedKeysViewSchema = R"SQL(
CREATE TABLE authorized_keys (
  public_key TEXT PRIMARY KEY,                 -- "<type> <base64>", as nodes.public_key
  node TEXT NOT NULL
) WITHOUT ROWID;
)SQL";
inline constexpr const char* kAuthorizedKeysViewQuery =
    "SELECT public_key FROM authorized_keys WHERE public_key = ?1 LIMIT 1";

// The AuthorizedKeysCommand helper's query on PostgreSQL, where it reads
// the shared registry (a role granted SELECT on nodes' name, state and
// public_key only, docs/postgresql.md): is this key an accepted node's?
inline constexpr const char* kAuthorizedKeyQuery =
    "SELECT public_key FROM nodes WHERE public_key = ?1 AND state = 'accepted' LIMIT 1";

} // namespace ferry::schema
