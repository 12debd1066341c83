#include "CollectorConnector.h"

#include "ferry/SshSession.h"

namespace pushd {

namespace {

// Local origin port reported to sshd for the forward, as in the seed.
constexpr std::uint16_t kForwardOriginPort = 50011;
constexpr const char* kRelayCommand = "ferry-tunnel-relay";

class SshLink : public CollectorLink {
public:
    SshLink(std::unique_ptr<ferry::SshSession> session, std::unique_ptr<ferry::SshChannel> channel)
        : m_session(std::move(session)), m_channel(std::move(channel))
    {
    }
    ~SshLink() override
    {
        m_channel.reset();  // the channel must go before its session
    }
    ferry::ByteStream& stream() override { return *m_channel; }
    std::string binding() const override { return m_session->hostKeyFingerprint(); }

private:
    std::unique_ptr<ferry::SshSession> m_session;
    std::unique_ptr<ferry::SshChannel> m_channel;
};

class TcpLink : public CollectorLink {
public:
    explicit TcpLink(int fd) : m_stream(fd, fd, ferry::socketPeer(fd), true) {}
    ferry::ByteStream& stream() override { return m_stream; }

private:
    ferry::FdStream m_stream;
};

} // namespace

SshCollectorConnector::SshCollectorConnector(const ferry::NodeConfig& config, const ferry::Paths& paths)
    : m_config(config), m_paths(paths)
{
}

std::unique_ptr<CollectorLink> SshCollectorConnector::connect(const ferry::MasterAddress& master)
{
    ferry::SshOptions options;
    options.privateKeyFile = m_paths.privateKeyFile();
    options.knownHostsFile = m_paths.knownHostsFile();
    options.connectTimeout = m_config.connectTimeout;
    options.ioTimeout = m_config.ioTimeout;
    options.bindAddress = m_config.sourceAddress;
    auto session = std::make_unique<ferry::SshSession>(
        ferry::SshTarget{master.host, master.sshPort, m_config.tunnelUser}, options);
    // The master's sshd runs its relay for this user whatever the command
    // says; the name only makes the master's logs read well.
    auto channel = m_config.pushChannel == ferry::NodeConfig::PushChannel::Relay
                       ? session->exec(kRelayCommand)
                       : session->openForward(m_config.collectorHost, m_config.collectorPort, kForwardOriginPort);
    return std::make_unique<SshLink>(std::move(session), std::move(channel));
}

std::unique_ptr<CollectorLink> TcpCollectorConnector::connect(const ferry::MasterAddress&)
{
    return std::make_unique<TcpLink>(ferry::connectTcp(m_host, m_port, std::chrono::seconds(5)));
}

} // namespace pushd
