#pragma once
// SSH client over libssh: connect with a timeout, verify the host key
// against a pinned known_hosts file (never ~/.ssh, never the system file),
// authenticate with the node's ed25519 key, then open channels that are
// ByteStreams with deadlines.
//
// libssh against OpenSSH stalls ~40 ms per round trip (sshd keeps Nagle on
// for non-interactive sessions and the client delays its ACKs), so data
// moves in non-blocking mode under our own poll(), with TCP_NODELAY set and
// TCP_QUICKACK re-armed after every wake-up.

#include <chrono>
#include <cstdint>
#include <memory>
#include <string>

#include "ferry/SshKeys.h" // the key-file helpers, for callers that include only this
#include "ferry/Stream.h"

struct ssh_session_struct;
struct ssh_channel_struct;

namespace ferry {

struct SshTarget {
    std::string host;
    std::uint16_t port = 22;
    std::string user;
};

struct SshOptions {
    std::string privateKeyFile;
    std::string knownHostsFile;  // pinned host keys; must exist
    std::string bindAddress;     // local address to connect from (empty: the kernel's choice)
    std::chrono::milliseconds connectTimeout{10000};
    std::chrono::milliseconds ioTimeout{30000};
};

class SshSession;

class SshChannel : public ByteStream {
public:
    ~SshChannel() override;
    std::size_t readSome(void* buf, std::size_t size, Deadline deadline) override;
    void writeAll(const void* buf, std::size_t size, Deadline deadline) override;
    bool hasInput() override;
    bool waitForInput(int wakeFd, Deadline deadline) override;
    void closeWrite() override;
    // What the channel runs, and where; once the remote side wrote to
    // stderr, its last line too (escaped), so that an error naming this
    // peer says why the remote command ended (a relay with no collector).
    std::string peer() const override;
    // For exec channels: the remote command's exit status once it closed (-1 unknown).
    int exitStatus();
    // What the remote side wrote to stderr so far (first 64 KiB).
    const std::string& stderrText() const { return m_stderr; }

private:
    friend class SshSession;
    SshChannel(SshSession& session, ssh_channel_struct* channel, std::string peer);
    void waitForSocket(short events, Deadline deadline, const char* what);

    SshSession& m_session;
    ssh_channel_struct* m_channel;
    std::string m_peer;
    std::string m_stderr;
};

class SshSession {
public:
    // Connects, verifies the host key, authenticates. Throws AuthError for a
    // host key mismatch or a refused key, Error/TimeoutError otherwise; the
    // message names the target.
    SshSession(const SshTarget& target, const SshOptions& options);
    ~SshSession();
    SshSession(const SshSession&) = delete;
    SshSession& operator=(const SshSession&) = delete;

    // A direct-tcpip channel to host:port as seen from the server (the
    // in-process equivalent of `ssh -L`). originPort is reported to sshd.
    std::unique_ptr<SshChannel> openForward(const std::string& host, std::uint16_t port, std::uint16_t originPort);
    // A session channel running command (what `ssh host command` does).
    std::unique_ptr<SshChannel> exec(const std::string& command);

    const std::string& name() const { return m_name; }
    // "SHA256:…" of the host key this session verified: the session binding
    // of the data session it carries (Session.h).
    const std::string& hostKeyFingerprint() const { return m_hostKeyFingerprint; }
    ssh_session_struct* handle() { return m_session; }
    int fd() const;
    void rearmQuickAck() const;
    std::chrono::milliseconds ioTimeout() const { return m_options.ioTimeout; }

private:
    ssh_session_struct* m_session = nullptr;
    SshOptions m_options;
    std::string m_name;  // "user@host:port"
    std::string m_hostKeyFingerprint;
};

} // namespace ferry
