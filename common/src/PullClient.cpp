#include "ferry/PullClient.h"

namespace ferry {

PullClient::PullClient(ByteStream& stream, PullClientOptions options) : m_stream(stream), m_options(std::move(options))
{
}

MasterSessionOptions PullClient::sessionOptions() const
{
    MasterSessionOptions so;
    so.protocol = kPullProtocol;
    so.side = SessionSide::Initiator;
    so.selfName = "ferry-pulld";
    so.via = "pull";
    so.expectedNode = m_options.nodeName;
    so.secret = m_options.secret;
    so.masterId = m_options.masterId;
    so.binding = m_options.binding;
    so.address = m_options.address;
    so.ioTimeout = m_options.ioTimeout;
    return so;
}

MasterSessionResult PullClient::fetch(SessionStore& store)
{
    return runMasterSession(m_stream, store, sessionOptions());
}

PullStatus PullClient::status(SessionStore& store)
{
    masterHandshake(m_stream, store, sessionOptions());
    const Frame frame = readFrame(m_stream, deadlineIn(m_options.ioTimeout), kMaxControlFrame);
    if (frame.type != MessageType::Response)
        throw ProtocolError("Bad message from node " + escapeForLog(m_options.nodeName) + " (" + m_stream.peer() +
                            "): expected Response, got " + toString(frame.type));
    return decodePullStatus(frame.payload, m_stream.peer());
}

} // namespace ferry
