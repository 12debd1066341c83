#pragma once
// One node's data session on the master, over whatever stream carried it
// (the SSH forward ends at 127.0.0.1:50009): the master's side of the
// common session (ferry/Session.h) as its responder. Unknown nodes and wrong
// proofs get the same Error frame and a log line; nothing is stored for them.

#include <chrono>
#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "ferry/SessionStore.h"
#include "ferry/Stream.h"

namespace collectord {

struct SessionResult {
    std::string node;        // empty when authentication failed
    std::string epoch;       // short hex
    bool held = false;
    std::int64_t comeBackAtMs = 0; // the push was early: when the node was told to come back
    std::uint64_t batches = 0;
    std::uint64_t stored = 0;
    std::uint64_t duplicates = 0;
};

struct SessionOptions {
    std::string serverName = "ferry-collectord";
    std::chrono::milliseconds ioTimeout{30000};
    std::string via = "push";
    // The master's default period floor (registry.yml; 0: none), carried in
    // every push session; an early push is told when to come back.
    std::uint32_t minPushPeriodS = 0;
    std::uint32_t minPullIntervalS = 0;
    // Test hook (FERRY_FAILPOINT=collector-after-commit): runs after a
    // batch was committed, before its Ack.
    std::function<void()> afterCommit;
    // Called once the node proved its secret, before AuthOk: false refuses
    // the session (the node already runs as many as it may).
    std::function<bool(const std::string& node)> onAuthenticated;
    // The master sshd's host key fingerprints: a node's session binding must
    // name one of them (empty: not checked).
    std::vector<std::string> sshdHostKeys;
};

// Serves one connection to its end; throws on protocol violations after
// telling the peer (best effort).
SessionResult serveSession(ferry::ByteStream& stream, ferry::SessionStore& store, const SessionOptions& options);
// The same, opening the store only once the Hello is sent (collectord: the
// open overlaps the node's answer); openStore is called at most once.
SessionResult serveSession(ferry::ByteStream& stream, const std::function<ferry::SessionStore&()>& openStore,
                           const SessionOptions& options);

} // namespace collectord
