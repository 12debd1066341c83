#pragma once
// The records the built-in sampler writes over a stretch of time at a 60 s
// period: one sampleSystem() per minute, encoded as the sampler encodes it.
// Real /proc payloads; 60 snapshots taken now are reused round the clock
// (with each minute's own timestamp), so a week takes a second to build.

#include <cstdint>
#include <vector>

#include "ferry/Wire.h"

namespace benchsupport {

std::vector<ferry::Record> samplerBacklog(int minutes);

struct BacklogFigures {
    std::uint64_t records = 0;
    std::uint64_t payloadBytes = 0; // kind + payload of every record
};
BacklogFigures figuresOf(const std::vector<ferry::Record>& records);

} // namespace benchsupport

#include <string>

namespace benchsupport {

// Where a backlog's time goes, each stage run alone on the same records
// and batches as the session makes them (a scratch spool and master.db in
// dir): the session overlaps them (a window of batches in flight), so
// their sum is the serial cost, not the session's wall time.
struct StageTimes {
    double nodeReadsMs = 0;    // Spool::readAfter, batch by batch
    double encodeMs = 0;       // encode + frame on the node, decode on the master
    double cryptoMs = 0;       // the SSH cipher (chacha20-poly1305) over the bytes, both ends
    double masterWritesMs = 0; // MasterStore::storeBatch (a transaction, synchronous=FULL)
    // The same batches stored as the session groups them at most (the
    // node's window per transaction: MasterStore::storeBatches).
    double masterGroupedMs = 0;
    unsigned groupedBy = 0;
    // A batch to a transaction, MasterStore::kRowsPerInsert records to an
    // INSERT (what storeBatches does) against one record to an INSERT.
    double masterMultiRowMs = 0;
    double masterSingleRowMs = 0;
    // The floor of any SQLite store of these records on this disk: the same
    // rows into a table with no index, in one transaction, synchronous=OFF
    // (the CPU alone) and FULL (durable: what an Ack needs).
    double sqliteFloorMs = 0;
    double durableFloorMs = 0;
    double nodeAcksMs = 0; // Spool::acknowledge per Ack (a transaction on the node)
    std::uint64_t batches = 0;
    std::string frames; // the Batch frames the session sends
};
StageTimes measureStages(const std::vector<ferry::Record>& records, std::size_t batchRecords, std::size_t batchBytes,
                         const std::string& dir, unsigned window = 4);

void printStages(const StageTimes& t, double wireMs);

} // namespace benchsupport
