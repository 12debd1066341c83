#pragma once
// The master's store (SQLite, WAL, synchronous=FULL), and the one owner of
// master.db: opening it applies MasterSchema.h (creation and migrations), so
// every daemon and ferryctl that reaches the file goes through here.
//
// Records are keyed by (node, epoch, seq), so a batch that arrives twice —
// retried after a lost ack, or once by push and once by pull — is stored
// once, while a reinstalled node's new spool (a new epoch) is stored from
// its seq 1. A batch is committed with synchronous=FULL before the caller
// acks it: an acked record survives a power loss of the master.
//
// Epochs of a node (node_epochs) move between states:
//   new epoch, node known      → it becomes active, the others retired
//                                 (a reinstall: logged once, counted)
//   a retired epoch comes back → every live epoch of the node is suspect
//                                 (a clone, or one secret on two machines)
//   suspect, or retired by an operator
//                              → held: the session is told so, nothing is
//                                 stored or acked, the data stays on the node
//   resolveEpochs(node, keep)  → keep is active, the others retired by the
//                                 operator (held from then on)

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "ferry/Epoch.h"
#include "ferry/MasterQueries.h"
#include "ferry/SessionStore.h"
#include "ferry/SqlConnection.h"
#include "ferry/Sqlite.h"
#include "ferry/Wire.h"

namespace ferry {

class MasterStore : public SessionStore {
public:
    explicit MasterStore(const std::string& path);
    // Checkpoints the WAL when it has grown past SQLite's usual threshold:
    // the work this connection put off while it stored (see the constructor).
    ~MasterStore() override;
    MasterStore(const MasterStore&) = delete;
    MasterStore& operator=(const MasterStore&) = delete;

    // Opens master.db and brings it to the current schema; what every other
    // user of the file calls (RegistryStore, pulld, ferryctl). node-keys.db
    // must be attached first (attachNodeKeys): version 7 moves keys there.
    static void migrate(Database& db);
    // Attaches node-keys.db (nodeKeysPath of db's file) as schema "keys",
    // creating the file (0600) and its table when missing, and the
    // directory (0700) when that is missing too (a test's or a demo's state
    // directory; packages create /var/lib/ferry-keys). Throws Error naming
    // the file when it cannot be opened: a daemon without the ferry-keys
    // group is refused here, before it reads anything.
    static void attachNodeKeys(Database& db);

    // Enrols (or re-keys) a node with its secret, state accepted.
    void addNode(const std::string& name, const std::string& secret);
    std::optional<std::string> nodeSecret(const std::string& name) override;
    std::optional<NodeInfo> node(const std::string& name);
    std::vector<NodeInfo> nodes();

    // Notes a session of (node, epoch) from address and decides whether its
    // data may be stored (see the state machine above). With a report, the
    // node's health report is stored in the same transaction, committed
    // without a sync (SessionStore.h says why that is safe).
    // admitEpoch with the period floor or the pull cursor, in one
    // transaction (SessionStore.h).
    SessionAdmission admitSession(const SessionStart& start) override;
    using SessionStore::admitEpoch;
    std::vector<EpochInfo> epochs(const std::string& node);
    // The operator's decision for a suspect node. Throws Error naming the
    // node and epoch when the node has no such epoch.
    void resolveEpochs(const std::string& node, const std::string& keepEpochHex);

    // Stores a batch in one transaction; duplicates are ignored and counted.
    // via is "push" or "pull" (which timestamp to update). On pull, the
    // (node, epoch) cursor moves to the batch's last sequence in the same
    // transaction: the batch follows the cursor, so everything up to it is
    // stored (or was dropped by the node's bounds, never sent).
    AckMessage storeBatch(const std::string& node, const Epoch& epoch, const std::vector<Record>& records,
                          const std::string& via, BatchLane lane = BatchLane::Backlog) override;
    // Several batches in one transaction, one sync (SessionStore.h).
    std::vector<AckMessage> storeBatches(const std::string& node, const Epoch& epoch,
                                         const std::vector<BatchToStore>& batches, const std::string& via,
                                         const WithBatches& with) override;
    using SessionStore::storeBatches;
    // Records per INSERT statement in storeBatches: kRowsPerInsert by
    // default; 1 is one statement per record (bench/backlog compares them).
    static constexpr std::size_t kRowsPerInsert = 64;
    void setRowsPerInsert(std::size_t rows) { m_rowsPerInsert = rows == 0 ? 1 : rows; }
    void addCounters(const std::vector<CounterDelta>& deltas) override;
    // Kept in memory, summed per counter, and written inside this
    // connection's next write transaction (admitSession's, storeBatches',
    // storeReport's own; after it committed they are gone from memory, a
    // rollback keeps them), by flushPending(), or at the destructor: a push's
    // sessions counter was a write transaction of its own after the last
    // Ack. A crash loses what is kept (metrics, never a record); counters()
    // does not see it yet.
    void addCountersLater(const std::vector<CounterDelta>& deltas) override;
    // For a connection that every session shares and that is flushed
    // (flushPending) every few seconds (collectord's): an admission that
    // changes no epoch's state and stores no report is decided in a read
    // transaction, and what it notes (the epoch's last_seen and
    // from_address, the on-time push of the period floor) is kept like
    // addCountersLater's increments, for the session's first batch's
    // transaction. pushPacing() sees a kept note. A session that fails
    // before its batch, or a crash, loses the note: the next push is judged
    // against the on-time push before it (leniently), the epoch's last_seen
    // is older. Its write transaction (a lock on master.db and node-keys.db,
    // two changes of synchronous, a commit) was 10 % of collectord's CPU per
    // push (bench/collector-push).
    void keepSessionNotes() { m_keepSessionNotes = true; }
    // Writes what is kept (addCountersLater, keepSessionNotes), in one
    // transaction of its own committed without a sync (nothing when nothing
    // is kept).
    void flushPending();
    std::vector<CounterValue> counters() override;
    void storeReport(const std::string& node, const Epoch& epoch, const std::string& via, const std::string& address,
                     const HealthReport& report) override;
    std::optional<HealthReport> report(const std::string& node);

    std::uint64_t countRecords(const std::string& node);
    std::uint64_t countRecords(const std::string& node, const Epoch& epoch);
    std::vector<Record> records(const std::string& node, const Epoch& epoch, std::uint64_t afterSeq, std::size_t limit);

    // Pull cursors: every record of (node, epoch) ≤ cursor is stored.
    std::uint64_t pullCursor(const std::string& node, const Epoch& epoch) override;
    void setPullCursor(const std::string& node, const Epoch& epoch, std::uint64_t cursor) override;

    PushPacing pushPacing(const std::string& node) override;
    void notePacedPush(const std::string& node, std::int64_t startMs) override;

    // After a session's last Ack: checkpoints the WAL (PASSIVE) once it
    // passed SQLite's usual threshold. The destructor does the same; a
    // store kept open across sessions (collectord's) calls this instead.
    void checkpointIfDue();
    // Leaves the checkpoint at close to whoever closes master.db last (a
    // daemon's held-open store, at its exit) and to the 64 MB rule at
    // commit: pulld's pulls, so that a round syncs master.db once rather
    // than once per node and no pull waits for it.
    void leaveCheckpointToLastClose() { m_checkpointAtClose = false; }

    Database& database() { return m_db; }
    // The same file through the interface both backends implement.
    SqlConnection& connection() { return m_sql; }

private:
    static constexpr int kCheckpointAtClosePages = 1000;   // SQLite's default threshold
    static constexpr int kCheckpointAtCommitPages = 16384; // 64 MB of 4 KiB pages
    static int afterWalCommit(void* self, sqlite3* db, const char* name, int pages);
    // node_pacing's row, in the caller's transaction.
    void writePacedPush(const std::string& node, std::int64_t startMs);

    Database m_db;
    SqliteConnection m_sql{m_db};
    int m_walPages = 0; // the WAL's size after this connection's last commit
    bool m_checkpointAtClose = true;
    // What addCountersLater and the admissions of keepSessionNotes keep for
    // the next write transaction.
    struct Pending {
        std::vector<CounterDelta> counters;
        // (node, epoch hex) → (when its session began, from where)
        std::map<std::pair<std::string, std::string>, std::pair<std::int64_t, std::string>> seen;
        std::map<std::string, std::int64_t> paced; // node → its on-time push's start
        bool empty() const { return counters.empty() && seen.empty() && paced.empty(); }
    };
    Pending m_pending;
    bool m_keepSessionNotes = false;
    // Inside the caller's transaction: m_pending, which the caller clears
    // once its commit returned.
    void writePending();
    // An admission that changes nothing but its notes, decided in a read
    // transaction (keepSessionNotes); nullopt when it must write.
    std::optional<SessionAdmission> admitWithoutWriting(const SessionStart& start);
    std::size_t m_rowsPerInsert = kRowsPerInsert;
};

// "<state dir>/master.db"
std::string masterStorePath(const std::string& stateDir);
// Where the node keys of the master.db at masterDbPath are:
// $FERRY_KEYS_DIR/node-keys.db, else "<master.db's directory>-keys/node-keys.db"
// (besideStateDirectory)
// (/var/lib/ferry-keys/node-keys.db for /var/lib/ferry/master.db). A
// directory beside the state directory and not in it: /var/lib/ferry
// belongs to user ferry, which could rename a directory inside it and put
// its own in place; /var/lib is root's.
std::string nodeKeysPath(const std::string& masterDbPath);
// A file a master keeps beside its state directory (node keys, the
// AuthorizedKeysCommand helper's view): in $<envName> when set, else in
// "<master.db's directory><dirSuffix>"; named fileName for a master.db, and
// "<its name>.<fileName>" for a store file of another name (tests keep
// several masters' files in one directory).
std::string besideStateDirectory(const std::string& masterDbPath, const char* envName, const std::string& dirSuffix,
                                 const std::string& fileName);

} // namespace ferry
