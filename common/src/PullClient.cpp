#include "ferry/PullClient.h"

#include "ferry/Crypto.h"
#include "ferry/Error.h"

namespace ferry {

PullClient::PullClient(ByteStream& stream, PullClientOptions options) : m_stream(stream), m_options(std::move(options))
{
}

void PullClient::failOnError(const Frame& frame, const char* expected)
{
    if (frame.type == MessageType::Error) {
        const ErrorMessage err = decodeError(frame.payload, m_stream.peer());
        const std::string text = "node " + m_options.nodeName + " refused: " + escapeForLog(err.message);
        if (err.code == kPullErrorAuth)
            throw AuthError("Failed to authenticate to " + text + " (is the node secret right?)");
        if (err.code == kPullErrorCursorAhead)
            throw CursorAheadError(text);
        throw ProtocolError(text + " (" + escapeForLog(err.code) + ")");
    }
    throw ProtocolError("Bad message from node " + m_options.nodeName + " (" + m_stream.peer() + "): expected " +
                        expected + ", got " + toString(frame.type));
}

void PullClient::authenticate()
{
    const auto deadline = [this] { return deadlineIn(m_options.ioTimeout); };
    Frame frame = readFrame(m_stream, deadline(), 4096);
    if (frame.type != MessageType::Hello)
        failOnError(frame, "Hello");
    const HelloMessage hello = decodeHello(frame.payload, m_stream.peer());
    if (hello.challenge.size() != kNonceSize)
        throw ProtocolError("Bad Hello from node " + m_options.nodeName + ": challenge of " +
                            std::to_string(hello.challenge.size()) + " bytes");
    const std::string nonce = randomBytes(kNonceSize);
    const std::string proof =
        sessionProof(m_options.secret, kPullMasterLabel, kPullProtocol, hello.challenge, nonce, m_options.nodeName);
    writeFrame(m_stream, MessageType::Auth, encode(AuthMessage{m_options.nodeName, nonce, proof}), deadline());

    frame = readFrame(m_stream, deadline(), 4096);
    if (frame.type != MessageType::AuthOk)
        failOnError(frame, "AuthOk");
    const AuthOkMessage ok = decodeAuthOk(frame.payload, m_stream.peer());
    const std::string expected =
        sessionProof(m_options.secret, kPullNodeLabel, kPullProtocol, hello.challenge, nonce, m_options.nodeName);
    if (!constantTimeEqual(ok.mac, expected))
        throw AuthError("Failed to authenticate node " + m_options.nodeName + " (" + m_stream.peer() +
                        "): its proof of the node secret is wrong; refusing its data");
}

PullFetchResult PullClient::fetch(std::uint64_t cursor, const BatchSink& store, const CursorSink& advanced)
{
    authenticate();
    PullFetchResult result;
    result.cursor = cursor;
    while (true) {
        const Frame frame = readFrame(m_stream, deadlineIn(m_options.ioTimeout));
        if (frame.type == MessageType::Bye)
            return result;
        if (frame.type != MessageType::Batch)
            failOnError(frame, "Batch or Bye");
        const std::vector<Record> batch = decodeBatch(frame.payload, m_stream.peer());
        if (batch.empty())
            throw ProtocolError("Bad Batch from node " + m_options.nodeName + ": no records");
        // Batches continue where the last one ended, so the cursor keeps
        // meaning "everything up to here is stored".
        if (batch.front().seq <= result.cursor)
            throw ProtocolError("Bad Batch from node " + m_options.nodeName + ": record " +
                                std::to_string(batch.front().seq) + " is not after the cursor " +
                                std::to_string(result.cursor));
        const AckMessage ack = store(batch);
        result.batches++;
        result.records += batch.size();
        result.newlyStored += ack.newlyStored;
        result.duplicates += ack.duplicates;
        result.cursor = batch.back().seq;
        advanced(result.cursor);
        AckMessage reply = ack;
        reply.storedUpTo = batch.back().seq;
        writeFrame(m_stream, MessageType::Ack, encode(reply), deadlineIn(m_options.ioTimeout));
    }
}

PullStatus PullClient::status()
{
    authenticate();
    const Frame frame = readFrame(m_stream, deadlineIn(m_options.ioTimeout), 4096);
    if (frame.type != MessageType::Response)
        failOnError(frame, "Response");
    return decodePullStatus(frame.payload, m_stream.peer());
}

} // namespace ferry
