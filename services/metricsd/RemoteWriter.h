#pragma once
// Remote-write of everything the master stored, backlog included, with the
// samples' original timestamps (Prometheus remote-write 1.0: protobuf +
// snappy over HTTP). One run (ferry-remote-write.service, started by its
// timer) sends, per (node, epoch), the records after that stream's durable
// cursor, in the order the master stored them (records.stored_order): after
// an outage a node sends its newest records first and its backlog behind
// them, so remote-write, too, sends the newest first, and a backlog record
// stored later with a lower seq is not skipped. The cursor moves only after
// the receiver answered 2xx, so a crash or restart resends at most the
// request in flight.
//
// Failures: connection errors, timeouts, 5xx and 429 are retried with
// doubling backoff for up to retry_for; other 4xx (401, 403, 404, 413) end
// the run at once. Either way the cursor stays where it was and the next run
// resumes: nothing is skipped. Only when the receiver refuses samples
// themselves (400 out of bounds / out of order / duplicate, 500 too old
// sample: Prometheus rejects the whole request for one of them) is the
// request re-sent one record at a time, and a record refused on its own is
// skipped, counted and logged. Progress and errors are kept in
// remote-write.db for metricsd.

#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <string>
#include <vector>

#include "RemoteWriteConfig.h"
#include "StoreReader.h"
#include "ferry/Sqlite.h"

namespace metricsd {

struct HttpResult {
    long status = 0;      // 0: no HTTP answer (see error)
    std::string body;     // first bytes of the answer
    std::string error;    // transport error, when status is 0
    // A transport error that a retry cannot cure (the receiver's
    // certificate does not verify): the run ends at once.
    bool permanent = false;
};

// The system edge: one POST of a remote-write body.
class RemoteWriteSender {
public:
    virtual ~RemoteWriteSender() = default;
    virtual HttpResult post(const std::string& snappyBody) = 0;
};

// Cursors and counters (remote-write.db, owned by the writer; metricsd
// reads it read-only to export ferry_remote_write_*).
class RemoteWriteState {
public:
    RemoteWriteState(const std::string& path, bool readOnly);

    // Kept in the table's `seq` column, which holds store orders since
    // master.db version 4 (the migration made each old record's order its
    // seq, so an older cursor stays right).
    struct Cursor {
        std::uint64_t seq = 0;   // store order of the last record sent
        std::int64_t timeMs = 0; // newest sample time sent so far (the lag metric)
    };
    Cursor cursor(const std::string& node, const std::string& epoch);
    // Moves the cursor and adds to the counters in one transaction.
    void advance(const std::string& node, const std::string& epoch, Cursor to,
                 const std::map<std::string, std::int64_t>& counterDeltas);
    void count(const std::map<std::string, std::int64_t>& counterDeltas);
    std::map<std::string, std::int64_t> counters();
    // node → (epoch → cursor)
    std::map<std::string, std::map<std::string, Cursor>> cursors();

private:
    void addCounters(const std::map<std::string, std::int64_t>& deltas);
    ferry::Database m_db;
};

struct RemoteWriteResult {
    std::uint64_t samplesSent = 0;
    std::uint64_t requests = 0;
    std::uint64_t recordsRejected = 0;
    bool complete = false;  // everything stored was sent
    std::string error;      // why the run stopped early
};

class RemoteWriter {
public:
    using Sleep = std::function<void(std::chrono::milliseconds)>;
    RemoteWriter(const RemoteWriteConfig& config, StoreReader& store, RemoteWriteState& state,
                 RemoteWriteSender& sender, Sleep sleep);
    RemoteWriteResult run();

private:
    enum class Outcome { Sent, Rejected, Failed };
    Outcome send(const std::string& body, std::string& why);

    const RemoteWriteConfig& m_config;
    StoreReader& m_store;
    RemoteWriteState& m_state;
    RemoteWriteSender& m_sender;
    Sleep m_sleep;
    RemoteWriteResult m_result;
};

// The snappy-compressed WriteRequest for samples of one node (exposed for tests and the bench).
std::string encodeWriteRequest(const std::string& node, const std::vector<SequencedRecord>& records,
                               std::size_t& samples, std::size_t& unreadable);

} // namespace metricsd
