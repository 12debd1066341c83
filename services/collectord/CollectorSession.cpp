#include "CollectorSession.h"

#include <spdlog/spdlog.h>

#include "ferry/Crypto.h"
#include "ferry/Error.h"
#include "ferry/PullProtocol.h"
#include "ferry/Wire.h"

namespace collectord {

namespace {

void sendError(ferry::ByteStream& stream, const std::string& code, const std::string& message)
{
    try {
        ferry::writeFrame(stream, ferry::MessageType::Error, ferry::encode(ferry::ErrorMessage{code, message}),
                          ferry::deadlineIn(std::chrono::seconds(2)));
    } catch (const std::exception& e) {
        spdlog::debug("Ignoring failure to send an error to {}: {}", stream.peer(), e.what());
    }
}

} // namespace

SessionResult serveSession(ferry::ByteStream& stream, ferry::MasterStore& store, const SessionOptions& o)
{
    using namespace ferry;
    const std::string peer = stream.peer();
    const auto deadline = [&] { return deadlineIn(o.ioTimeout); };
    SessionResult result;

    HelloMessage hello{randomBytes(kNonceSize), o.serverName};
    writeFrame(stream, MessageType::Hello, encode(hello), deadline());

    AuthMessage auth;
    try {
        auth = decodeAuth(expectFrame(stream, MessageType::Auth, deadline(), 4096).payload, peer);
    } catch (const ProtocolError& e) {
        sendError(stream, "bad-request", e.what());
        throw;
    }
    const auto secret = store.nodeSecret(auth.node);
    if (!secret) {
        sendError(stream, "auth-failed", "node '" + auth.node + "' is not enrolled on this master");
        throw AuthError("Refused node '" + auth.node + "' from " + peer + ": not enrolled (or not accepted)");
    }
    if (!constantTimeEqual(auth.mac, sessionProof(*secret, "node", "push", hello.challenge, auth.nonce, auth.node))) {
        sendError(stream, "auth-failed", "wrong proof of the node secret for '" + auth.node + "'");
        throw AuthError("Refused node '" + auth.node + "' from " + peer + ": wrong proof of its secret");
    }
    if (o.onAuthenticated && !o.onAuthenticated(auth.node)) {
        sendError(stream, "busy", "too many sessions for this node; retry later");
        throw AuthError("Refused node '" + escapeForLog(auth.node) + "' from " + peer +
                        ": it already runs as many sessions as it may");
    }
    writeFrame(stream, MessageType::AuthOk,
               encode(AuthOkMessage{sessionProof(*secret, "server", "push", hello.challenge, auth.nonce, auth.node)}),
               deadline());
    result.node = auth.node;

    for (;;) {
        Frame f;
        try {
            f = readFrame(stream, deadline(), o.maxFrame);
        } catch (const ClosedError&) {
            // A node that vanishes between batches loses nothing: it
            // resends whatever was not acked.
            spdlog::debug("Node {} ({}) closed without Bye", auth.node, peer);
            return result;
        } catch (const ProtocolError& e) {
            sendError(stream, "bad-frame", e.what());
            throw;
        }
        if (f.type == MessageType::Bye)
            return result;
        if (f.type != MessageType::Batch) {
            sendError(stream, "bad-request", std::string("unexpected ") + toString(f.type));
            throw ProtocolError("Node " + auth.node + " (" + peer + ") sent an unexpected " + toString(f.type));
        }
        std::vector<Record> batch;
        try {
            batch = decodeBatch(f.payload, auth.node + " (" + peer + ")");
        } catch (const ProtocolError& e) {
            sendError(stream, "bad-batch", e.what());
            throw;
        }
        if (batch.empty()) {
            sendError(stream, "bad-batch", "empty batch");
            throw ProtocolError("Node " + auth.node + " (" + peer + ") sent an empty batch");
        }
        const AckMessage ack = store.storeBatch(auth.node, batch, o.via);
        // Acknowledge only after the transaction committed.
        writeFrame(stream, MessageType::Ack, encode(ack), deadline());
        ++result.batches;
        result.stored += ack.newlyStored;
        result.duplicates += ack.duplicates;
    }
}

} // namespace collectord
