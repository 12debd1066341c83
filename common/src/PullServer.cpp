#include "ferry/PullServer.h"

#include "ferry/Session.h"

namespace ferry {

PullServer::PullServer(ByteStream& stream, Spool& spool, PullServerOptions options)
    : m_stream(stream), m_spool(spool), m_options(std::move(options))
{
}

PullServerResult PullServer::run(const PullCommand& command)
{
    NodeSessionOptions so;
    so.protocol = kPullProtocol;
    so.side = SessionSide::Responder;
    so.nodeName = m_options.nodeName;
    so.secret = m_options.secret;
    so.ownHostKeys = m_options.ownHostKeys;
    so.batchRecords = m_options.batchRecords;
    so.batchBytes = m_options.batchBytes;
    so.window = m_options.window;
    so.ioTimeout = m_options.ioTimeout;
    so.report = m_options.report;
    if (command.verb == PullVerb::Status) {
        std::string peerName;
        nodeHandshake(m_stream, m_spool.sendingRange().epoch, so, peerName);
        const SpoolStats st = m_spool.stats();
        PullStatus s{m_options.nodeName, st.records,        st.bytes,          st.lastSeq,
                     st.oldestMs,        st.droppedRecords, st.droppedBytes};
        writeFrame(m_stream, MessageType::Response, encode(s), deadlineIn(m_options.ioTimeout));
        return {};
    }
    const NodeSessionResult r = runNodeSession(m_stream, m_spool, so);
    PullServerResult result;
    result.recordsSent = r.recordsSent;
    result.batches = r.batches;
    result.acknowledgedUpTo = r.acknowledgedUpTo;
    result.deleted = r.deleted;
    result.held = r.held;
    result.epoch = r.epoch;
    result.laterEpochQueued = r.laterEpochQueued;
    return result;
}

} // namespace ferry
