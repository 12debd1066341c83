#pragma once
// The node's durable spool (SQLite, WAL, synchronous=FULL). Records get
// strictly increasing sequence numbers that are never reused, leave only
// when a master has acknowledged them as stored, and are dropped oldest-first
// only when the size or age bound is hit: every drop is counted and logged,
// never silent. Safe for several processes at once (sampler appends while a
// transport reads).
//
// Every spool has an epoch (Epoch.h), made when the file is created and
// kept in it; (node, epoch, seq) names a record everywhere. A spool.db from
// before epochs (schema version 1) migrates in place to the legacy epoch.
//
// A spool that cannot be used — not a database, damaged, the wrong schema,
// an I/O error while opening it — is moved aside as
// spool.db.corrupt-<UTC time> (with its -wal and -shm), one error line is
// logged, and a new spool with a new epoch takes its place. The new spool
// remembers why it was made, so the next session reports the reset to the
// master (SpoolStats::resets, lastReset). A schema *newer* than this code
// knows is refused instead: it is not damage, and moving it aside would
// hide data a newer Ferry can still read.
//
// A spool is bound to where it lives: a digest of the machine's id
// (/etc/machine-id, or FERRY_MACHINE_ID_FILE) and the file's inode, kept in
// spool_info. A byte-for-byte copy (a cloned VM image with a regenerated
// machine-id, a state directory copied to another machine, a backup restored
// over the file) no longer matches at its next open: from then on it appends
// under a NEW epoch, while the records already in it keep the epoch they were
// written under. Epochs cover ranges of the one sequence (spool_epochs:
// first_seq → epoch), so no sequence is shared by two epochs; the copy and
// the original can no longer produce the same (node, epoch, seq). The copy
// is logged once (a warning naming what changed) and reported to the master
// with the next session as the spool's last reset. A session carries one
// epoch, the oldest one with records queued (sendingRange): older epochs are
// drained first, so a master sees an epoch end before the next one begins.
// The device number is not part of the binding: it can change across a
// reboot (btrfs subvolumes, LVM, disk enumeration) without any copy.

#include <chrono>
#include <cstdint>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "ferry/Epoch.h"
#include "ferry/Sqlite.h"
#include "ferry/Wire.h"

namespace ferry {

struct SpoolLimits {
    std::uint64_t maxBytes = 64ull * 1024 * 1024;
    std::chrono::seconds maxAge{7 * 24 * 3600};
};

struct SpoolStats {
    std::uint64_t records = 0;
    std::uint64_t bytes = 0;  // payload + kind bytes of queued records
    std::uint64_t lastSeq = 0;
    std::int64_t oldestMs = 0;  // 0 when empty
    std::uint64_t droppedRecords = 0;  // by either bound
    std::uint64_t droppedBytes = 0;
    std::uint64_t droppedByAge = 0;    // records, of droppedRecords
    std::uint64_t droppedBySize = 0;   // records, of droppedRecords
    Epoch epoch;
    // Spools of this node moved aside as unusable (counted from the
    // spool.db.corrupt-* files next to it), and why this spool replaced one
    // ("" when it did not). lastResetReported turns true once a master
    // stored the health report that carried it.
    std::uint64_t resets = 0;
    std::string lastReset;
    std::int64_t lastResetMs = 0;
    bool lastResetReported = true;
    // Epochs older than the current one that still have records queued
    // (after a copy: the records written before it).
    std::uint64_t olderEpochs = 0;
    std::uint64_t olderEpochRecords = 0;
};

// The records of one epoch in this spool: sequences firstSeq..lastSeq.
struct SpoolEpochRange {
    Epoch epoch;
    std::uint64_t firstSeq = 1;
    std::uint64_t lastSeq = 0; // of the current epoch: the last appended so far
    bool current = true;       // new records are appended under it
    bool laterQueued = false;  // a later epoch has records queued too
};

// Schema versions of spool.db (PRAGMA user_version): 0 and no tables is a
// new file; 0 with tables is the release before epochs (version 1); 2 has
// one epoch for the whole file; 3 has epoch ranges and the binding.
constexpr int kSpoolSchemaVersion = 3;

// FERRY_MACHINE_ID_FILE, else /etc/machine-id.
std::string machineIdFile();

class Spool {
public:
    Spool(const std::string& path, SpoolLimits limits, const std::string& machineIdPath = machineIdFile());

    // Appends one record and enforces the bounds; returns its sequence.
    std::uint64_t append(const std::string& kind, const std::string& payload, std::int64_t timeMs);
    // Appends several in one transaction (one sampler run).
    std::vector<std::uint64_t> appendAll(const std::vector<Record>& records);
    // Records with seq > cursor, oldest first, at most maxRecords and about
    // maxBytes (always at least one record if any is queued).
    std::vector<Record> readAfter(std::uint64_t cursor, std::size_t maxRecords, std::size_t maxBytes);
    // The newest records with seq ≤ upTo, returned oldest first: at most
    // maxRecords and about maxBytes (at least one if any is queued). The
    // head lane of a session after an outage (Session.h).
    std::vector<Record> readNewest(std::uint64_t upTo, std::size_t maxRecords, std::size_t maxBytes);
    // Deletes every record with seq ≤ upTo: the master has stored them.
    std::uint64_t acknowledge(std::uint64_t upTo);
    // Deletes the records with first ≤ seq ≤ last (a head batch the master
    // stored), leaving older ones queued.
    std::uint64_t acknowledgeRange(std::uint64_t first, std::uint64_t last);
    // Deletes the records of every [first, last] range in one transaction:
    // the Acks a session read together (a head batch's own range, a backlog
    // batch's [1, stored_up_to]). Returns how many were deleted.
    std::uint64_t acknowledgeRanges(const std::vector<std::pair<std::uint64_t, std::uint64_t>>& ranges);
    SpoolStats stats();
    // The current epoch (new records get it), as of this open.
    const Epoch& epoch() const { return m_epoch; }
    // What the next session carries: the epoch of the oldest queued record,
    // or the current epoch when no older one has records queued.
    SpoolEpochRange sendingRange();
    // Every epoch of this spool, oldest first.
    std::vector<SpoolEpochRange> epochRanges();
    // A master stored the health report that told it about the last reset.
    void markResetReported();
    // This connection's PRAGMA synchronous now: 1 (NORMAL) after an Ack until
    // the next other write, else 2 (FULL). For tests of that rule.
    int synchronousMode();

private:
    void enforceLimits(std::int64_t nowMs);
    void addMeta(const char* key, std::int64_t delta);
    // Acks commit at NORMAL, everything else at FULL (Spool.cpp says why).
    void commitUnsynced();
    void commitSynced();

    std::unique_ptr<Database> m_db;
    bool m_unsynced = false; // the connection is at synchronous=NORMAL
    SpoolLimits m_limits;
    Epoch m_epoch;
};

} // namespace ferry
