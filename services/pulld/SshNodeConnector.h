#pragma once
// Pulls over SSH: libssh with the master's pull key, the node's host key
// pinned in a known_hosts file as "[host]:port key" (never ~/.ssh, never
// the system file), and the command run by the node's login shell.
//
// Host keys come from the registry (issue 13): the keys a node sent in its
// signed registration (RegistryStore::pinnedHostKeys) are written to a
// known_hosts file for that node alone, <known_hosts>.d/<node>, rebuilt
// before every pull, so there is no trust on first use. A node that has
// not sent any (an older keyregd) falls back to the hand-pinned known_hosts.

#include <optional>

#include "NodeConnector.h"
#include "PulldConfig.h"
#include "ferry/StoreConfig.h"

namespace pulld {

class SshNodeConnector : public NodeConnector {
public:
    // registryDatabase: master.db, where the registry pins node host keys
    // ("" to use only config.knownHostsFile).
    explicit SshNodeConnector(const PulldConfig& config, std::string registryDatabase = {});
    // The registry's pins in the store store.yml names (either backend).
    SshNodeConnector(const PulldConfig& config, ferry::MasterStoreOpener registry);
    std::unique_ptr<NodeChannel> open(const ferry::NodeInfo& node, const std::string& command) override;

private:
    // The known_hosts file to verify node with.
    std::string knownHostsFor(const ferry::NodeInfo& node);

    PulldConfig m_config;
    std::optional<ferry::MasterStoreOpener> m_registry;
};

} // namespace pulld
