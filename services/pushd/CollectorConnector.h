#pragma once
// The edge between a push cycle and the network: opens a byte stream to the
// collector on one master. The real one is an SSH channel
// (SshCollectorConnector); tests may substitute a plain TCP connection to a
// real collectord to exercise the protocol without sshd.

#include <memory>

#include "ferry/NodeConfig.h"
#include "ferry/Stream.h"

namespace pushd {

class CollectorLink {
public:
    virtual ~CollectorLink() = default;
    virtual ferry::ByteStream& stream() = 0;
    // The session binding: the master sshd's host key fingerprint this link
    // verified, empty without SSH.
    virtual std::string binding() const { return {}; }
};

class CollectorConnector {
public:
    virtual ~CollectorConnector() = default;
    virtual std::unique_ptr<CollectorLink> connect(const ferry::MasterAddress& master) = 0;
};

// SSH to master:sshPort as the tunnel user, host key pinned in known_hosts,
// then either (push: channel: relay, the default) a session channel, in
// which the master's sshd runs ferry-tunnel-relay whatever is asked, or
// (channel: forward, for masters older than the relay) a direct-tcpip
// channel to collectorHost:collectorPort — the seed's forward of
// 127.0.0.1:50011 to 127.0.0.1:50009. Both are in-process, so no local port
// is opened that another local user could use.
class SshCollectorConnector : public CollectorConnector {
public:
    SshCollectorConnector(const ferry::NodeConfig& config, const ferry::Paths& paths);
    std::unique_ptr<CollectorLink> connect(const ferry::MasterAddress& master) override;

private:
    const ferry::NodeConfig& m_config;
    const ferry::Paths& m_paths;
};

// Plain TCP to host:port (for tests of the protocol alone).
class TcpCollectorConnector : public CollectorConnector {
public:
    TcpCollectorConnector(std::string host, std::uint16_t port) : m_host(std::move(host)), m_port(port) {}
    std::unique_ptr<CollectorLink> connect(const ferry::MasterAddress& master) override;

private:
    std::string m_host;
    std::uint16_t m_port;
};

} // namespace pushd
