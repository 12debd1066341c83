#include "SamplerBacklog.h"

#include "Samplers.h"
#include "ferry/Clock.h"
#include "ferry/Limits.h"
#include "ferry/SampleCodec.h"

namespace benchsupport {

std::vector<ferry::Record> samplerBacklog(int minutes)
{
    constexpr int kSnapshots = 60;
    std::vector<std::vector<ferry::metrics::Sample>> snapshots;
    const std::int64_t start = ferry::nowMs() - static_cast<std::int64_t>(minutes) * 60000;
    for (int i = 0; i < kSnapshots && i < minutes; ++i)
        snapshots.push_back(sampler::sampleSystem({}, start + static_cast<std::int64_t>(i) * 60000));
    std::vector<ferry::Record> out;
    for (int m = 0; m < minutes; ++m) {
        const std::int64_t at = start + static_cast<std::int64_t>(m) * 60000;
        auto samples = snapshots[static_cast<std::size_t>(m % kSnapshots)];
        for (auto& s : samples)
            if (s.timeMs != 0)
                s.timeMs = at;
        for (auto& payload : ferry::metrics::encodeSamples(samples, at, ferry::kMaxRecordPayload))
            out.push_back({0, at, std::string(ferry::metrics::kMetricsKind), std::move(payload)});
    }
    return out;
}

BacklogFigures figuresOf(const std::vector<ferry::Record>& records)
{
    BacklogFigures f;
    for (const auto& r : records) {
        ++f.records;
        f.payloadBytes += r.kind.size() + r.payload.size();
    }
    return f;
}

} // namespace benchsupport

#include <openssl/evp.h>

#include <chrono>
#include <cstdio>

#include "ferry/MasterStore.h"
#include "ferry/Spool.h"

namespace benchsupport {

namespace {

using Clock = std::chrono::steady_clock;

double msSince(Clock::time_point t)
{
    return std::chrono::duration<double, std::milli>(Clock::now() - t).count();
}

// chacha20-poly1305 over the bytes in SSH-sized packets (32 KiB), sealed
// on one end and opened on the other: the cipher both libssh 0.10 and
// OpenSSH 9.2 put first.
double cipherMs(const std::string& bytes)
{
    EVP_CIPHER_CTX* ctx = EVP_CIPHER_CTX_new();
    const unsigned char key[32] = {1};
    unsigned char nonce[12] = {0};
    std::string out(32 * 1024 + 16, '\0');
    unsigned char tag[16];
    const auto t = Clock::now();
    for (int side = 0; side < 2; ++side)
        for (std::size_t off = 0; off < bytes.size(); off += 32 * 1024) {
            const int n = static_cast<int>(std::min<std::size_t>(32 * 1024, bytes.size() - off));
            int len = 0;
            EVP_CipherInit_ex(ctx, EVP_chacha20_poly1305(), nullptr, key, nonce, 1);
            EVP_CipherUpdate(ctx, reinterpret_cast<unsigned char*>(out.data()), &len,
                             reinterpret_cast<const unsigned char*>(bytes.data() + off), n);
            EVP_CipherFinal_ex(ctx, reinterpret_cast<unsigned char*>(out.data()) + len, &len);
            EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_AEAD_GET_TAG, 16, tag);
            ++nonce[0];
        }
    EVP_CIPHER_CTX_free(ctx);
    return msSince(t);
}

// The Batch frames stored `window` to a transaction into a fresh master.db,
// rowsPerInsert records to an INSERT statement.
double groupedWritesMs(const std::string& frames, unsigned window, const std::string& path,
                       std::size_t rowsPerInsert = ferry::MasterStore::kRowsPerInsert)
{
    std::vector<std::vector<ferry::Record>> batches;
    for (std::size_t off = 0; off < frames.size();) {
        ferry::Frame f;
        std::size_t used = 0;
        if (!ferry::parseFrame(std::string_view(frames).substr(off), ferry::kMaxBatchFrame, f, used))
            break;
        batches.push_back(ferry::decodeBatch(f.payload, "bench"));
        off += used;
    }
    ferry::MasterStore master(path);
    master.setRowsPerInsert(rowsPerInsert);
    master.addNode("stages", "0123456789abcdef0123456789abcdef");
    const ferry::Epoch epoch = ferry::Epoch::random();
    const auto t = Clock::now();
    for (std::size_t i = 0; i < batches.size(); i += window) {
        std::vector<ferry::BatchToStore> group;
        for (std::size_t j = i; j < std::min(batches.size(), i + window); ++j)
            group.push_back({&batches[j], ferry::BatchLane::Backlog});
        master.storeBatches("stages", epoch, group, "push");
    }
    return msSince(t);
}

// The records as bare rows: no index, one transaction; synced or not.
double sqliteFloorMs(const std::vector<ferry::Record>& records, const std::string& path, bool synced)
{
    ferry::Database db(path);
    if (!synced)
        db.exec("PRAGMA synchronous=OFF");
    db.exec("CREATE TABLE records (node TEXT, epoch TEXT, seq INTEGER, time_ms INTEGER, kind TEXT, payload BLOB)");
    const auto t = Clock::now();
    ferry::Transaction tx(db);
    ferry::Statement ins(db, "INSERT INTO records VALUES (?1, ?2, ?3, ?4, ?5, ?6)");
    ins.bind(1, "stages").bind(2, "0123456789abcdef0123456789abcdef");
    std::uint64_t seq = 0;
    for (const auto& r : records) {
        ins.rewind();
        ins.bind(3, static_cast<std::int64_t>(++seq)).bind(4, r.timeMs).bind(5, r.kind).bindBlob(6, r.payload);
        ins.run();
    }
    tx.commit();
    return msSince(t);
}

} // namespace

StageTimes measureStages(const std::vector<ferry::Record>& records, std::size_t batchRecords, std::size_t batchBytes,
                         const std::string& dir, unsigned window)
{
    StageTimes t;
    ferry::Spool spool(dir + "/stages-spool.db", ferry::SpoolLimits{1ull << 40, std::chrono::hours(24 * 365)});
    spool.appendAll(records);
    ferry::MasterStore master(dir + "/stages-master.db");
    master.addNode("stages", "0123456789abcdef0123456789abcdef");
    const ferry::Epoch epoch = spool.epoch();
    std::uint64_t cursor = 0;
    for (;;) {
        auto t0 = Clock::now();
        auto batch = spool.readAfter(cursor, batchRecords, batchBytes);
        t.nodeReadsMs += msSince(t0);
        if (batch.empty())
            break;
        cursor = batch.back().seq;
        t0 = Clock::now();
        const std::string frame = ferry::encodeFrame(ferry::MessageType::Batch, ferry::encode(batch));
        const auto decoded = ferry::decodeBatch(std::string_view(frame).substr(ferry::kFrameHeaderSize), "bench");
        t.encodeMs += msSince(t0);
        t.frames += frame;
        t0 = Clock::now();
        master.storeBatch("stages", epoch, decoded, "push");
        t.masterWritesMs += msSince(t0);
        t0 = Clock::now();
        spool.acknowledge(cursor);
        t.nodeAcksMs += msSince(t0);
        ++t.batches;
    }
    t.cryptoMs = cipherMs(t.frames);
    t.masterGroupedMs = groupedWritesMs(t.frames, window, dir + "/stages-grouped.db");
    t.groupedBy = window;
    // The same as masterWritesMs (a batch to a transaction), alternated so
    // that neither side gets the quieter moment of the machine.
    for (int run = 0; run < 2; ++run) {
        const std::string n = std::to_string(run);
        t.masterMultiRowMs += groupedWritesMs(t.frames, 1, dir + "/stages-multi" + n + ".db");
        t.masterSingleRowMs += groupedWritesMs(t.frames, 1, dir + "/stages-single" + n + ".db", 1);
    }
    t.masterMultiRowMs /= 2;
    t.masterSingleRowMs /= 2;
    t.sqliteFloorMs = sqliteFloorMs(records, dir + "/stages-floor.db", false);
    t.durableFloorMs = sqliteFloorMs(records, dir + "/stages-durable-floor.db", true);
    return t;
}

void printStages(const StageTimes& t, double wireMs)
{
    std::printf("  where the time goes (each stage alone on the same %llu batches; the session overlaps them):\n",
                static_cast<unsigned long long>(t.batches));
    std::printf("    node SQLite reads %7.1f ms | encoding %7.1f ms | crypto %6.1f ms | wire (open channel) %7.1f ms | "
                "master SQLite writes %7.1f ms | node acks %6.1f ms\n",
                t.nodeReadsMs, t.encodeMs, t.cryptoMs, wireMs, t.masterWritesMs, t.nodeAcksMs);
    std::printf("    master SQLite writes, %u batches to a transaction %7.1f ms | floor: the same rows in a bare table "
                "(no index, one transaction) %7.1f ms unsynced, %7.1f ms synced\n",
                t.groupedBy, t.masterGroupedMs, t.sqliteFloorMs, t.durableFloorMs);
    std::printf("    master SQLite writes, a batch to a transaction: %zu rows per INSERT %7.1f ms | 1 row per INSERT "
                "%7.1f ms (multi-row/single-row %.2fx; mean of 2 each, alternated)\n",
                ferry::MasterStore::kRowsPerInsert, t.masterMultiRowMs, t.masterSingleRowMs,
                t.masterMultiRowMs / t.masterSingleRowMs);
}

} // namespace benchsupport
