#include "SshNodeConnector.h"

#include <libssh/libssh.h>

#include <filesystem>

#include "ferry/Error.h"
#include "ferry/Files.h"
#include "ferry/RegistryStore.h"
#include "ferry/SshSession.h"

namespace pulld {

namespace {

// A pull reads far more than it writes. libssh queues the window adjust
// that lets sshd send more while we read, but sends it only when the
// session is next flushed; SshChannel::readSome then waits for data that
// sshd is waiting to be allowed to send. Flushing before each read (and
// every 100 ms while waiting) keeps the window open.
class FlushingStream : public ferry::ByteStream {
public:
    FlushingStream(ferry::SshSession& session, ferry::SshChannel& channel) : m_session(session), m_channel(channel) {}

    std::size_t readSome(void* buf, std::size_t size, ferry::Deadline deadline) override
    {
        for (;;) {
            ssh_blocking_flush(m_session.handle(), 0);
            const auto slice = std::min(deadline, ferry::Clock::now() + std::chrono::milliseconds(100));
            try {
                return m_channel.readSome(buf, size, slice);
            } catch (const ferry::TimeoutError&) {
                if (ferry::Clock::now() >= deadline)
                    throw;
            }
        }
    }
    void writeAll(const void* buf, std::size_t size, ferry::Deadline deadline) override
    {
        m_channel.writeAll(buf, size, deadline);
    }
    // The master's session stores the batches that have arrived together
    // and reads on while it commits (Session.h): both ask the channel.
    bool hasInput() override { return m_channel.hasInput(); }
    bool waitForInput(int wakeFd, ferry::Deadline deadline) override
    {
        return m_channel.waitForInput(wakeFd, deadline);
    }
    void closeWrite() override { m_channel.closeWrite(); }
    std::string peer() const override { return m_channel.peer(); }

private:
    ferry::SshSession& m_session;
    ferry::SshChannel& m_channel;
};

class SshNodeChannel : public NodeChannel {
public:
    SshNodeChannel(std::unique_ptr<ferry::SshSession> session, std::unique_ptr<ferry::SshChannel> channel)
        : m_session(std::move(session)), m_channel(std::move(channel)), m_stream(*m_session, *m_channel)
    {
    }
    ~SshNodeChannel() override
    {
        m_channel.reset();  // before the session it belongs to
    }
    ferry::ByteStream& stream() override { return m_stream; }
    std::string binding() const override { return m_session->hostKeyFingerprint(); }

private:
    std::unique_ptr<ferry::SshSession> m_session;
    std::unique_ptr<ferry::SshChannel> m_channel;
    FlushingStream m_stream;
};

} // namespace

SshNodeConnector::SshNodeConnector(const PulldConfig& config, std::string registryDatabase) : m_config(config)
{
    if (!registryDatabase.empty())
        m_registry.emplace(ferry::StoreConfig{}, std::move(registryDatabase));
}

SshNodeConnector::SshNodeConnector(const PulldConfig& config, ferry::MasterStoreOpener registry)
    : m_config(config), m_registry(std::move(registry))
{
}

std::string SshNodeConnector::knownHostsFor(const ferry::NodeInfo& node)
{
    if (!m_registry)
        return m_config.knownHostsFile;
    const auto keys = ferry::RegistryStore::pinnedHostKeys(*m_registry->tables(), node.name);
    if (keys.empty())
        return m_config.knownHostsFile;
    const std::string dir = m_config.knownHostsFile + ".d";
    std::filesystem::create_directories(dir);
    // Node names are [A-Za-z0-9._-] and never start with '.': safe as a file name.
    const std::string path = dir + "/" + node.name;
    const std::string text = ferry::knownHostsText(node.sshHost, node.sshPort, keys);
    if (ferry::readFileIfExists(path, 64 * 1024).value_or("") != text)
        ferry::writeFileAtomic(path, text, 0644);
    return path;
}

std::unique_ptr<NodeChannel> SshNodeConnector::open(const ferry::NodeInfo& node, const std::string& command)
{
    ferry::SshTarget target{node.sshHost, node.sshPort, m_config.user};
    ferry::SshOptions options;
    options.privateKeyFile = m_config.keyFile;
    options.knownHostsFile = knownHostsFor(node);
    options.connectTimeout = m_config.connectTimeout;
    options.ioTimeout = m_config.ioTimeout;
    auto session = std::make_unique<ferry::SshSession>(target, options);
    auto channel = session->exec(command);
    return std::make_unique<SshNodeChannel>(std::move(session), std::move(channel));
}

} // namespace pulld
