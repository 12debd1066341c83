#include "SshNodeConnector.h"

#include "ferry/Error.h"
#include "ferry/SshSession.h"

namespace pulld {

namespace {

class SshNodeChannel : public NodeChannel {
public:
    SshNodeChannel(std::unique_ptr<ferry::SshSession> session, std::unique_ptr<ferry::SshChannel> channel)
        : m_session(std::move(session)), m_channel(std::move(channel))
    {
    }
    ~SshNodeChannel() override
    {
        m_channel.reset();  // before the session it belongs to
    }
    ferry::ByteStream& stream() override { return *m_channel; }

private:
    std::unique_ptr<ferry::SshSession> m_session;
    std::unique_ptr<ferry::SshChannel> m_channel;
};

} // namespace

SshNodeConnector::SshNodeConnector(const PulldConfig& config) : m_config(config) {}

std::unique_ptr<NodeChannel> SshNodeConnector::open(const ferry::NodeInfo& node, const std::string& command)
{
    ferry::SshTarget target{node.sshHost, node.sshPort, m_config.user};
    ferry::SshOptions options;
    options.privateKeyFile = m_config.keyFile;
    options.knownHostsFile = m_config.knownHostsFile;
    options.connectTimeout = m_config.connectTimeout;
    options.ioTimeout = m_config.ioTimeout;
    auto session = std::make_unique<ferry::SshSession>(target, options);
    auto channel = session->exec(command);
    return std::make_unique<SshNodeChannel>(std::move(session), std::move(channel));
}

} // namespace pulld
