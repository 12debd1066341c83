#pragma once
// Pulls over SSH: libssh with the master's pull key, the node's host key
// pinned in a known_hosts file as "[host]:port key" (never ~/.ssh, never
// the system file), and the command run by the node's login shell.

#include "NodeConnector.h"
#include "PulldConfig.h"

namespace pulld {

class SshNodeConnector : public NodeConnector {
public:
    explicit SshNodeConnector(const PulldConfig& config);
    std::unique_ptr<NodeChannel> open(const ferry::NodeInfo& node, const std::string& command) override;

private:
    PulldConfig m_config;
};

} // namespace pulld
