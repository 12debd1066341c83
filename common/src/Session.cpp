#include "ferry/Session.h"

#include <poll.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <condition_variable>
#include <deque>
#include <exception>
#include <functional>
#include <mutex>
#include <system_error>
#include <thread>
#include <utility>

#include <spdlog/spdlog.h>

#include "ferry/Clock.h"
#include "ferry/Crypto.h"
#include "ferry/PullProtocol.h"

namespace ferry {

namespace {

constexpr const char* kNodeLabel = "node";
// The most batches (and bytes of their frames, passed by one frame at most)
// the master stores in one transaction. It holds at most two such groups:
// one committing, the next arriving. The node's window (kSessionWindow)
// keeps no more than one group in flight.
constexpr std::size_t kMaxGroupBatches = 8;
constexpr std::size_t kMaxGroupBytes = 8 * 1024 * 1024;
constexpr const char* kMasterLabel = "master";

void sendError(ByteStream& stream, const std::string& code, const std::string& message)
{
    // Best effort: the peer may already be gone, and the caller reports the
    // original failure either way.
    try {
        writeFrame(stream, MessageType::Error, encode(ErrorMessage{code, message}),
                   deadlineIn(std::chrono::milliseconds(2000)));
    } catch (const std::exception& e) {
        spdlog::debug("Ignoring failure to send an error to {}: {}", stream.peer(), e.what());
    }
}

// Reads a frame of the expected type. An Error frame from the peer becomes
// the matching exception, carrying the peer's (escaped) message.
Frame expect(ByteStream& stream, MessageType type, std::chrono::milliseconds timeout, std::uint32_t maxPayload,
             const std::string& who)
{
    Frame f;
    try {
        f = readFrame(stream, deadlineIn(timeout), maxPayload);
    } catch (const ProtocolError& e) {
        sendError(stream, kSessionErrorProtocol, "bad frame");
        throw ProtocolError(std::string(e.what()) + " (from " + who + ")");
    }
    if (f.type == MessageType::Error) {
        const ErrorMessage e = decodeError(f.payload, stream.peer());
        const std::string text = who + " refused: " + escapeForLog(e.message) + " (" + escapeForLog(e.code) + ")";
        if (e.code == kSessionErrorAuth)
            throw AuthError("Failed to authenticate to " + text);
        if (e.code == kSessionErrorVersion)
            throw VersionError(text);
        throw ProtocolError(text);
    }
    if (f.type != type) {
        sendError(stream, kSessionErrorProtocol, std::string("expected ") + toString(type));
        throw ProtocolError("Unexpected " + std::string(toString(f.type)) + " from " + who + " (expected " +
                            toString(type) + ")");
    }
    return f;
}

// A peer that hangs up right after our version-2 Auth is most likely a
// release from before session version 2 (it cannot parse the new fields).
template <typename F>
auto withOlderPeerHint(const std::string& who, F&& body)
{
    try {
        return body();
    } catch (const ClosedError& e) {
        throw ClosedError(std::string(e.what()) + " (" + who +
                          " closed during the handshake: an older Ferry that does not speak session version " +
                          std::to_string(kSessionVersion) + "? upgrade it)");
    }
}

void refuseOlder(ByteStream& stream, const std::string& who, std::uint8_t version, const char* package)
{
    const std::string text = who + " speaks session version " + std::to_string(version) + "; this side needs " +
                             std::to_string(kSessionVersion) + ": upgrade " + package;
    sendError(stream, kSessionErrorVersion, text);
    throw VersionError("Refused " + text);
}

// The groups of one session committed on a thread of the session's own,
// so that the master's session reads the batches that follow while the
// disk syncs. Its eventfd becomes readable when a commit is done. The store
// is used by one thread at a time: the session touches it again only after
// finish(). One thread serves every group of the session: a thread per
// group cost its start and a fresh malloc arena each time (pages faulted
// in again for every group; bench/pull measured 35 ms against 30 ms for
// the week's three commits alone). A commit with nothing to read while it
// runs (the node's Bye is in) runs on the session's thread instead: a push
// of one batch, whose Bye comes in the batch's write, starts no thread, nor
// the eventfd.
class BackgroundCommit {
public:
    BackgroundCommit() = default;
    ~BackgroundCommit()
    {
        // A session that fails while a commit runs waits for it: the store
        // and the batches must outlive the thread.
        if (m_thread.joinable()) {
            {
                std::lock_guard lock(m_mutex);
                m_stop = true;
            }
            m_wake.notify_one();
            m_thread.join();
        }
        if (m_done >= 0)
            ::close(m_done);
    }
    BackgroundCommit(const BackgroundCommit&) = delete;
    BackgroundCommit& operator=(const BackgroundCommit&) = delete;

    bool busy() const { return m_busy; }
    // Readable once a commit on the thread is done (busy() and not done()).
    int doneFd() const { return m_done; }
    bool done() const
    {
        if (m_here)
            return true;
        pollfd pfd{m_done, POLLIN, 0};
        return ::poll(&pfd, 1, 0) == 1;
    }
    // here: on the calling thread, before this returns.
    void start(std::function<std::vector<AckMessage>()> work, bool here)
    {
        m_busy = true;
        if (!here && !m_thread.joinable() && !m_inline) {
            try {
                if (m_done < 0 && (m_done = ::eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK)) < 0)
                    throwErrno("create the group commit's eventfd");
                m_thread = std::thread([this] { serve(); });
            } catch (const std::exception& e) {
                // No thread to be had (a unit's task limit): commit here, as
                // before there was a thread for it.
                spdlog::debug("Committing on the session's thread: no thread for it ({})", e.what());
                m_inline = true;
            }
        }
        if (here || m_inline) {
            m_here = true;
            run(work);
            return;
        }
        {
            std::lock_guard lock(m_mutex);
            m_work = std::move(work);
        }
        m_wake.notify_one();
    }
    // Waits for the commit; returns its Acks or throws what it threw.
    std::vector<AckMessage> finish()
    {
        if (!std::exchange(m_here, false)) {
            pollfd pfd{m_done, POLLIN, 0};
            while (::poll(&pfd, 1, -1) < 0 && errno == EINTR) {
            }
            std::uint64_t count = 0;
            (void)!::read(m_done, &count, sizeof count);
        }
        m_busy = false;
        // The eventfd's write follows the worker's last touch of these
        // (under m_mutex), so reading them here is ordered after it.
        std::lock_guard lock(m_mutex);
        if (m_failure)
            std::rethrow_exception(std::exchange(m_failure, nullptr));
        return std::move(m_acks);
    }

private:
    void run(const std::function<std::vector<AckMessage>()>& work)
    {
        std::vector<AckMessage> acks;
        std::exception_ptr failure;
        try {
            acks = work();
        } catch (...) {
            failure = std::current_exception();
        }
        {
            std::lock_guard lock(m_mutex);
            m_acks = std::move(acks);
            m_failure = failure;
        }
        if (m_here)
            return;
        const std::uint64_t one = 1;
        (void)!::write(m_done, &one, sizeof one);
    }
    void serve()
    {
        std::unique_lock lock(m_mutex);
        for (;;) {
            m_wake.wait(lock, [this] { return m_stop || m_work; });
            if (!m_work)
                return; // stopped, nothing left to commit
            auto work = std::exchange(m_work, nullptr);
            lock.unlock();
            run(work);
            lock.lock();
        }
    }

    int m_done = -1;
    bool m_busy = false;
    bool m_inline = false; // no thread to be had: every commit here
    bool m_here = false;   // the commit under way ran here
    std::thread m_thread;
    std::mutex m_mutex;
    std::condition_variable m_wake;
    bool m_stop = false;
    std::function<std::vector<AckMessage>()> m_work;
    std::vector<AckMessage> m_acks;
    std::exception_ptr m_failure;
};

HealthReport spoolReport(Spool& spool, const HealthReport& base)
{
    HealthReport r = base;
    const SpoolStats st = spool.stats();
    r.spoolRecords = st.records;
    r.spoolBytes = st.bytes;
    r.oldestUnsentMs = st.oldestMs;
    r.lastSeq = st.lastSeq;
    r.droppedByAge = st.droppedByAge;
    r.droppedBySize = st.droppedBySize;
    r.droppedBytes = st.droppedBytes;
    r.spoolResets = st.resets;
    r.lastReset = st.lastReset;
    r.lastResetMs = st.lastResetMs;
    return r;
}

} // namespace

namespace {

// The node's handshake. As the responder (pull), its AuthOk is left in
// *authOk when given, for the caller to send in the write of its Report.
std::uint32_t nodeHandshakeWith(ByteStream& stream, const Epoch& sessionEpoch, const NodeSessionOptions& o,
                                std::string& peerName, std::string* authOk)
{
    const std::uint32_t offered = o.capabilities & kSessionCapabilities;
    const std::string peer = stream.peer();
    const std::string epoch = sessionEpoch.bytes();
    const std::string who = "master " + peer;
    if (o.side == SessionSide::Initiator) {
        const HelloMessage hello =
            decodeHello(expect(stream, MessageType::Hello, o.ioTimeout, kMaxControlFrame, who).payload, peer);
        peerName = escapeForLog(hello.server, kMaxName);
        if (!isValidMasterId(o.masterId))
            throw ConfigError("Failed to prove this node to " + who + ": its master id '" + escapeForLog(o.masterId) +
                              "' is empty or not printable");
        const std::string key = deriveMasterKey(o.secret, o.masterId);
        AuthMessage auth;
        auth.node = o.nodeName;
        auth.nonce = randomBytes(kNonceSize);
        auth.version = kSessionVersion;
        auth.capabilities = offered;
        auth.epoch = epoch;
        auth.masterId = o.masterId;
        auth.binding = o.binding;
        auth.mac = sessionProofV3(key, kNodeLabel, o.protocol, auth.version, auth.capabilities, hello.challenge,
                                  auth.nonce, o.nodeName, epoch, auth.masterId, auth.binding);
        writeFrame(stream, MessageType::Auth, encode(auth), deadlineIn(o.ioTimeout));
        const AuthOkMessage ok = withOlderPeerHint(who, [&] {
            return decodeAuthOk(expect(stream, MessageType::AuthOk, o.ioTimeout, kMaxControlFrame, who).payload,
                                peer);
        });
        if (ok.version < kSessionVersion)
            refuseOlder(stream, who, ok.version, "ferry-master");
        const std::uint32_t caps = ok.capabilities & offered;
        if (!constantTimeEqual(ok.mac, sessionProofV3(key, kMasterLabel, o.protocol, ok.version, ok.capabilities,
                                                      hello.challenge, auth.nonce, o.nodeName, epoch, auth.masterId,
                                                      auth.binding)))
            throw AuthError("Master " + peer + " failed to prove it holds this node's key for master id '" +
                            escapeForLog(o.masterId) + "'; nothing was sent");
        return caps;
    }
    // Responder (pull): the master proves first, naming the master id its
    // key was derived for.
    const std::string challenge = randomBytes(kNonceSize);
    writeFrame(stream, MessageType::Hello, encode(HelloMessage{challenge, o.nodeName}), deadlineIn(o.ioTimeout));
    AuthMessage auth;
    try {
        auth = decodeAuth(expect(stream, MessageType::Auth, o.ioTimeout, kMaxControlFrame, who).payload, peer);
    } catch (const ProtocolError& e) {
        sendError(stream, kSessionErrorProtocol, "bad Auth");
        throw;
    }
    if (auth.version < kSessionVersion)
        refuseOlder(stream, who + " (ferry-pulld)", auth.version, "ferry-master");
    const std::uint32_t caps = auth.capabilities & offered;
    const bool validId = isValidMasterId(auth.masterId);
    const std::string key = validId ? deriveMasterKey(o.secret, auth.masterId) : std::string();
    const bool bound = auth.binding.empty() || o.ownHostKeys.empty() ||
                       std::find(o.ownHostKeys.begin(), o.ownHostKeys.end(), auth.binding) != o.ownHostKeys.end();
    // The node name is part of the proof, so a proof made for another node
    // fails too; every failure looks the same to the peer.
    const bool proven =
        validId && auth.node == o.nodeName && auth.epoch.empty() &&
        constantTimeEqual(auth.mac, sessionProofV3(key, kMasterLabel, o.protocol, auth.version, auth.capabilities,
                                                   challenge, auth.nonce, o.nodeName, "", auth.masterId, auth.binding));
    if (!proven || !bound) {
        sendError(stream, kSessionErrorAuth, "authentication failed");
        throw AuthError(
            "Failed to authenticate the master " + peer + ": " +
            (auth.node != o.nodeName ? "it asked for node '" + escapeForLog(auth.node) + "'"
             : !validId              ? std::string("its master id is empty or not printable")
             : !proven ? "its proof of this node's key for master id '" + escapeForLog(auth.masterId) + "' is wrong"
                       : "its proof is bound to an SSH host key that is not this node's (" +
                             escapeForLog(auth.binding) + "): relayed from another session?"));
    }
    peerName = "master '" + escapeForLog(auth.masterId) + "'";
    AuthOkMessage ok;
    ok.version = kSessionVersion;
    ok.capabilities = caps;
    ok.epoch = epoch;
    ok.mac = sessionProofV3(key, kNodeLabel, o.protocol, ok.version, caps, challenge, auth.nonce, o.nodeName, epoch,
                            auth.masterId, auth.binding);
    if (authOk != nullptr)
        *authOk = encodeFrame(MessageType::AuthOk, encode(ok));
    else
        writeFrame(stream, MessageType::AuthOk, encode(ok), deadlineIn(o.ioTimeout));
    return caps;
}

} // namespace

std::uint32_t nodeHandshake(ByteStream& stream, const Epoch& sessionEpoch, const NodeSessionOptions& o,
                            std::string& peerName)
{
    return nodeHandshakeWith(stream, sessionEpoch, o, peerName, nullptr);
}

NodeSessionResult runNodeSession(ByteStream& stream, Spool& spool, const NodeSessionOptions& o)
{
    NodeSessionResult result;
    const std::string peer = stream.peer();
    const std::string who = "master " + peer;
    // One epoch per session: the oldest one with records queued.
    const SpoolEpochRange range = spool.sendingRange();
    result.epoch = range.epoch;
    result.laterEpochQueued = range.laterQueued;
    // Frames not yet written: they go in the write of what follows them
    // (send), so that the peer gets them in one piece instead of one write,
    // and one SSH packet, each.
    std::string pending;
    auto send = [&](const std::string& frames) {
        pending += frames;
        stream.writeAll(pending.data(), pending.size(), deadlineIn(o.ioTimeout));
        pending.clear();
    };
    result.capabilities = nodeHandshakeWith(stream, range.epoch, o, result.peerName, &pending);

    const HealthReport report = spoolReport(spool, o.report);
    // Policy first (kCapEarlyPolicy): the master's Policy came in the write
    // of its AuthOk, and the Report goes in the write of the first batch
    // (or of the Bye).
    const bool earlyPolicy = o.side == SessionSide::Initiator && (result.capabilities & kCapEarlyPolicy) != 0;
    bool resetToMark = !report.lastReset.empty();
    if (earlyPolicy) {
        pending += encodeFrame(MessageType::Report, encode(report));
    } else {
        send(encodeFrame(MessageType::Report, encode(report)));
    }
    result.policy = decodePolicy(expect(stream, MessageType::Policy, o.ioTimeout, kMaxControlFrame, who).payload, peer);
    // The master has the report: a reset it carried has been told. (With
    // the Policy first, the master has it once it acknowledged a batch.)
    if (resetToMark && !earlyPolicy) {
        spool.markResetReported();
        resetToMark = false;
    }
    if (result.policy.held) {
        result.held = true;
        result.heldReason = escapeForLog(result.policy.reason, kMaxReportText);
        send(encodeFrame(MessageType::Bye, {}));
        return result;
    }

    // Records appended while we stream wait for the next session, so that a
    // busy sampler cannot keep one session open for ever. (The report's
    // figures are the spool's as the session began.)
    const std::uint64_t limit = range.lastSeq;
    std::uint64_t cursor = result.policy.storedUpTo;
    if (cursor > limit && !range.current) {
        // An epoch this spool no longer appends to went on elsewhere (the
        // original of a copy, or the file a backup was taken of): the
        // master has every record of it this spool holds.
        cursor = limit;
    } else if (cursor > limit) {
        // The master says it stored more of this epoch than it ever held:
        // its state belongs to another spool. Deleting would lose data.
        sendError(stream, kSessionErrorCursorAhead,
                  "stored_up_to " + std::to_string(cursor) + " is beyond the last sequence " + std::to_string(limit));
        throw ProtocolError("Refused the session with " + who + ": it claims records up to " + std::to_string(cursor) +
                            " of epoch " + range.epoch.shortHex() + ", but the spool's last sequence is " +
                            std::to_string(limit));
    }
    // The cursor repairs an Ack that was lost when an earlier session dropped.
    if (cursor >= range.firstSeq) {
        result.deleted += spool.acknowledge(cursor);
        result.acknowledgedUpTo = cursor;
    }
    // A later epoch starts where the one before it ended.
    cursor = std::max(cursor, range.firstSeq - 1);

    const std::size_t batchBytes = std::min<std::size_t>(o.batchBytes, kMaxBatchBytes);
    const unsigned window = std::max(1u, o.window);
    struct InFlight {
        std::uint64_t first = 0, last = 0, records = 0, bytes = 0;
        bool head = false;
    };
    std::deque<InFlight> inFlight;
    auto bytesOf = [](const std::vector<Record>& batch) {
        std::uint64_t bytes = 0;
        for (const auto& r : batch)
            bytes += r.payload.size() + r.kind.size();
        return bytes;
    };
    SessionProgress progress;
    if (o.onProgress) {
        const SpoolStats queued = spool.stats();
        progress.recordsTotal = queued.records;
        progress.bytesTotal = queued.bytes;
        o.onProgress(progress);
    }
    // The frame limit is the receiver's: never send what it must refuse.
    // keepNewest: halve from the old end (the head lane wants the newest).
    auto fitFrame = [](std::vector<Record>& batch, bool keepNewest) {
        std::string payload = encode(batch);
        while (payload.size() > kMaxBatchFrame && batch.size() > 1) {
            const std::size_t half = batch.size() / 2;
            if (keepNewest)
                batch.erase(batch.begin(), batch.begin() + static_cast<std::ptrdiff_t>(batch.size() - half));
            else
                batch.resize(half);
            payload = encode(batch);
        }
        return payload;
    };
    // The backlog lane stops below the head lane's first record.
    std::uint64_t backlogLimit = limit;
    if ((result.capabilities & kCapNewestFirst) != 0 && cursor < limit) {
        auto head = spool.readNewest(limit, o.batchRecords, batchBytes);
        const auto oldest = spool.readAfter(cursor, 1, batchBytes);
        // Only when the head does not reach the oldest queued record: a
        // queue that fits one batch goes in order anyway.
        if (!head.empty() && !oldest.empty() && oldest.front().seq < head.front().seq) {
            const std::string payload = fitFrame(head, true);
            backlogLimit = head.front().seq - 1;
            result.headRecords = head.size();
            result.recordsSent += head.size();
            ++result.batches;
            inFlight.push_back({head.front().seq, head.back().seq, head.size(), bytesOf(head), true});
            send(encodeFrame(MessageType::HeadBatch, payload));
        }
    }
    bool exhausted = cursor >= backlogLimit;
    // Bye goes as soon as the last batch has gone, in the same write, before
    // its Acks: the master stores and acknowledges what it read before the
    // Bye and then ends the session, instead of waiting one more round trip
    // (through sshd and the relay) for a Bye after the last Ack.
    bool byeSent = false;
    while (true) {
        while (!exhausted && inFlight.size() < window) {
            auto batch = spool.readAfter(cursor, o.batchRecords, batchBytes);
            while (!batch.empty() && batch.back().seq > backlogLimit)
                batch.pop_back();
            if (batch.empty()) {
                exhausted = true;
                break;
            }
            const std::string payload = fitFrame(batch, false);
            cursor = batch.back().seq;
            result.recordsSent += batch.size();
            ++result.batches;
            inFlight.push_back({batch.front().seq, cursor, batch.size(), bytesOf(batch), false});
            batch.clear();
            batch.shrink_to_fit();
            std::string frames = encodeFrame(MessageType::Batch, payload);
            if (cursor >= backlogLimit) {
                exhausted = true;
                frames += encodeFrame(MessageType::Bye, {});
                byeSent = true;
            }
            send(frames);
        }
        if (exhausted && !byeSent && !inFlight.empty()) {
            send(encodeFrame(MessageType::Bye, {}));
            byeSent = true;
        }
        if (inFlight.empty())
            break;
        // Acks that have already arrived are taken together: the master
        // sends a group's Acks back to back after its commit. Each still
        // names exactly its batch, and their records leave the spool in one
        // transaction instead of one per Ack.
        std::vector<std::pair<std::uint64_t, std::uint64_t>> deletions;
        std::uint64_t backlogAcked = 0;
        std::vector<InFlight> acked;
        auto readAck = [&] {
            AckMessage ack;
            try {
                ack = decodeAck(expect(stream, MessageType::Ack, o.ioTimeout, kMaxControlFrame, who).payload, peer);
            } catch (const TimeoutError& e) {
                throw TimeoutError(std::string(e.what()) + " (waiting for the ack of records " +
                                   std::to_string(inFlight.front().first) + "–" +
                                   std::to_string(inFlight.front().last) + ")");
            }
            // Acks come in order, one per batch, naming the batch's last
            // record: anything else would delete records the master may not
            // have.
            const InFlight done = inFlight.front();
            if (ack.storedUpTo != done.last) {
                sendError(stream, kSessionErrorProtocol, "Ack does not match the oldest batch");
                throw ProtocolError("Bad Ack from " + who + ": stored up to " + std::to_string(ack.storedUpTo) +
                                    ", expected " + std::to_string(done.last));
            }
            inFlight.pop_front();
            // A head batch's Ack deletes exactly that batch; a backlog
            // batch's everything up to it (below the head).
            if (done.head)
                deletions.emplace_back(done.first, done.last);
            else
                backlogAcked = done.last;
            acked.push_back(done);
            result.newlyStored += ack.newlyStored;
            result.duplicates += ack.duplicates;
        };
        readAck();
        // What was acknowledged before a failure is deleted all the same.
        std::exception_ptr failure;
        try {
            while (!inFlight.empty() && stream.hasInput())
                readAck();
        } catch (...) {
            failure = std::current_exception();
        }
        if (backlogAcked > 0)
            deletions.emplace_back(1, backlogAcked);
        result.deleted += spool.acknowledgeRanges(deletions);
        // The master stores the Report in the transaction of the first
        // batch (or before it).
        if (resetToMark && !acked.empty()) {
            spool.markResetReported();
            resetToMark = false;
        }
        for (const auto& done : acked) {
            result.acknowledgedUpTo = std::max(result.acknowledgedUpTo, done.last);
            if (o.onProgress) {
                // Records appended after the totals were taken are not sent
                // in this session, but a total never reads below what is
                // done.
                progress.recordsDone += done.records;
                progress.bytesDone += done.bytes;
                progress.recordsTotal = std::max(progress.recordsTotal, progress.recordsDone);
                progress.bytesTotal = std::max(progress.bytesTotal, progress.bytesDone);
                o.onProgress(progress);
            }
        }
        if (failure)
            std::rethrow_exception(failure);
    }
    if (!byeSent)
        send(encodeFrame(MessageType::Bye, {}));
    return result;
}

namespace {

// The master's store, opened at its first use.
class StoreOnFirstUse {
public:
    explicit StoreOnFirstUse(const std::function<SessionStore&()>& open) : m_open(open) {}
    SessionStore& operator()()
    {
        if (m_store == nullptr)
            m_store = &m_open();
        return *m_store;
    }

private:
    const std::function<SessionStore&()>& m_open;
    SessionStore* m_store = nullptr;
};

// The master's handshake. As the responder (push), its AuthOk is left in
// *authOk when given, for the caller to send in the write of its Policy.
MasterHandshake masterHandshakeWith(ByteStream& stream, StoreOnFirstUse& store, const MasterSessionOptions& o,
                                    std::string* authOk = nullptr)
{
    const std::string peer = stream.peer();
    MasterHandshake out;
    if (o.side == SessionSide::Responder) {
        // Push: the node proves first, names itself and the master id it
        // derived its key for.
        const std::string challenge = randomBytes(kNonceSize);
        writeFrame(stream, MessageType::Hello, encode(HelloMessage{challenge, o.selfName}), deadlineIn(o.ioTimeout));
        // Opened while the node answers (the Hello is on its way).
        store();
        AuthMessage auth;
        try {
            auth = decodeAuth(expect(stream, MessageType::Auth, o.ioTimeout, kMaxControlFrame, "node " + peer).payload,
                              peer);
        } catch (const ProtocolError&) {
            sendError(stream, kSessionErrorProtocol, "bad Auth");
            throw;
        }
        const std::string who = "node '" + escapeForLog(auth.node) + "' (" + peer + ")";
        if (auth.version < kSessionVersion)
            refuseOlder(stream, who + " (ferry-pushd)", auth.version, "ferry-node on it");
        const auto stored = o.secret.empty() ? store().nodeSecret(auth.node) : std::optional<std::string>(o.secret);
        std::optional<std::string> key;
        std::string cause = "not enrolled (or not accepted) on this master";
        if (stored) {
            try {
                key = credentialKeyFor(parseNodeCredential(*stored), auth.masterId);
                if (!key)
                    cause = "it proves for master id '" + escapeForLog(auth.masterId) +
                            "', and this master holds its key for another id";
            } catch (const Error& e) {
                cause = std::string("its stored key is unusable: ") + e.what();
            }
        }
        const std::uint32_t caps = auth.capabilities & o.capabilities & kSessionCapabilities;
        out.capabilities = caps;
        const bool proven =
            key && auth.epoch.size() == Epoch::kSize &&
            constantTimeEqual(auth.mac,
                              sessionProofV3(*key, kNodeLabel, o.protocol, auth.version, auth.capabilities, challenge,
                                             auth.nonce, auth.node, auth.epoch, auth.masterId, auth.binding));
        if (key && !proven)
            cause = "wrong proof of its key";
        const bool bound = auth.binding.empty() || o.ownHostKeys.empty() ||
                           std::find(o.ownHostKeys.begin(), o.ownHostKeys.end(), auth.binding) != o.ownHostKeys.end();
        if (proven && !bound)
            cause = "its proof is bound to the SSH host key " + escapeForLog(auth.binding) +
                    ", which is not this master's: relayed from another session?";
        if (!proven || !bound) {
            // One answer for every cause, so that the peer cannot probe
            // which node names are enrolled.
            sendError(stream, kSessionErrorAuth, "authentication failed");
            throw AuthError("Refused " + who + ": " + cause);
        }
        if (o.onAuthenticated && !o.onAuthenticated(auth.node)) {
            sendError(stream, "busy", "too many sessions for this node; retry later");
            throw AuthError("Refused " + who + ": it already runs as many sessions as it may");
        }
        out.node = auth.node;
        out.key = *key;
        out.epoch = Epoch::fromBytes(auth.epoch, "Auth from " + who);
        AuthOkMessage ok;
        ok.version = kSessionVersion;
        ok.capabilities = caps;
        ok.mac = sessionProofV3(*key, kMasterLabel, o.protocol, ok.version, caps, challenge, auth.nonce, auth.node,
                                auth.epoch, auth.masterId, auth.binding);
        if (authOk != nullptr)
            *authOk = encodeFrame(MessageType::AuthOk, encode(ok));
        else
            writeFrame(stream, MessageType::AuthOk, encode(ok), deadlineIn(o.ioTimeout));
        return out;
    }
    // Pull: the master proves first, for the node it connected to, as the
    // master id its credential names.
    const std::string who = "node " + escapeForLog(o.expectedNode) + " (" + peer + ")";
    const NodeCredential credential = parseNodeCredential(o.secret);
    const std::string masterId = credential.legacy ? o.masterId : credential.masterId;
    const auto key = credentialKeyFor(credential, masterId);
    if (!key)
        throw ConfigError("Failed to pull " + who + ": no master id to prove as (a legacy secret needs one)");
    const HelloMessage hello =
        decodeHello(expect(stream, MessageType::Hello, o.ioTimeout, kMaxControlFrame, who).payload, peer);
    spdlog::debug("{}: Hello received", who);
    AuthMessage auth;
    auth.node = o.expectedNode;
    auth.nonce = randomBytes(kNonceSize);
    auth.version = kSessionVersion;
    auth.capabilities = o.capabilities & kSessionCapabilities;
    auth.masterId = masterId;
    auth.binding = o.binding;
    auth.mac = sessionProofV3(*key, kMasterLabel, o.protocol, auth.version, auth.capabilities, hello.challenge,
                              auth.nonce, o.expectedNode, "", auth.masterId, auth.binding);
    writeFrame(stream, MessageType::Auth, encode(auth), deadlineIn(o.ioTimeout));
    const AuthOkMessage ok = withOlderPeerHint(who, [&] {
        return decodeAuthOk(expect(stream, MessageType::AuthOk, o.ioTimeout, kMaxControlFrame, who).payload, peer);
    });
    if (ok.version < kSessionVersion)
        refuseOlder(stream, who, ok.version, "ferry-node on it");
    const std::uint32_t caps = ok.capabilities & auth.capabilities;
    out.capabilities = caps;
    if (ok.epoch.size() != Epoch::kSize ||
        !constantTimeEqual(ok.mac,
                           sessionProofV3(*key, kNodeLabel, o.protocol, ok.version, ok.capabilities, hello.challenge,
                                          auth.nonce, o.expectedNode, ok.epoch, auth.masterId, auth.binding)))
        throw AuthError("Failed to authenticate " + who + ": its proof of its key for master id '" +
                        escapeForLog(masterId) + "' is wrong; refusing its data");
    out.node = o.expectedNode;
    out.key = *key;
    out.epoch = Epoch::fromBytes(ok.epoch, "AuthOk from " + who);
    return out;
}

} // namespace

MasterHandshake masterHandshake(ByteStream& stream, SessionStore& store, const MasterSessionOptions& o)
{
    const std::function<SessionStore&()> open = [&store]() -> SessionStore& { return store; };
    StoreOnFirstUse once(open);
    return masterHandshakeWith(stream, once, o);
}

MasterSessionResult runMasterSession(ByteStream& stream, SessionStore& store, const MasterSessionOptions& o)
{
    return runMasterSession(
        stream, [&store]() -> SessionStore& { return store; }, o);
}

MasterSessionResult runMasterSession(ByteStream& stream, const std::function<SessionStore&()>& openStore,
                                     const MasterSessionOptions& o)
{
    MasterSessionResult result;
    const std::string peer = stream.peer();
    StoreOnFirstUse opened(openStore);
    std::string authOk; // the responder's, not yet sent
    const MasterHandshake hs = masterHandshakeWith(stream, opened, o, &authOk);
    SessionStore& store = opened();
    result.node = hs.node;
    result.epoch = hs.epoch;
    const std::string who = "node " + escapeForLog(hs.node) + " (" + peer + ", epoch " + hs.epoch.shortHex() + ")";
    const std::string address = o.address.empty() ? peer : o.address;
    auto readReport = [&] {
        result.report =
            decodeReport(expect(stream, MessageType::Report, o.ioTimeout, kMaxControlFrame, who).payload, peer);
        if (!result.report.lastReset.empty() && result.report.lastResetMs > 0)
            spdlog::debug("{} reports its spool reset: {}", who, escapeForLog(result.report.lastReset));
    };

    // Policy first (kCapEarlyPolicy, push): the Policy goes in the write of
    // the AuthOk, decided without the Report, which the node sends in the
    // write of its first batch; it is stored before that batch.
    spdlog::debug("{}: authenticated ({})", who, o.via);
    const bool earlyPolicy = o.side == SessionSide::Responder && (hs.capabilities & kCapEarlyPolicy) != 0;
    if (!earlyPolicy) {
        if (!authOk.empty())
            stream.writeAll(authOk.data(), authOk.size(), deadlineIn(o.ioTimeout));
        authOk.clear();
        readReport();
        spdlog::debug("{}: Report received", who);
    }
    // The epoch, the period floor (push) or the cursor (pull): one
    // transaction.
    SessionStart start;
    start.node = hs.node;
    start.epoch = hs.epoch;
    start.address = address;
    start.via = o.via;
    start.report = earlyPolicy ? nullptr : &result.report;
    start.pacing = o.via == "push";
    start.defaultMinPushPeriodS = o.minPushPeriodS;
    start.defaultMinPullIntervalS = o.minPullIntervalS;
    start.nowMs = nowMs();
    start.cursor = o.via == "pull";
    const SessionAdmission admitted = store.admitSession(start);
    result.admission = admitted.epoch;

    PolicyMessage policy;
    policy.held = result.admission.held;
    policy.reason = result.admission.reason;
    policy.policy = o.policy;
    if (start.pacing) {
        result.pacing = admitted.pacing;
        if (result.pacing.minPushPeriodS > 0)
            policy.policy.emplace_back(kPolicyMinPushPeriod, std::to_string(result.pacing.minPushPeriodS));
        if (result.pacing.minPullIntervalS > 0)
            policy.policy.emplace_back(kPolicyMinPullInterval, std::to_string(result.pacing.minPullIntervalS));
        if (result.pacing.early)
            policy.policy.emplace_back(kPolicyNextPushAt, std::to_string(result.pacing.comeBackAtMs));
    }
    if (start.cursor)
        policy.storedUpTo = admitted.cursor;
    result.cursor = policy.storedUpTo;
    {
        const std::string frames = authOk + encodeFrame(MessageType::Policy, encode(policy));
        stream.writeAll(frames.data(), frames.size(), deadlineIn(o.ioTimeout));
    }
    spdlog::debug("{}: Policy sent (stored up to {})", who, policy.storedUpTo);
    // Policy first: the Report came in the write of the first batch (or of
    // the Bye), and is stored in that batch's transaction; on its own only
    // when no batch takes it along.
    bool reportPending = false;
    if (earlyPolicy) {
        readReport();
        reportPending = true;
    }
    auto storePendingReport = [&] {
        if (std::exchange(reportPending, false))
            store.storeReport(hs.node, hs.epoch, o.via, address, result.report);
    };
    // A session that fails after its Report came (a bad frame, a node that
    // gives up) still stores it, as when the Report had a transaction of
    // its own right away.
    struct ReportOnFailure {
        std::function<void()> store;
        int exceptions = std::uncaught_exceptions();
        ~ReportOnFailure()
        {
            if (std::uncaught_exceptions() <= exceptions)
                return;
            try {
                store();
            } catch (const std::exception& e) {
                spdlog::debug("Ignoring a failure to store the Report of a failed session: {}", e.what());
            }
        }
    } reportOnFailure{storePendingReport};

    std::uint64_t headLast = 0; // last record of this session's head lane
    // Group commit, pipelined: the batches that have arrived are stored in
    // one transaction (one sync) on a thread of its own, while this thread
    // reads the batches that follow; once the commit is done their Acks go
    // out in order and whatever arrived meanwhile is the next group.
    // Bounded: a group never holds more than kMaxGroupBatches frames or
    // kMaxGroupBytes of them, and while one group commits and the next is
    // full (or ends with a head batch) nothing more is read, so the master
    // holds at most two groups. afterCommit runs once per group, after its
    // commit and before its first Ack.
    struct Arrived {
        std::vector<Record> records;
        bool head = false;
        std::uint64_t cursorAfter = 0; // BatchToStore::cursorAfter
    };
    // The head lane as it arrived: it commits before any batch after it.
    std::uint64_t headFirst = 0;
    std::uint64_t headLastArrived = 0;
    std::vector<Arrived> group; // arriving
    std::size_t groupBytes = 0;
    bool groupClosed = false;        // it ends with a head batch
    std::vector<Arrived> committing; // being stored (declared before commit: outlives its thread)
    BackgroundCommit commit;
    // Backlog batches continue where the last one ended, so that the cursor
    // keeps meaning "everything up to here is stored"; checked as batches
    // arrive, ahead of their commit.
    std::uint64_t backlogAfter = result.cursor;
    // here: on this thread (the Bye is in: nothing to read meanwhile).
    auto startCommit = [&](bool here) {
        committing = std::move(group);
        group.clear();
        groupBytes = 0;
        groupClosed = false;
        std::vector<BatchToStore> batches;
        batches.reserve(committing.size());
        for (const auto& g : committing)
            batches.push_back({&g.records, g.head ? BatchLane::Head : BatchLane::Backlog, g.cursorAfter});
        // On pull, the cursor moves in the same transaction as the batches.
        WithBatches with;
        if (std::exchange(reportPending, false)) {
            with.report = &result.report;
            with.address = address;
        }
        spdlog::debug("{}: commit of {} batches started", who, batches.size());
        commit.start(
            [&store, &hs, &o, &who, batches = std::move(batches), with = std::move(with)] {
                auto acks = store.storeBatches(hs.node, hs.epoch, batches, o.via, with);
                spdlog::debug("{}: commit of {} batches done", who, batches.size());
                return acks;
            },
            here);
    };
    // Whether the next frame waiting in the stream is the node's Bye (a
    // node writes it with its last batch).
    const std::string bye = encodeFrame(MessageType::Bye, {});
    auto byeIsHere = [&] {
        char next[kFrameHeaderSize];
        return bye.size() == sizeof next && stream.peek(next, sizeof next) == sizeof next &&
               bye.compare(0, sizeof next, next, sizeof next) == 0;
    };
    auto groupFull = [&] { return groupClosed || group.size() >= kMaxGroupBatches || groupBytes >= kMaxGroupBytes; };
    // Waits for the commit and counts what it stored; sends its Acks unless
    // the node is gone. The next group, if anything arrived meanwhile,
    // starts to commit before those Acks go out, so that they travel while
    // it syncs.
    auto finishCommit = [&](bool sendAcks) {
        const std::vector<AckMessage> acks = commit.finish();
        if (sendAcks && o.afterCommit)
            o.afterCommit();
        std::string ackFrames; // the group's Acks, one per batch, in order, in one write
        for (std::size_t i = 0; i < committing.size(); ++i) {
            const auto& g = committing[i];
            if (g.head) {
                result.headRecords += g.records.size();
                headLast = std::max(headLast, g.records.back().seq);
            } else
                result.cursor = std::max(g.records.back().seq, g.cursorAfter);
            if (sendAcks) {
                AckMessage reply = acks[i];
                reply.storedUpTo = g.records.back().seq;
                // Acknowledge only after the transaction committed (synchronous=FULL).
                ackFrames += encodeFrame(MessageType::Ack, encode(reply));
            }
            ++result.batches;
            result.records += g.records.size();
            result.newlyStored += acks[i].newlyStored;
            result.duplicates += acks[i].duplicates;
        }
        committing.clear();
        if (!sendAcks)
            return;
        if (!group.empty())
            startCommit(false);
        stream.writeAll(ackFrames.data(), ackFrames.size(), deadlineIn(o.ioTimeout));
        spdlog::debug("{}: Acks sent up to record {}", who, std::max(result.cursor, headLast));
    };
    for (;;) {
        if (commit.busy() && commit.done())
            finishCommit(true);
        if (commit.busy()) {
            // The next group is full: read nothing more until there is room.
            if (groupFull()) {
                finishCommit(true);
                continue;
            }
            // Read on while the commit runs; wake when it is done.
            if (!stream.hasInput() && !stream.waitForInput(commit.doneFd(), deadlineIn(o.ioTimeout)))
                continue;
        } else if (!group.empty() && !byeIsHere()) {
            // What has arrived commits at once: whatever arrives meanwhile
            // is read during the commit and forms the next group. (Never
            // wait for a frame with batches unacked: the node may be
            // waiting for their Acks.) A Bye that is already here is read
            // first: the commit is then the session's last.
            startCommit(false);
            continue;
        }
        Frame f;
        try {
            f = readFrame(stream, deadlineIn(o.ioTimeout), kMaxBatchFrame);
        } catch (const ClosedError&) {
            // A node that vanishes between batches loses nothing: it
            // resends whatever was not acked (a group not yet stored too).
            // A commit under way completes; its records count as stored.
            if (commit.busy())
                finishCommit(false);
            storePendingReport();
            result.closedWithoutBye = true;
            return result;
        } catch (const ProtocolError& e) {
            sendError(stream, kSessionErrorProtocol, "bad frame");
            throw ProtocolError(std::string(e.what()) + " (from " + who + ")");
        }
        if (f.type == MessageType::Bye) {
            spdlog::debug("{}: Bye received", who);
            // A node says Bye with its last batch, before their Acks (an
            // older node only once every batch was acked): whatever it sent
            // is stored and acknowledged before the session ends.
            while (commit.busy() || !group.empty()) {
                if (!commit.busy())
                    startCommit(true);
                finishCommit(true);
            }
            storePendingReport();
            // The node's backlog lane reached its head lane: on pull,
            // everything up to the head's last record is stored now, and
            // the cursor may pass it (the last backlog batch moved it
            // already when it ended right below the head).
            if (o.via == "pull" && headLast > result.cursor && !policy.held) {
                store.setPullCursor(hs.node, hs.epoch, headLast);
                result.cursor = headLast;
            }
            spdlog::debug("{}: session over", who);
            return result;
        }
        if (f.type == MessageType::Error) {
            const ErrorMessage e = decodeError(f.payload, peer);
            throw ProtocolError(who + " gave up the session: " + escapeForLog(e.code) + ": " + escapeForLog(e.message));
        }
        const bool head = f.type == MessageType::HeadBatch && (hs.capabilities & kCapNewestFirst) != 0;
        if ((f.type != MessageType::Batch && !head) || policy.held) {
            sendError(stream, kSessionErrorProtocol, std::string("unexpected ") + toString(f.type));
            throw ProtocolError(who + " sent an unexpected " + toString(f.type) +
                                (policy.held ? " after being told its data is held" : ""));
        }
        Arrived batch;
        batch.head = head;
        try {
            batch.records = decodeBatch(f.payload, who);
        } catch (const ProtocolError&) {
            sendError(stream, kSessionErrorProtocol, "bad batch");
            throw;
        }
        if (batch.records.empty()) {
            sendError(stream, kSessionErrorProtocol, "empty batch");
            throw ProtocolError(who + " sent an empty batch");
        }
        // The head batch jumps ahead and leaves the cursor alone.
        if (!head && batch.records.front().seq <= backlogAfter) {
            sendError(stream, kSessionErrorProtocol, "batch does not follow the previous one");
            throw ProtocolError("Bad Batch from " + who + ": record " + std::to_string(batch.records.front().seq) +
                                " is not after " + std::to_string(backlogAfter));
        }
        if (!head)
            backlogAfter = batch.records.back().seq;
        // The backlog lane reached the head lane: on pull, the cursor moves
        // past the head in this batch's transaction.
        if (head) {
            headFirst = batch.records.front().seq;
            headLastArrived = batch.records.back().seq;
        } else if (headFirst > 0 && batch.records.back().seq + 1 == headFirst)
            batch.cursorAfter = headLastArrived;
        spdlog::debug("{}: {} of records {}-{} received ({} bytes)", who, toString(f.type), batch.records.front().seq,
                      batch.records.back().seq, f.payload.size());
        groupBytes += f.payload.size();
        group.push_back(std::move(batch));
        // The head lane is the node's present: stored as soon as it can be,
        // not behind backlog batches that arrive after it.
        if (head)
            groupClosed = true;
    }
}

} // namespace ferry
