#pragma once
// The node's durable spool (SQLite, WAL). Records get strictly increasing
// sequence numbers that are never reused, leave only when a master has
// acknowledged them as stored, and are dropped oldest-first only when the
// size or age bound is hit: every drop is counted and logged, never silent.
// Safe for several processes at once (sampler appends while a transport reads).

#include <chrono>
#include <cstdint>
#include <string>
#include <vector>

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
    std::uint64_t droppedRecords = 0;
    std::uint64_t droppedBytes = 0;
};

class Spool {
public:
    Spool(const std::string& path, SpoolLimits limits);

    // Appends one record and enforces the bounds; returns its sequence.
    std::uint64_t append(const std::string& kind, const std::string& payload, std::int64_t timeMs);
    // Appends several in one transaction (one sampler run).
    std::vector<std::uint64_t> appendAll(const std::vector<Record>& records);
    // Records with seq > cursor, oldest first, at most maxRecords and about
    // maxBytes (always at least one record if any is queued).
    std::vector<Record> readAfter(std::uint64_t cursor, std::size_t maxRecords, std::size_t maxBytes);
    // Deletes every record with seq ≤ upTo: the master has stored them.
    std::uint64_t acknowledge(std::uint64_t upTo);
    SpoolStats stats();

private:
    void enforceLimits(std::int64_t nowMs);
    void addMeta(const char* key, std::int64_t delta);

    Database m_db;
    SpoolLimits m_limits;
};

} // namespace ferry
