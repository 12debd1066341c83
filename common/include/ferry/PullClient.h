#pragma once
// The master's side of the pull protocol (PullProtocol.h): after the shell
// was started with a command, run the common session (Session.h) as its
// initiator into the master store: every batch is committed before its Ack,
// and the cursor kept per (node, epoch) advances with it.

#include <chrono>
#include <cstdint>
#include <string>

#include "ferry/PullProtocol.h"
#include "ferry/Session.h"
#include "ferry/SessionStore.h"
#include "ferry/Stream.h"

namespace ferry {

struct PullClientOptions {
    std::string nodeName;
    std::string secret; // the node's credential as stored (parseNodeCredential)
    std::chrono::milliseconds ioTimeout{30000};
    std::string address;  // the node's SSH host, for node_epochs
    std::string masterId = "ferry-master"; // proven as when the credential is a legacy secret
    std::string binding = {};              // the node sshd's host key fingerprint, as verified
};

class PullClient {
public:
    PullClient(ByteStream& stream, PullClientOptions options);

    // For a stream running `fetch <cursor>`.
    MasterSessionResult fetch(SessionStore& store);
    // For a stream running `status`.
    PullStatus status(SessionStore& store);

private:
    MasterSessionOptions sessionOptions() const;

    ByteStream& m_stream;
    PullClientOptions m_options;
};

} // namespace ferry
