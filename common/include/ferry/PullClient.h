#pragma once
// The master's side of the pull protocol (PullProtocol.h): after the shell
// was started with a command, prove the node secret, check the node's proof,
// then receive batches, hand each to a sink that stores it, and answer with
// an Ack only once the sink returned.

#include <chrono>
#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "ferry/Error.h"
#include "ferry/PullProtocol.h"
#include "ferry/Stream.h"
#include "ferry/Wire.h"

namespace ferry {

struct PullClientOptions {
    std::string nodeName;
    std::string secret;
    std::chrono::milliseconds ioTimeout{30000};
};

struct PullFetchResult {
    std::uint64_t batches = 0;
    std::uint64_t records = 0;     // records received
    std::uint64_t newlyStored = 0;
    std::uint64_t duplicates = 0;
    std::uint64_t cursor = 0;      // everything ≤ this is stored
};

// The node refused the cursor: it never had that many records.
class CursorAheadError : public ProtocolError {
public:
    using ProtocolError::ProtocolError;
};

class PullClient {
public:
    PullClient(ByteStream& stream, PullClientOptions options);

    // Stores each batch; must not return before the records are durable.
    using BatchSink = std::function<AckMessage(const std::vector<Record>&)>;
    // Called after each stored batch with the new cursor (persist it).
    using CursorSink = std::function<void(std::uint64_t)>;

    // For a stream running `fetch <cursor>`.
    PullFetchResult fetch(std::uint64_t cursor, const BatchSink& store, const CursorSink& advanced);
    // For a stream running `status`.
    PullStatus status();

private:
    void authenticate();
    [[noreturn]] void failOnError(const Frame& frame, const char* expected);

    ByteStream& m_stream;
    PullClientOptions m_options;
};

} // namespace ferry
