#include "ferry/PullServer.h"

#include <deque>

#include "ferry/Crypto.h"
#include "ferry/Error.h"
#include "ferry/Wire.h"

namespace ferry {

PullServer::PullServer(ByteStream& stream, Spool& spool, PullServerOptions options)
    : m_stream(stream), m_spool(spool), m_options(std::move(options))
{
}

void PullServer::sendError(const std::string& code, const std::string& message)
{
    // Best effort: the master may already be gone, and the caller reports
    // the original failure either way.
    try {
        writeFrame(m_stream, MessageType::Error, encode(ErrorMessage{code, message}),
                   deadlineIn(std::chrono::milliseconds(2000)));
    } catch (const std::exception&) {
    }
}

void PullServer::authenticate()
{
    const auto deadline = [this] { return deadlineIn(m_options.ioTimeout); };
    const std::string challenge = randomBytes(kNonceSize);
    writeFrame(m_stream, MessageType::Hello, encode(HelloMessage{challenge, m_options.nodeName}), deadline());

    const Frame frame = readFrame(m_stream, deadline(), 4096);
    if (frame.type != MessageType::Auth) {
        sendError(kPullErrorProtocol, "expected Auth");
        throw ProtocolError(std::string("Bad message from the master ") + m_stream.peer() + ": expected Auth, got " +
                            toString(frame.type));
    }
    const AuthMessage auth = decodeAuth(frame.payload, m_stream.peer());
    const std::string expected =
        sessionProof(m_options.secret, kPullMasterLabel, kPullProtocol, challenge, auth.nonce, m_options.nodeName);
    // The node name is part of the proof, so a proof made for another node
    // fails here too; both failures look the same to the peer.
    if (auth.node != m_options.nodeName || auth.nonce.size() != kNonceSize || !constantTimeEqual(auth.mac, expected)) {
        sendError(kPullErrorAuth, "authentication failed");
        throw AuthError("Failed to authenticate the master " + m_stream.peer() + ": " +
                        (auth.node != m_options.nodeName ? "it asked for node '" + escapeForLog(auth.node) + "'"
                                                         : std::string("its proof of the node secret is wrong")));
    }
    const std::string proof =
        sessionProof(m_options.secret, kPullNodeLabel, kPullProtocol, challenge, auth.nonce, m_options.nodeName);
    writeFrame(m_stream, MessageType::AuthOk, encode(AuthOkMessage{proof}), deadline());
}

PullServerResult PullServer::run(const PullCommand& command)
{
    authenticate();
    switch (command.verb) {
    case PullVerb::Fetch: return fetch(command.cursor);
    case PullVerb::Status: status(); return {};
    }
    return {};
}

void PullServer::status()
{
    const SpoolStats st = m_spool.stats();
    PullStatus s{m_options.nodeName, st.records, st.bytes, st.lastSeq, st.oldestMs, st.droppedRecords, st.droppedBytes};
    writeFrame(m_stream, MessageType::Response, encode(s), deadlineIn(m_options.ioTimeout));
}

PullServerResult PullServer::fetch(std::uint64_t cursor)
{
    PullServerResult result;
    const std::uint64_t lastSeq = m_spool.stats().lastSeq;
    if (cursor > lastSeq) {
        // The master remembers more than this spool ever held (the node was
        // reinstalled, or the master's state belongs to another node).
        sendError(kPullErrorCursorAhead, "cursor " + std::to_string(cursor) + " is beyond the last sequence " +
                                             std::to_string(lastSeq));
        throw ProtocolError("Refused fetch from " + m_stream.peer() + ": cursor " + std::to_string(cursor) +
                            " is beyond the spool's last sequence " + std::to_string(lastSeq));
    }
    // The cursor says the master stored everything up to it: this repairs an
    // Ack that was lost when an earlier session dropped.
    if (cursor > 0) {
        result.deleted += m_spool.acknowledge(cursor);
        result.acknowledgedUpTo = cursor;
    }

    // Records appended while we stream wait for the next pull, so that a
    // busy sampler cannot keep one session open for ever.
    const std::uint64_t limit = lastSeq;
    std::uint64_t position = cursor;
    std::deque<std::uint64_t> inFlight;  // last sequence of each unacknowledged batch
    bool exhausted = position >= limit;
    const unsigned window = std::max(1u, m_options.window);

    while (true) {
        while (!exhausted && inFlight.size() < window) {
            auto batch = m_spool.readAfter(position, m_options.batchRecords, m_options.batchBytes);
            while (!batch.empty() && batch.back().seq > limit)
                batch.pop_back();
            if (batch.empty()) {
                exhausted = true;
                break;
            }
            position = batch.back().seq;
            result.recordsSent += batch.size();
            ++result.batches;
            inFlight.push_back(position);
            const std::string payload = encode(batch);
            batch.clear();
            batch.shrink_to_fit();
            writeFrame(m_stream, MessageType::Batch, payload, deadlineIn(m_options.ioTimeout));
            if (position >= limit)
                exhausted = true;
        }
        if (inFlight.empty())
            break;
        const Frame frame = readFrame(m_stream, deadlineIn(m_options.ioTimeout), 4096);
        if (frame.type == MessageType::Error) {
            const ErrorMessage err = decodeError(frame.payload, m_stream.peer());
            throw ProtocolError("The master " + m_stream.peer() + " gave up the fetch: " + escapeForLog(err.code) + ": " +
                                escapeForLog(err.message));
        }
        if (frame.type != MessageType::Ack) {
            sendError(kPullErrorProtocol, "expected Ack");
            throw ProtocolError(std::string("Bad message from the master ") + m_stream.peer() + ": expected Ack, got " +
                                toString(frame.type));
        }
        const AckMessage ack = decodeAck(frame.payload, m_stream.peer());
        // Acks come in order, one per batch, naming the batch's last record:
        // anything else would delete records the master may not have.
        if (ack.storedUpTo != inFlight.front()) {
            sendError(kPullErrorProtocol, "Ack does not match the oldest batch");
            throw ProtocolError("Bad Ack from the master " + m_stream.peer() + ": stored up to " +
                                std::to_string(ack.storedUpTo) + ", expected " + std::to_string(inFlight.front()));
        }
        inFlight.pop_front();
        result.deleted += m_spool.acknowledge(ack.storedUpTo);
        result.acknowledgedUpTo = ack.storedUpTo;
    }
    writeFrame(m_stream, MessageType::Bye, {}, deadlineIn(m_options.ioTimeout));
    return result;
}

} // namespace ferry
