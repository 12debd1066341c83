#pragma once
// The node's side of the pull protocol (PullProtocol.h), as ferry-login runs
// it over its stdin/stdout: the common session (Session.h) as its responder.
//
// fetch never holds more than one batch of records in memory, and records
// are deleted only by an Ack or by the master's per-epoch cursor in its
// Policy answer — never by the cursor on the command line, which names no
// epoch: a master whose cursor belonged to an earlier spool would otherwise
// delete records it never received.

#include <chrono>
#include <cstdint>
#include <string>
#include <vector>

#include "ferry/Limits.h"
#include "ferry/PullProtocol.h"
#include "ferry/Spool.h"
#include "ferry/Stream.h"
#include "ferry/Wire.h"

namespace ferry {

struct PullServerOptions {
    std::string nodeName;
    std::string secret;
    // This node's sshd host key fingerprints, which a master's session
    // binding must name (empty: not checked).
    std::vector<std::string> ownHostKeys;
    std::size_t batchRecords = 2000;
    std::size_t batchBytes = 1024 * 1024;
    std::chrono::milliseconds ioTimeout{30000};
    // Batches sent ahead of their Ack (Session.h).
    unsigned window = kSessionWindow;
    // Transport mode and reason, fwcheck verdict for the health report.
    HealthReport report;
};

struct PullServerResult {
    std::uint64_t recordsSent = 0;
    std::uint64_t batches = 0;
    std::uint64_t acknowledgedUpTo = 0;  // highest sequence deleted by this session
    std::uint64_t deleted = 0;           // records deleted (cursor and Acks)
    bool held = false;
    Epoch epoch;                   // the epoch this session carried
    bool laterEpochQueued = false; // another epoch waits for the next pull
};

class PullServer {
public:
    PullServer(ByteStream& stream, Spool& spool, PullServerOptions options);

    // Authenticates the master, then runs command. Throws AuthError when the
    // master's proof is wrong (after telling it "auth-failed"), VersionError
    // for an older master, ProtocolError for a bad message,
    // TimeoutError/ClosedError when the master goes away.
    PullServerResult run(const PullCommand& command);

private:
    ByteStream& m_stream;
    Spool& m_spool;
    PullServerOptions m_options;
};

} // namespace ferry
