#include "PushCycle.h"

#include <spdlog/spdlog.h>

#include "ferry/Crypto.h"
#include "ferry/Error.h"
#include "ferry/Wire.h"

namespace pushd {

PushCycleResult runPushCycle(ferry::ByteStream& stream, ferry::Spool& spool, const PushCycleOptions& o)
{
    using namespace ferry;
    const auto deadline = [&] { return deadlineIn(o.ioTimeout); };
    const std::string peer = stream.peer();

    const HelloMessage hello = decodeHello(expectFrame(stream, MessageType::Hello, deadline()).payload, peer);
    AuthMessage auth;
    auth.node = o.nodeName;
    auth.nonce = randomBytes(kNonceSize);
    auth.mac = sessionProof(o.secret, "node", "push", hello.challenge, auth.nonce, o.nodeName);
    writeFrame(stream, MessageType::Auth, encode(auth), deadline());
    const AuthOkMessage ok = decodeAuthOk(expectFrame(stream, MessageType::AuthOk, deadline()).payload, peer);
    if (!constantTimeEqual(ok.mac, sessionProof(o.secret, "server", "push", hello.challenge, auth.nonce, o.nodeName)))
        throw AuthError("Collector " + peer + " failed to prove it knows this node's secret; nothing was sent");
    spdlog::debug("Authenticated to collector {} ({})", hello.server, peer);

    PushCycleResult result;
    std::uint64_t cursor = 0;
    for (;;) {
        const auto batch = spool.readAfter(cursor, o.batchRecords, o.batchBytes);
        if (batch.empty())
            break;
        writeFrame(stream, MessageType::Batch, encode(batch), deadline());
        AckMessage ack;
        try {
            ack = decodeAck(expectFrame(stream, MessageType::Ack, deadline()).payload, peer);
        } catch (const TimeoutError& e) {
            throw TimeoutError(std::string(e.what()) + " (waiting for the ack of batch " + std::to_string(result.batches + 1) +
                               ", records " + std::to_string(batch.front().seq) + "–" + std::to_string(batch.back().seq) + ")");
        }
        if (ack.storedUpTo != batch.back().seq)
            throw ProtocolError("Collector " + peer + " acknowledged up to " + std::to_string(ack.storedUpTo) +
                                " for a batch ending at " + std::to_string(batch.back().seq));
        spool.acknowledge(ack.storedUpTo);
        cursor = ack.storedUpTo;
        result.recordsSent += batch.size();
        result.recordsNew += ack.newlyStored;
        result.duplicates += ack.duplicates;
        ++result.batches;
    }
    writeFrame(stream, MessageType::Bye, {}, deadline());
    return result;
}

} // namespace pushd
