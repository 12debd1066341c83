#pragma once
// The node's side of the pull protocol (PullProtocol.h), as ferry-login runs
// it over its stdin/stdout: prove the install secret both ways, then serve
// one command from the spool.
//
// fetch never holds more than one batch of records in memory: the next batch
// is read from the spool only when fewer than `window` batches await their
// Ack, and a sent batch is kept only as its last sequence number. Records are
// deleted only by an Ack (or by the cursor of a later fetch), so a connection
// that drops at any point loses nothing.

#include <chrono>
#include <cstdint>
#include <string>

#include "ferry/PullProtocol.h"
#include "ferry/Spool.h"
#include "ferry/Stream.h"

namespace ferry {

struct PullServerOptions {
    std::string nodeName;
    std::string secret;
    std::size_t batchRecords = 500;
    std::size_t batchBytes = 512 * 1024;
    std::chrono::milliseconds ioTimeout{30000};
    // Batches sent ahead of their Ack; hides the round trip per batch.
    unsigned window = 4;
};

struct PullServerResult {
    std::uint64_t recordsSent = 0;
    std::uint64_t batches = 0;
    std::uint64_t acknowledgedUpTo = 0;  // highest sequence deleted by this session
    std::uint64_t deleted = 0;           // records deleted (cursor and Acks)
};

class PullServer {
public:
    PullServer(ByteStream& stream, Spool& spool, PullServerOptions options);

    // Authenticates the master, then runs command. Throws AuthError when the
    // master's proof is wrong (after telling it "auth-failed"), ProtocolError
    // for a bad message, TimeoutError/ClosedError when the master goes away.
    PullServerResult run(const PullCommand& command);

private:
    void authenticate();
    PullServerResult fetch(std::uint64_t cursor);
    void status();
    void sendError(const std::string& code, const std::string& message);

    ByteStream& m_stream;
    Spool& m_spool;
    PullServerOptions m_options;
};

} // namespace ferry
