// The push protocol between pushd's cycle and collectord's session, in one
// process over a socketpair, with real SQLite files on both sides.

#include <sys/ioctl.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <thread>

#include <gtest/gtest.h>

#include "Collector.h"
#include "CollectorSession.h"
#include "Fallback.h"
#include "PushCycle.h"
#include "ferry/Bus.h"
#include "ferry/Crypto.h"
#include "ferry/Error.h"
#include "ferry/MasterStore.h"
#include "ferry/Session.h"
#include "ferry/TcpServer.h"
#include "support/TestSupport.h"

namespace ferry {
namespace {

// Bytes waiting to be read on a socket.
int bytesQueued(int fd)
{
    int n = -1;
    return ::ioctl(fd, FIONREAD, &n) == 0 ? n : -1;
}

class APushSession : public ::testing::Test {
protected:
    void SetUp() override
    {
        int sv[2];
        ASSERT_EQ(::socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
        node = std::make_unique<FdStream>(sv[0], sv[0], "collector", true);
        master = std::make_unique<FdStream>(sv[1], sv[1], "node", true);
        masterFd = sv[1];
        nodeFd = sv[0];
        secret = generateSecret();
        MasterStore(dir / "master.db").addNode("web1", secret);
        Spool spool(dir / "spool.db", {});
        for (int i = 0; i < 120; ++i)
            spool.append("k", "v" + std::to_string(i), nowMs());
    }

    pushd::PushCycleOptions options(const std::string& s)
    {
        pushd::PushCycleOptions o;
        o.nodeName = "web1";
        o.secret = s;
        o.batchRecords = 50;
        o.ioTimeout = std::chrono::seconds(5);
        return o;
    }

    // A master played by hand: the handshake, the node's Report, an empty
    // Policy (with the Policy first, Session.h: the Policy, then the
    // Report); the test goes on from the node's first batch.
    void openAsMaster()
    {
        MasterStore store(dir / "master.db");
        const auto hs = masterHandshake(*master, store, MasterSessionOptions{});
        if ((hs.capabilities & kCapEarlyPolicy) == 0)
            readFrame(*master, deadline()); // Report
        writeFrame(*master, MessageType::Policy, encode(PolicyMessage{}), deadline());
        if ((hs.capabilities & kCapEarlyPolicy) != 0) {
            ASSERT_EQ(readFrame(*master, deadline()).type, MessageType::Report);
            queuedBehindReport = bytesQueued(masterFd);
        }
    }
    // openAsMaster with the Policy first: the bytes that came in the write
    // of the node's Report (its first batch, and its Bye when that is its
    // last).
    int queuedBehindReport = -1;
    // The node's Auth, played by hand for web1 as master id "m", offering
    // capabilities; returns the Hello it answered.
    HelloMessage proveAsNode(std::uint32_t capabilities, AuthMessage& auth)
    {
        const auto hello = decodeHello(readFrame(*node, deadline()).payload, "collector");
        auth.node = "web1";
        auth.nonce = randomBytes(kNonceSize);
        auth.version = kSessionVersion;
        auth.capabilities = capabilities;
        auth.masterId = "m";
        auth.epoch = Epoch::random().bytes();
        auth.mac = sessionProofV3(deriveMasterKey(secret, "m"), "node", "push", kSessionVersion, capabilities,
                                  hello.challenge, auth.nonce, "web1", auth.epoch, "m", "");
        writeFrame(*node, MessageType::Auth, encode(auth), deadline());
        return hello;
    }
    static Deadline deadline() { return deadlineIn(std::chrono::seconds(5)); }
    // One push cycle from the spool at path to collectord's session.
    pushd::PushCycleResult pushToCollector(const std::string& path, const pushd::PushCycleOptions& o)
    {
        std::thread server([&] {
            MasterStore store(dir / "master.db");
            collectord::serveSession(*master, store, {});
        });
        Spool spool(path, {});
        const auto r = pushd::runPushCycle(*node, spool, o);
        server.join();
        return r;
    }
    // The fixture's 120 records pushed by a node offering nodeCapabilities
    // to a master taking masterCapabilities: every record and the report
    // arrive.
    void pushWithCapabilities(std::uint32_t nodeCapabilities, std::uint32_t masterCapabilities)
    {
        std::thread server([&] {
            MasterStore store(dir / "master.db");
            MasterSessionOptions o;
            o.capabilities = masterCapabilities;
            o.ioTimeout = std::chrono::seconds(5);
            try {
                EXPECT_EQ(runMasterSession(*master, store, o).records, 120u);
            } catch (const std::exception& e) {
                ADD_FAILURE() << "the master's session failed: " << e.what();
            }
        });
        Spool spool(dir / "spool.db", {});
        auto o = options(secret);
        o.report.transportMode = "push";
        o.capabilities = nodeCapabilities;
        pushd::PushCycleResult r;
        try {
            r = pushd::runPushCycle(*node, spool, o);
        } catch (const std::exception& e) {
            ADD_FAILURE() << "the node's session failed: " << e.what();
        }
        node.reset(); // a master still waiting sees the end
        server.join();
        EXPECT_EQ(r.recordsNew, 120u);
        EXPECT_EQ(spool.stats().records, 0u);
        MasterStore store(dir / "master.db");
        EXPECT_EQ(store.countRecords("web1"), 120u);
        ASSERT_TRUE(store.report("web1").has_value());
        EXPECT_EQ(store.report("web1")->spoolRecords, 120u);
    }

    test::TempDir dir;
    std::unique_ptr<FdStream> node, master;
    int masterFd = -1; // master's end of the socketpair (owned by master)
    int nodeFd = -1;   // the node's end (owned by node)
    std::string secret;
};

TEST_F(APushSession, StoresEveryRecordAndEmptiesTheSpool)
{
    std::thread server([&] {
        MasterStore store(dir / "master.db");
        collectord::serveSession(*master, store, {});
    });
    Spool spool(dir / "spool.db", {});
    const auto r = pushd::runPushCycle(*node, spool, options(secret));
    server.join();
    EXPECT_EQ(r.recordsSent, 120u);
    EXPECT_EQ(r.batches, 3u);
    EXPECT_EQ(spool.stats().records, 0u);
    EXPECT_EQ(MasterStore(dir / "master.db").countRecords("web1"), 120u);
}

TEST_F(APushSession, ReportsItsProgressBeforeTheFirstBatchAndAfterEveryAck)
{
    std::thread server([&] {
        MasterStore store(dir / "master.db");
        collectord::serveSession(*master, store, {});
    });
    Spool spool(dir / "spool.db", {});
    const std::uint64_t queuedBytes = spool.stats().bytes;
    std::vector<SessionProgress> seen;
    auto o = options(secret);
    o.onProgress = [&](const SessionProgress& p) { seen.push_back(p); };
    pushd::runPushCycle(*node, spool, o);
    server.join();
    // 120 records in batches of 50: nothing done, then 50, 100, 120.
    ASSERT_EQ(seen.size(), 4u);
    const std::uint64_t expected[] = {0, 50, 100, 120};
    for (std::size_t i = 0; i < seen.size(); ++i) {
        EXPECT_EQ(seen[i].recordsDone, expected[i]);
        EXPECT_EQ(seen[i].recordsTotal, 120u);
        EXPECT_EQ(seen[i].bytesTotal, queuedBytes);
        if (i > 0) {
            EXPECT_GT(seen[i].bytesDone, seen[i - 1].bytesDone);
        }
    }
    EXPECT_EQ(seen.back().bytesDone, queuedBytes);
}

TEST_F(APushSession, IsRefusedWithAWrongSecretAndStoresNothing)
{
    std::string serverError;
    std::thread server([&] {
        MasterStore store(dir / "master.db");
        try {
            collectord::serveSession(*master, store, {});
        } catch (const AuthError& e) {
            serverError = e.what();
        }
    });
    Spool spool(dir / "spool.db", {});
    EXPECT_THROW(pushd::runPushCycle(*node, spool, options(generateSecret())), AuthError);
    server.join();
    EXPECT_EQ(serverError, "Refused node 'web1' (node): wrong proof of its key");
    EXPECT_EQ(spool.stats().records, 120u);
    EXPECT_EQ(MasterStore(dir / "master.db").countRecords("web1"), 0u);
}

TEST_F(APushSession, AnswersAnUnknownNodeExactlyAsAWrongProof)
{
    // What the peer sees must not tell enrolled names from others.
    auto attempt = [&](const std::string& nodeName, const std::string& s) {
        int sv[2];
        EXPECT_EQ(::socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
        FdStream n(sv[0], sv[0], "collector", true);
        FdStream m(sv[1], sv[1], "node", true);
        std::thread server([&] {
            MasterStore store(dir / "master.db");
            try {
                collectord::serveSession(m, store, {});
            } catch (const AuthError&) {
            }
        });
        Spool spool(dir / "spool.db", {});
        auto o = options(s);
        o.nodeName = nodeName;
        std::string error;
        try {
            pushd::runPushCycle(n, spool, o);
        } catch (const AuthError& e) {
            error = e.what();
        }
        server.join();
        return error;
    };
    const std::string unknown = attempt("nobody", secret);
    const std::string wrong = attempt("web1", generateSecret());
    EXPECT_FALSE(unknown.empty());
    EXPECT_EQ(unknown, wrong);
}

TEST_F(APushSession, EscapesAnUntrustedNodeNameInItsErrors)
{
    std::string serverError;
    std::thread server([&] {
        MasterStore store(dir / "master.db");
        try {
            collectord::serveSession(*master, store, {});
        } catch (const AuthError& e) {
            serverError = e.what();
        }
    });
    Spool spool(dir / "spool.db", {});
    auto o = options(secret);
    o.nodeName = "evil\nname\x1b[31m";
    EXPECT_THROW(pushd::runPushCycle(*node, spool, o), AuthError);
    server.join();
    EXPECT_EQ(serverError.find('\n'), std::string::npos) << serverError;
    EXPECT_EQ(serverError.find('\x1b'), std::string::npos) << serverError;
    EXPECT_NE(serverError.find("evil\\x0aname"), std::string::npos) << serverError;
}

TEST_F(APushSession, StoresOnceWhenTheCollectorDiesBetweenCommitAndAck)
{
    // The failpoint's moment, in-process: the first batch is committed and
    // the session ends before its Ack. The node keeps the batch, sends it
    // again, and the master counts it as already stored.
    std::thread server([&] {
        MasterStore store(dir / "master.db");
        collectord::SessionOptions o;
        o.afterCommit = [] { throw std::runtime_error("killed after the commit"); };
        try {
            collectord::serveSession(*master, store, o);
        } catch (const std::runtime_error&) {
        }
        master.reset();
    });
    Spool spool(dir / "spool.db", {});
    EXPECT_ANY_THROW(pushd::runPushCycle(*node, spool, options(secret)));
    server.join();
    EXPECT_EQ(spool.stats().records, 120u) << "nothing was acked, nothing may leave";
    EXPECT_EQ(MasterStore(dir / "master.db").countRecords("web1"), 50u) << "the first batch was committed";

    int sv[2];
    ASSERT_EQ(::socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
    FdStream n(sv[0], sv[0], "collector", true);
    FdStream m(sv[1], sv[1], "node", true);
    std::thread again([&] {
        MasterStore store(dir / "master.db");
        collectord::serveSession(m, store, {});
    });
    const auto r = pushd::runPushCycle(n, spool, options(secret));
    again.join();
    EXPECT_EQ(r.duplicates, 50u);
    EXPECT_EQ(r.recordsNew, 70u);
    EXPECT_EQ(spool.stats().records, 0u);
    EXPECT_EQ(MasterStore(dir / "master.db").countRecords("web1"), 120u);
}

// The master's store, counting the batches of each transaction (group
// commit); everything else is the real MasterStore's.
class GroupCountingStore : public SessionStore {
public:
    explicit GroupCountingStore(const std::string& path) : m_store(path) {}
    std::vector<std::size_t> groups;
    std::vector<pid_t> threads;   // the thread of each group's commit (kernel ids: never reused at once)
    std::vector<bool> withReport; // whether each group's transaction stored the node's report
    // Calls that start a session: admitSession, and the ones it replaced.
    int admissions = 0;
    int separateStartCalls = 0; // pushPacing, notePacedPush, pullCursor, storeReport
    std::function<void()> beforeFirstGroup;

    std::optional<std::string> nodeSecret(const std::string& name) override { return m_store.nodeSecret(name); }
    SessionAdmission admitSession(const SessionStart& start) override
    {
        ++admissions;
        return m_store.admitSession(start);
    }
    void storeReport(const std::string& node, const Epoch& epoch, const std::string& via, const std::string& address,
                     const HealthReport& report) override
    {
        ++separateStartCalls;
        m_store.storeReport(node, epoch, via, address, report);
    }
    AckMessage storeBatch(const std::string& node, const Epoch& epoch, const std::vector<Record>& records,
                          const std::string& via, BatchLane lane) override
    {
        groups.push_back(1);
        return m_store.storeBatch(node, epoch, records, via, lane);
    }
    std::vector<AckMessage> storeBatches(const std::string& node, const Epoch& epoch,
                                         const std::vector<BatchToStore>& batches, const std::string& via,
                                         const WithBatches& with) override
    {
        if (groups.empty() && beforeFirstGroup)
            beforeFirstGroup();
        groups.push_back(batches.size());
        threads.push_back(::gettid());
        withReport.push_back(with.report != nullptr);
        return m_store.storeBatches(node, epoch, batches, via, with);
    }
    std::uint64_t pullCursor(const std::string& node, const Epoch& epoch) override
    {
        ++separateStartCalls;
        return m_store.pullCursor(node, epoch);
    }
    void setPullCursor(const std::string& node, const Epoch& epoch, std::uint64_t cursor) override
    {
        m_store.setPullCursor(node, epoch, cursor);
    }
    PushPacing pushPacing(const std::string& node) override
    {
        ++separateStartCalls;
        return m_store.pushPacing(node);
    }
    void notePacedPush(const std::string& node, std::int64_t startMs) override
    {
        ++separateStartCalls;
        m_store.notePacedPush(node, startMs);
    }
    void addCounters(const std::vector<CounterDelta>& deltas) override { m_store.addCounters(deltas); }
    std::vector<CounterValue> counters() override { return m_store.counters(); }

private:
    MasterStore m_store;
};

// The node's end of the socketpair, counting the batch frames it has put on
// the wire (the session writes whole frames, one or more per writeAll: the
// first batch travels behind the Report when the Policy came first).
class BatchCountingStream : public ByteStream {
public:
    explicit BatchCountingStream(ByteStream& inner) : m_inner(inner) {}
    std::size_t readSome(void* buf, std::size_t size, Deadline deadline) override
    {
        return m_inner.readSome(buf, size, deadline);
    }
    void writeAll(const void* buf, std::size_t size, Deadline deadline) override
    {
        m_inner.writeAll(buf, size, deadline);
        const auto* bytes = static_cast<const unsigned char*>(buf);
        for (std::size_t at = 0; at + kFrameHeaderSize <= size;) {
            const unsigned char* header = bytes + at;
            if (header[3] == static_cast<unsigned char>(MessageType::Batch) ||
                header[3] == static_cast<unsigned char>(MessageType::HeadBatch))
                ++batchFrames;
            const std::size_t length = (std::size_t{header[4]} << 24) | (std::size_t{header[5]} << 16) |
                                       (std::size_t{header[6]} << 8) | std::size_t{header[7]};
            at += kFrameHeaderSize + length;
        }
    }
    bool hasInput() override { return m_inner.hasInput(); }
    std::string peer() const override { return m_inner.peer(); }

    std::atomic<int> batchFrames{0};

private:
    ByteStream& m_inner;
};

// Spools records 120..count-1 behind the fixture's 120; returns the bytes
// of the backlog Batch frames after record `after`, up to record `upTo`,
// encoded as the node encodes them from the same rows (batches of 50).
std::size_t spoolUpTo(const std::string& path, int count, std::uint64_t after, std::uint64_t upTo)
{
    Spool spool(path, {});
    for (int i = 120; i < count; ++i)
        spool.append("k", "v" + std::to_string(i), nowMs());
    std::size_t bytes = 0;
    for (; after < upTo; after += 50)
        bytes += encodeFrame(MessageType::Batch, encode(spool.readAfter(after, 50, kMaxBatchBytes))).size();
    return bytes;
}

// 400 records in batches of 50, newest first: the head lane, then seven
// backlog batches, all within the node's window (8), so all on the wire at
// once. The master commits the head at once, alone; the store holds that
// commit until the node has written all eight frames and the session has
// read every byte of them. The seven backlog batches arrived while the head
// committed: they go in the next transaction, together.
struct GroupedPush {
    pushd::PushCycleResult result;
    bool readDuringCommit = false;
    pid_t sessionThread = 0;
};

GroupedPush pushInGroupsOfOneAndSeven(const std::string& spoolPath, GroupCountingStore& store, ByteStream& node,
                                      FdStream& master, int masterFd, const pushd::PushCycleOptions& o)
{
    spoolUpTo(spoolPath, 400, 0, 0);
    BatchCountingStream counted(node);
    GroupedPush out;
    store.beforeFirstGroup = [&] {
        // The deadline only bounds a failure.
        out.readDuringCommit = test::waitUntil([&] { return counted.batchFrames == 8 && bytesQueued(masterFd) == 0; },
                                               std::chrono::seconds(20), std::chrono::milliseconds(1));
    };
    std::thread server([&] {
        out.sessionThread = ::gettid();
        collectord::serveSession(master, store, {});
    });
    Spool spool(spoolPath, {});
    out.result = pushd::runPushCycle(counted, spool, o);
    server.join();
    return out;
}

TEST_F(APushSession, StoresTheBatchesThatArriveWhileItCommitsInTheNextTransaction)
{
    GroupCountingStore store(dir / "master.db");
    const auto pushed = pushInGroupsOfOneAndSeven(dir / "spool.db", store, *node, *master, masterFd, options(secret));
    const auto& r = pushed.result;
    EXPECT_TRUE(pushed.readDuringCommit) << "the session reads the batches that follow while the head commits";
    EXPECT_EQ(r.batches, 8u);
    EXPECT_EQ(r.recordsSent, 400u);
    EXPECT_EQ(r.recordsNew, 400u);
    EXPECT_EQ(Spool(dir / "spool.db", {}).stats().records, 0u);
    EXPECT_EQ(MasterStore(dir / "master.db").countRecords("web1"), 400u);
    EXPECT_EQ(store.groups, (std::vector<std::size_t>{1, 7}))
        << "the head alone, at once; then the seven that arrived during its commit, in one transaction";
}

TEST_F(APushSession, CommitsEveryGroupOnOneThreadOfItsOwn)
{
    // Both commits of the groups {1, 7} run on the same thread, and not on
    // the thread that reads the session.
    GroupCountingStore store(dir / "master.db");
    const auto pushed = pushInGroupsOfOneAndSeven(dir / "spool.db", store, *node, *master, masterFd, options(secret));
    EXPECT_EQ(pushed.result.recordsNew, 400u);
    ASSERT_EQ(store.groups, (std::vector<std::size_t>{1, 7}));
    ASSERT_EQ(store.threads.size(), 2u);
    EXPECT_EQ(store.threads[0], store.threads[1]) << "one commit thread serves the whole session";
    EXPECT_NE(store.threads[0], pushed.sessionThread) << "the session reads on while a group commits";
}

TEST_F(APushSession, CommitsABatchThatCameWithTheByeOnItsOwnThreadTogetherWithTheReport)
{
    // The fixture's 120 records in one batch: the node writes its Report,
    // the batch and its Bye at once (policy first). The session reads the
    // Bye before it commits, so the commit is its last and runs on the
    // session's thread (no thread started for it), and the Report is
    // stored in the batch's transaction, not in one of its own.
    GroupCountingStore store(dir / "master.db");
    pid_t sessionThread = 0;
    std::thread server([&] {
        sessionThread = ::gettid();
        collectord::serveSession(*master, store, {});
    });
    Spool spool(dir / "spool.db", {});
    auto o = options(secret);
    o.batchRecords = 200;
    o.report.transportMode = "push";
    const auto r = pushd::runPushCycle(*node, spool, o);
    server.join();
    EXPECT_EQ(r.recordsNew, 120u);
    ASSERT_EQ(store.groups, (std::vector<std::size_t>{1}));
    EXPECT_EQ(store.threads[0], sessionThread) << "a session's last commit needs no thread of its own";
    EXPECT_EQ(store.withReport, (std::vector<bool>{true})) << "the Report goes in the batch's transaction";
    EXPECT_EQ(store.separateStartCalls, 0) << "no transaction of its own for the Report, the floor or the epoch";
    EXPECT_EQ(store.admissions, 1);
    const auto stored = MasterStore(dir / "master.db").report("web1");
    ASSERT_TRUE(stored.has_value());
    EXPECT_EQ(stored->spoolRecords, 120u);
    EXPECT_EQ(stored->transportMode, "push");
    EXPECT_EQ(MasterStore(dir / "master.db").countRecords("web1"), 120u);
}

TEST_F(APushSession, StoresTheReportOfASessionThatFailsAfterIt)
{
    // Policy first, the Report waits for the first batch's transaction. A
    // node that follows its Report with a frame the master does not take
    // fails the session, and its Report is stored all the same.
    std::thread server([&] {
        MasterStore store(dir / "master.db");
        EXPECT_THROW(collectord::serveSession(*master, store, {}), ProtocolError);
    });
    NodeSessionOptions n;
    n.nodeName = "web1";
    n.secret = secret;
    n.masterId = "ferry-master";
    std::string peerName;
    EXPECT_NE(nodeHandshake(*node, Epoch::random(), n, peerName) & kCapEarlyPolicy, 0u);
    EXPECT_EQ(readFrame(*node, deadline()).type, MessageType::Policy);
    HealthReport report;
    report.spoolRecords = 7;
    report.transportMode = "push";
    const std::string frames = encodeFrame(MessageType::Report, encode(report)) +
                               encodeFrame(MessageType::Hello, encode(HelloMessage{"x", "y"}));
    node->writeAll(frames.data(), frames.size(), deadline());
    server.join();
    const auto stored = MasterStore(dir / "master.db").report("web1");
    ASSERT_TRUE(stored.has_value()) << "the Report of a failed session";
    EXPECT_EQ(stored->spoolRecords, 7u);
    EXPECT_EQ(stored->transportMode, "push");
}

TEST_F(APushSession, DecidesAndNotesThePeriodFloorInTheTransactionOfItsAdmission)
{
    // Under a 240 s floor, the first push is on time (noted), the second,
    // at once after it, early: told when to come back, its records stored
    // all the same. Each session starts with one call of the store.
    GroupCountingStore store(dir / "master.db");
    collectord::SessionOptions floor;
    floor.minPushPeriodS = 240;
    auto push = [&](const std::string& spoolPath) {
        std::thread server([&] { collectord::serveSession(*master, store, floor); });
        Spool spool(spoolPath, {});
        const auto r = pushd::runPushCycle(*node, spool, options(secret));
        server.join();
        return r;
    };
    const std::int64_t before = nowMs();
    const auto first = push(dir / "spool.db");
    EXPECT_EQ(first.recordsNew, 120u);
    EXPECT_GE(MasterStore(dir / "master.db").pushPacing("web1").lastPacedPushMs, before) << "the on-time push noted";
    const std::int64_t noted = MasterStore(dir / "master.db").pushPacing("web1").lastPacedPushMs;

    int sv[2];
    ASSERT_EQ(::socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
    node = std::make_unique<FdStream>(sv[0], sv[0], "collector", true);
    master = std::make_unique<FdStream>(sv[1], sv[1], "node", true);
    {
        Spool other(dir / "other.db", {});
        other.append("k", "v", nowMs());
    }
    const auto second = push(dir / "other.db");
    EXPECT_EQ(second.recordsNew, 1u) << "an early push's records are stored";
    EXPECT_EQ(second.nextPushAtMs, noted + 240'000) << "told to come back when the floor is up";
    EXPECT_EQ(MasterStore(dir / "master.db").pushPacing("web1").lastPacedPushMs, noted)
        << "an early push does not move the floor's clock";
    EXPECT_EQ(store.admissions, 2);
    EXPECT_EQ(store.separateStartCalls, 0);
}

TEST_F(APushSession, ReadsNoMoreThanTheNextGroupWhileACommitRuns)
{
    // A node that keeps 20 batches in flight (more than kSessionWindow)
    // puts 1000 records on the wire at once: the head (951–1000) and 19
    // backlog batches. While the head's commit is held, the session reads
    // the next group, 8 batches (records 1–400), and then nothing more: the
    // 11 frames of records 401–950 stay in the socket until the commit is
    // done (with the Bye that went in the write of the last one). Then
    // every record is stored, each group at most 8 batches.
    const std::size_t left = spoolUpTo(dir / "spool.db", 1000, 400, 950) + encodeFrame(MessageType::Bye, {}).size();
    GroupCountingStore store(dir / "master.db");
    BatchCountingStream counted(*node);
    bool stoppedAtTheGroup = false;
    bool stayedThere = false;
    store.beforeFirstGroup = [&] {
        const auto atTheGroup = [&] {
            return counted.batchFrames == 20 && bytesQueued(masterFd) == static_cast<int>(left);
        };
        stoppedAtTheGroup = test::waitUntil(atTheGroup, std::chrono::seconds(20), std::chrono::milliseconds(1));
        // It must stay there while this commit runs: a short look is enough
        // to see a session that reads on.
        stayedThere = !test::waitUntil([&] { return !atTheGroup(); }, std::chrono::milliseconds(300),
                                       std::chrono::milliseconds(1));
    };
    std::thread server([&] { collectord::serveSession(*master, store, {}); });
    Spool spool(dir / "spool.db", {});
    auto o = options(secret);
    o.window = 20;
    const auto r = pushd::runPushCycle(counted, spool, o);
    server.join();
    EXPECT_TRUE(stoppedAtTheGroup) << "the head committing, 8 batches read, " << left << " bytes left in the socket";
    EXPECT_TRUE(stayedThere) << "nothing more read while the commit runs";
    EXPECT_EQ(r.batches, 20u);
    EXPECT_EQ(r.recordsNew, 1000u);
    EXPECT_EQ(spool.stats().records, 0u);
    EXPECT_EQ(MasterStore(dir / "master.db").countRecords("web1"), 1000u);
    ASSERT_GE(store.groups.size(), 3u);
    EXPECT_EQ(store.groups[0], 1u);
    EXPECT_EQ(store.groups[1], 8u);
    std::size_t batches = 0;
    for (const auto g : store.groups) {
        batches += g;
        EXPECT_LE(g, 8u) << "a group never holds more than 8 batches";
    }
    EXPECT_EQ(batches, 20u);
}

TEST_F(APushSession, DeletesTheRecordsOfTheAcksReadTogetherAndNoOthersWhenALaterOneIsBad)
{
    // 120 records in batches of 50, newest first: the head 71–120, then the
    // backlog 1–50 and 51–70, all in one window. The master answers all
    // three at once: two good Acks and a third that names the wrong record.
    std::thread server([&] {
        openAsMaster();
        for (int i = 0; i < 3; ++i)
            readFrame(*master, deadline(), kMaxBatchFrame);
        const std::string acks = encodeFrame(MessageType::Ack, encode(AckMessage{120, 50, 0})) +
                                 encodeFrame(MessageType::Ack, encode(AckMessage{50, 50, 0})) +
                                 encodeFrame(MessageType::Ack, encode(AckMessage{99, 20, 0}));
        master->writeAll(acks.data(), acks.size(), deadline());
        try {
            readFrame(*master, deadline()); // the node's Error
        } catch (const std::exception&) {
        }
    });
    Spool spool(dir / "spool.db", {});
    EXPECT_THROW(pushd::runPushCycle(*node, spool, options(secret)), ProtocolError);
    server.join();
    const auto left = spool.readAfter(0, 1000, kMaxBatchBytes);
    ASSERT_EQ(left.size(), 20u) << "the batch whose Ack was bad stays queued, and only it";
    EXPECT_EQ(left.front().seq, 51u);
    EXPECT_EQ(left.back().seq, 70u);
}

TEST_F(APushSession, SaysByeInTheWriteOfItsLastBatchAndEndsOnceItIsAcked)
{
    // 120 records in one batch: the master finds the Bye queued behind the
    // batch before it sends the Ack, so it can end the session right after
    // the Ack instead of waiting a round trip for the Bye. With the Policy
    // first, the batch and the Bye come in the write of the Report.
    std::vector<MessageType> beforeAck;
    int queuedAfterBatch = -1;
    int batchAndBye = -1; // bytes of the two frames
    std::thread server([&] {
        openAsMaster();
        const Frame batch = readFrame(*master, deadline(), kMaxBatchFrame);
        batchAndBye =
            static_cast<int>(encodeFrame(batch.type, batch.payload).size() + encodeFrame(MessageType::Bye, {}).size());
        beforeAck.push_back(batch.type);
        // Bye arrived in the same write as the batch.
        queuedAfterBatch = bytesQueued(masterFd);
        if (queuedAfterBatch > 0)
            beforeAck.push_back(readFrame(*master, deadline()).type);
        const auto records = decodeBatch(batch.payload, "node");
        writeFrame(*master, MessageType::Ack,
                   encode(AckMessage{records.back().seq, static_cast<std::uint32_t>(records.size()), 0}), deadline());
        if (queuedAfterBatch == 0)
            readFrame(*master, deadline()); // a Bye after the Ack
    });
    Spool spool(dir / "spool.db", {});
    auto o = options(secret);
    o.batchRecords = 500;
    const auto r = pushd::runPushCycle(*node, spool, o);
    server.join();
    ASSERT_EQ(beforeAck.size(), 2u);
    EXPECT_EQ(beforeAck[0], MessageType::Batch);
    EXPECT_EQ(beforeAck[1], MessageType::Bye);
    EXPECT_EQ(queuedAfterBatch, static_cast<int>(encodeFrame(MessageType::Bye, {}).size()));
    EXPECT_EQ(queuedBehindReport, batchAndBye) << "with the Policy first, the Report went in the same write";
    EXPECT_EQ(r.batches, 1u);
    EXPECT_EQ(spool.stats().records, 0u) << "the Ack after the Bye still deletes the batch";
    EXPECT_EQ(bytesQueued(masterFd), 0) << "nothing after the Bye";
}

TEST_F(APushSession, RefusesACollectorThatCannotProveTheSecret)
{
    std::thread server([&] {
        HelloMessage hello{randomBytes(kNonceSize), "impostor"};
        writeFrame(*master, MessageType::Hello, encode(hello), deadlineIn(std::chrono::seconds(5)));
        readFrame(*master, deadlineIn(std::chrono::seconds(5)));
        AuthOkMessage ok;
        ok.mac = randomBytes(kMacSize);
        ok.version = kSessionVersion;
        writeFrame(*master, MessageType::AuthOk, encode(ok), deadlineIn(std::chrono::seconds(5)));
    });
    Spool spool(dir / "spool.db", {});
    EXPECT_THROW(pushd::runPushCycle(*node, spool, options(secret)), AuthError);
    server.join();
    EXPECT_EQ(spool.stats().records, 120u);
}

TEST_F(APushSession, RefusesAVersionOneNodeWithAClearMessage)
{
    std::string serverError;
    std::thread server([&] {
        MasterStore store(dir / "master.db");
        try {
            collectord::serveSession(*master, store, {});
        } catch (const ProtocolError& e) {
            serverError = e.what();
        }
    });
    // What a pushd of the release before sends.
    const auto hello = decodeHello(readFrame(*node, deadlineIn(std::chrono::seconds(5))).payload, "collector");
    AuthMessage v1;
    v1.node = "web1";
    v1.nonce = randomBytes(kNonceSize);
    v1.mac = sessionProof(secret, "node", "push", hello.challenge, v1.nonce, "web1");
    writeFrame(*node, MessageType::Auth, encode(v1), deadlineIn(std::chrono::seconds(5)));
    const Frame reply = readFrame(*node, deadlineIn(std::chrono::seconds(5)));
    server.join();
    ASSERT_EQ(reply.type, MessageType::Error);
    const auto err = decodeError(reply.payload, "collector");
    EXPECT_EQ(err.code, "unsupported-version");
    EXPECT_NE(err.message.find("session version 1"), std::string::npos) << err.message;
    EXPECT_NE(err.message.find("upgrade ferry-node"), std::string::npos) << err.message;
    EXPECT_NE(serverError.find("session version 1"), std::string::npos) << serverError;
}

TEST_F(APushSession, RefusesAnEpochSwappedUnderAValidProof)
{
    std::thread server([&] {
        MasterStore store(dir / "master.db");
        try {
            collectord::serveSession(*master, store, {});
        } catch (const AuthError&) {
        }
    });
    const auto hello = decodeHello(readFrame(*node, deadlineIn(std::chrono::seconds(5))).payload, "collector");
    AuthMessage auth;
    auth.node = "web1";
    auth.nonce = randomBytes(kNonceSize);
    auth.version = kSessionVersion;
    auth.masterId = "m";
    const std::string proven = Epoch::random().bytes();
    auth.mac = sessionProofV3(deriveMasterKey(secret, "m"), "node", "push", kSessionVersion, 0, hello.challenge,
                              auth.nonce, "web1", proven, "m", "");
    auth.epoch = Epoch::random().bytes();  // not the one the proof covers
    writeFrame(*node, MessageType::Auth, encode(auth), deadlineIn(std::chrono::seconds(5)));
    const Frame reply = readFrame(*node, deadlineIn(std::chrono::seconds(5)));
    server.join();
    ASSERT_EQ(reply.type, MessageType::Error);
    EXPECT_EQ(decodeError(reply.payload, "collector").code, "auth-failed");
}

TEST_F(APushSession, AuthenticatesANodeThatOffersACapabilityThisMasterDoesNotKnow)
{
    // A later node offers a bit this master does not know and proves over
    // everything it offers: the master checks the proof over the bits as
    // sent and runs the session with the ones both know.
    std::thread server([&] {
        MasterStore store(dir / "master.db");
        try {
            collectord::serveSession(*master, store, {});
        } catch (const std::exception&) {
        }
    });
    constexpr std::uint32_t kLater = 1u << 30;
    const auto hello = decodeHello(readFrame(*node, deadlineIn(std::chrono::seconds(5))).payload, "collector");
    AuthMessage auth;
    auth.node = "web1";
    auth.nonce = randomBytes(kNonceSize);
    auth.version = kSessionVersion;
    auth.capabilities = kSessionCapabilities | kLater;
    auth.masterId = "m";
    auth.epoch = Epoch::random().bytes();
    const std::string key = deriveMasterKey(secret, "m");
    auth.mac = sessionProofV3(key, "node", "push", kSessionVersion, auth.capabilities, hello.challenge, auth.nonce,
                              "web1", auth.epoch, "m", "");
    writeFrame(*node, MessageType::Auth, encode(auth), deadlineIn(std::chrono::seconds(5)));
    const Frame reply = readFrame(*node, deadlineIn(std::chrono::seconds(5)));
    node.reset(); // the master, waiting for the Report, sees the end
    server.join();
    ASSERT_EQ(reply.type, MessageType::AuthOk) << "a proof over a capability the master does not know is refused";
    const AuthOkMessage ok = decodeAuthOk(reply.payload, "collector");
    EXPECT_EQ(ok.capabilities, kSessionCapabilities);
    EXPECT_EQ(ok.mac, sessionProofV3(key, "master", "push", ok.version, kSessionCapabilities, hello.challenge,
                                     auth.nonce, "web1", auth.epoch, "m", ""));
}

// Policy first (capability 2): the master's AuthOk and Policy arrive in one
// write, and a node's Report, batch and Bye in one write get their Ack: one
// round trip fewer than Report, Policy, batch.
TEST_F(APushSession, SendsItsPolicyInTheWriteOfItsAuthOkAndTakesTheReportWithTheBatch)
{
    std::thread server([&] {
        MasterStore store(dir / "master.db");
        collectord::serveSession(*master, store, {});
    });
    AuthMessage auth;
    proveAsNode(kSessionCapabilities, auth);
    const Frame ok = readFrame(*node, deadline());
    ASSERT_EQ(ok.type, MessageType::AuthOk);
    EXPECT_EQ(decodeAuthOk(ok.payload, "collector").capabilities & kCapEarlyPolicy, kCapEarlyPolicy);
    // Already here, without a Report: it came in the same write.
    const int queued = bytesQueued(nodeFd);
    const Frame policy = readFrame(*node, deadline());
    ASSERT_EQ(policy.type, MessageType::Policy);
    EXPECT_EQ(queued, static_cast<int>(encodeFrame(MessageType::Policy, policy.payload).size()));
    HealthReport report;
    report.transportMode = "push";
    report.spoolRecords = 2;
    const std::vector<Record> records{{1, nowMs(), "k", "a"}, {2, nowMs(), "k", "b"}};
    const std::string frames = encodeFrame(MessageType::Report, encode(report)) +
                               encodeFrame(MessageType::Batch, encode(records)) + encodeFrame(MessageType::Bye, {});
    node->writeAll(frames.data(), frames.size(), deadline());
    const AckMessage ack = decodeAck(readFrame(*node, deadline()).payload, "collector");
    server.join();
    EXPECT_EQ(ack.storedUpTo, 2u);
    EXPECT_EQ(ack.newlyStored, 2u);
    MasterStore store(dir / "master.db");
    EXPECT_EQ(store.countRecords("web1"), 2u);
    const auto stored = store.report("web1");
    ASSERT_TRUE(stored.has_value()) << "the Report that came after the Policy is stored";
    EXPECT_EQ(stored->spoolRecords, 2u);
    EXPECT_EQ(stored->transportMode, "push");
}

// Both pairings with a side that does not know capability 2, played by
// turning it off there: the session runs the order before it and stores
// alike (a mismatch would leave each side waiting for the other).
TEST_F(APushSession, RunsTheOlderOrderWithAMasterWithoutTheEarlyPolicy)
{
    pushWithCapabilities(kSessionCapabilities, kSessionCapabilities & ~kCapEarlyPolicy);
}

TEST_F(APushSession, RunsTheOlderOrderWithANodeWithoutTheEarlyPolicy)
{
    pushWithCapabilities(kSessionCapabilities & ~kCapEarlyPolicy, kSessionCapabilities);
}

TEST_F(APushSession, SendsTheReportWithItsByeWhenNothingIsQueued)
{
    auto o = options(secret);
    o.report.transportMode = "push";
    const auto r = pushToCollector(dir / "empty.db", o);
    EXPECT_EQ(r.batches, 0u);
    const auto stored = MasterStore(dir / "master.db").report("web1");
    ASSERT_TRUE(stored.has_value());
    EXPECT_EQ(stored->spoolRecords, 0u);
    EXPECT_EQ(stored->transportMode, "push");
}

TEST_F(APushSession, StoresTheNodesHealthReport)
{
    auto o = options(secret);
    o.report.transportMode = "push";
    o.report.transportReason = "configured";
    o.report.fwcheckVerdict = "sshd unreachable: port 22 dropped by INPUT";
    pushToCollector(dir / "spool.db", o);
    const auto r = MasterStore(dir / "master.db").report("web1");
    ASSERT_TRUE(r.has_value());
    EXPECT_EQ(r->spoolRecords, 120u) << "the figures from before the session";
    EXPECT_EQ(r->lastSeq, 120u);
    EXPECT_EQ(r->transportMode, "push");
    EXPECT_EQ(r->fwcheckVerdict, "sshd unreachable: port 22 dropped by INPUT");
}

TEST_F(APushSession, StoresARetriedBatchOnlyOnce)
{
    MasterStore store(dir / "master.db");
    const Epoch epoch = Epoch::random();
    std::vector<Record> batch{{1, 0, "k", "a"}, {2, 0, "k", "b"}};
    const auto first = store.storeBatch("web1", epoch, batch, "push");
    const auto again = store.storeBatch("web1", epoch, batch, "pull");
    EXPECT_EQ(first.newlyStored, 2u);
    EXPECT_EQ(again.newlyStored, 0u);
    EXPECT_EQ(again.duplicates, 2u);
    EXPECT_EQ(again.storedUpTo, 2u);
    EXPECT_EQ(store.countRecords("web1"), 2u);
    EXPECT_EQ(store.storeBatch("web1", Epoch::random(), batch, "push").newlyStored, 2u)
        << "the same sequences of another spool are other records";
}

// collectord's sessions counter is kept by its shared master.db connection
// for the next write (MasterStore::addCountersLater): stop() writes what is
// kept, so the counts are right once the collector stopped, not only once
// its store was closed.
TEST(ACollector, HasWrittenItsSessionCountersWhenItStops)
{
    test::TempDir dir;
    const std::string db = dir / "master.db";
    const std::string secret = generateSecret();
    MasterStore(db).addNode("web1", secret);
    bool fromSystemd = false;
    const int port = test::freePort();
    auto fds = listeningSockets("127.0.0.1:" + std::to_string(port), fromSystemd);
    collectord::Collector collector(db, {}, [](int) {});
    collector.start(std::move(fds));
    Spool spool(dir / "spool.db", {});
    for (int push = 0; push < 3; ++push) {
        spool.append("k", "v", nowMs());
        const int fd = connectTcp("127.0.0.1", static_cast<std::uint16_t>(port), std::chrono::seconds(5));
        FdStream stream(fd, fd, "collector", true);
        pushd::PushCycleOptions o;
        o.nodeName = "web1";
        o.secret = secret;
        o.ioTimeout = std::chrono::seconds(5);
        EXPECT_EQ(pushd::runPushCycle(stream, spool, o).recordsNew, 1u);
    }
    collector.stop();
    const std::string ok = counterLabels({{"transport", "push"}, {"outcome", "ok"}});
    std::int64_t sessions = 0;
    for (const auto& c : MasterStore(db).counters())
        if (c.name == "sessions" && c.labels == ok)
            sessions = c.value;
    EXPECT_EQ(sessions, 3);
}

TEST(TheFallback, TurnsPushOnOnlyAfterTheAbsenceInterval)
{
    using ferry::TransportMode;
    const std::int64_t t0 = 1'000'000'000'000;
    const auto absence = std::chrono::minutes(15);
    EXPECT_FALSE(pushd::decideFallback(TransportMode::Auto, absence, 0, t0, t0 + 14 * 60'000).active);
    EXPECT_TRUE(pushd::decideFallback(TransportMode::Auto, absence, 0, t0, t0 + 15 * 60'000).active);
    const auto d = pushd::decideFallback(TransportMode::Auto, absence, t0, t0, t0 + 16 * 60'000);
    EXPECT_TRUE(d.active);
    EXPECT_NE(d.reason.find("no pull since"), std::string::npos) << d.reason;
    EXPECT_FALSE(pushd::decideFallback(TransportMode::Auto, absence, t0 + 16 * 60'000, t0, t0 + 17 * 60'000).active);
    EXPECT_TRUE(pushd::decideFallback(TransportMode::Push, absence, t0, t0, t0).active);
    EXPECT_FALSE(pushd::decideFallback(TransportMode::Pull, absence, 0, t0, t0 + 99 * 60'000).active);
}

} // namespace
} // namespace ferry
