#pragma once
// The puller's edge to the network: run one pull command on a node and get
// its stdin/stdout as a stream. The real one is SSH (SshNodeConnector); a
// test may substitute another edge while everything else stays real.

#include <memory>
#include <string>

#include "ferry/MasterStore.h"
#include "ferry/Stream.h"

namespace pulld {

class NodeChannel {
public:
    virtual ~NodeChannel() = default;
    virtual ferry::ByteStream& stream() = 0;
    // The session binding: the node sshd's host key fingerprint this channel
    // verified, empty without SSH.
    virtual std::string binding() const { return {}; }
};

class NodeConnector {
public:
    virtual ~NodeConnector() = default;
    // Connects to node (its ssh_host and ssh_port) and starts command.
    virtual std::unique_ptr<NodeChannel> open(const ferry::NodeInfo& node, const std::string& command) = 0;
};

} // namespace pulld
