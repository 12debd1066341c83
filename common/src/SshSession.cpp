#include "ferry/SshSession.h"

#include <unistd.h>

#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/stat.h>

#include <algorithm>
#include <cerrno>

#include <libssh/libssh.h>

#include "ferry/Error.h"
#include "ferry/Files.h"
#include "ferry/PullProtocol.h"
#include "ferry/SshKeys.h"

namespace ferry {

namespace {

int msLeft(Deadline deadline)
{
    const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now()).count();
    return left <= 0 ? 0 : static_cast<int>(std::min<long long>(left, 1 << 30));
}

struct KeyFree {
    void operator()(ssh_key k) const { ssh_key_free(k); }
};
using KeyPtr = std::unique_ptr<ssh_key_struct, KeyFree>;

// Drives a non-blocking libssh step to completion under our own poll(),
// re-arming TCP_QUICKACK after each wake-up (see the header for why).
template <typename Step>
int pump(ssh_session session, Deadline deadline, Step step, bool* closedByPeer = nullptr)
{
    for (;;) {
        const int rc = step();
        if (rc != SSH_AGAIN && rc != SSH_AUTH_AGAIN)
            return rc;
        // The deadline first: with no socket yet (or any more) there is
        // nothing to poll, and the loop must still end on time.
        const int left = msLeft(deadline);
        if (left == 0)
            return SSH_AGAIN;
        const socket_t fd = ssh_get_fd(session);
        if (fd == SSH_INVALID_SOCKET) {
            ::poll(nullptr, 0, std::min(left, 5));
            continue;
        }
        short events = POLLIN;
        if (ssh_get_poll_flags(session) & SSH_WRITE_PENDING)
            events |= POLLOUT;
        pollfd pfd{fd, events, 0};
        // The short cap keeps libssh moving in states where it wants to be
        // called again without the socket becoming ready (TCP connect).
        ::poll(&pfd, 1, std::min(left, 5));
        // A server that accepts and at once closes (sshd refusing the client
        // through hosts_access, MaxStartups, or a middlebox reset) leaves
        // libssh's non-blocking connect waiting for a banner that never
        // comes: see the end of the stream here, or it would read as a
        // timeout.
        if (closedByPeer != nullptr && (pfd.revents & (POLLIN | POLLHUP | POLLERR)) != 0) {
            char byte = 0;
            const ssize_t n = ::recv(fd, &byte, 1, MSG_PEEK | MSG_DONTWAIT);
            // 0: an orderly close; ECONNRESET: a reset after the accept. A
            // refused or unreachable connect is libssh's to report.
            if (n == 0 || (n < 0 && errno == ECONNRESET)) {
                *closedByPeer = true;
                return SSH_ERROR;
            }
        }
        const int one = 1;
        ::setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
        ::setsockopt(fd, IPPROTO_TCP, TCP_QUICKACK, &one, sizeof one);
    }
}

// How long sshd holds a connection it refused through hosts_access before
// closing it: Debian's sshd links libwrap, whose refuse() logs "refused
// connect from …", then sleeps 5 s ("be kind to the inetd") and exits,
// saying nothing on the connection meanwhile. Plus a margin.
constexpr std::chrono::milliseconds kSilentRefusalHold{6000};

bool tcpEstablished(socket_t fd)
{
    sockaddr_storage peer{};
    socklen_t len = sizeof peer;
    return fd != SSH_INVALID_SOCKET && ::getpeername(fd, reinterpret_cast<sockaddr*>(&peer), &len) == 0;
}

// After the connect deadline, on a connection that is up but silent: true
// when the peer closes it (or resets it) before `until`; false when it
// stays silent, or sends something after all.
bool closesSilentlyBefore(socket_t fd, Deadline until)
{
    for (;;) {
        const int left = msLeft(until);
        if (left == 0)
            return false;
        pollfd pfd{fd, POLLIN, 0};
        const int r = ::poll(&pfd, 1, left);
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0)
            return false;
        char byte = 0;
        const ssize_t n = ::recv(fd, &byte, 1, MSG_PEEK | MSG_DONTWAIT);
        if (n == 0 || (n < 0 && errno == ECONNRESET))
            return true;
        if (n > 0 || (errno != EAGAIN && errno != EINTR))
            return false;
    }
}

} // namespace

SshSession::SshSession(const SshTarget& target, const SshOptions& options) : m_options(options)
{
    m_name = target.user + "@" + target.host + ":" + std::to_string(target.port);
    m_session = ssh_new();
    if (m_session == nullptr)
        throw Error("Failed to create an SSH session for " + m_name);
    const unsigned int port = target.port;
    const long timeoutSec = std::max<long>(1, static_cast<long>((options.connectTimeout.count() + 999) / 1000));
    const bool no = false;
    const int logLevel = SSH_LOG_NOLOG;
    ssh_options_set(m_session, SSH_OPTIONS_LOG_VERBOSITY, &logLevel);
    ssh_options_set(m_session, SSH_OPTIONS_HOST, target.host.c_str());
    ssh_options_set(m_session, SSH_OPTIONS_PORT, &port);
    ssh_options_set(m_session, SSH_OPTIONS_USER, target.user.c_str());
    ssh_options_set(m_session, SSH_OPTIONS_TIMEOUT, &timeoutSec);
    if (!options.bindAddress.empty())
        ssh_options_set(m_session, SSH_OPTIONS_BINDADDR, options.bindAddress.c_str());
    // Never read ~/.ssh/config or the system's known_hosts: only the pinned file counts.
    ssh_options_set(m_session, SSH_OPTIONS_PROCESS_CONFIG, &no);
    ssh_options_set(m_session, SSH_OPTIONS_KNOWNHOSTS, options.knownHostsFile.c_str());
    ssh_options_set(m_session, SSH_OPTIONS_GLOBAL_KNOWNHOSTS, "/dev/null");
    ssh_options_set(m_session, SSH_OPTIONS_IDENTITY, options.privateKeyFile.c_str());
    ssh_options_set(m_session, SSH_OPTIONS_HOSTKEYS, "ssh-ed25519,ecdsa-sha2-nistp256,rsa-sha2-512,rsa-sha2-256");

    ssh_set_blocking(m_session, 0);
    const auto connectStart = Clock::now();
    const Deadline connectDeadline = deadlineIn(options.connectTimeout);
    bool closedByPeer = false;
    const int connected = pump(
        m_session, connectDeadline, [&] { return ssh_connect(m_session); }, &closedByPeer);
    // Out of time with the TCP connection up and no banner is not a firewall
    // dropping packets: something accepted and says nothing. sshd refusing
    // us through hosts_access does that for 5 s and then closes, so wait for
    // that close (bounded) to tell the operator which it is.
    bool silent = false;
    if (connected == SSH_AGAIN && tcpEstablished(ssh_get_fd(m_session)) && ssh_get_serverbanner(m_session) == nullptr) {
        silent = true;
        closedByPeer = closesSilentlyBefore(ssh_get_fd(m_session), connectStart + kSilentRefusalHold);
    }
    if (connected == SSH_ERROR && !closedByPeer) {
        // libssh read the end of the stream (or a reset: the client's banner
        // may arrive after the server's close) before our poll saw it.
        const std::string e = ssh_get_error(m_session);
        closedByPeer = e.find("Socket error: disconnected") != std::string::npos ||
                       e.find("Connection reset by peer") != std::string::npos;
    }
    if (connected != SSH_OK) {
        const std::string err =
            closedByPeer ? std::string("the server closed the connection before the SSH handshake ended (sshd "
                                       "refusing this client: hosts.deny, MaxStartups, or a reset on the way)")
            : silent     ? "the server accepted the TCP connection but sent no SSH banner within " +
                           std::to_string(std::max(options.connectTimeout, kSilentRefusalHold).count()) +
                           " ms (an overloaded or stuck sshd, or not an SSH server)"
            : connected == SSH_AGAIN ? "timed out after " + std::to_string(options.connectTimeout.count()) + " ms"
                                     : ssh_get_error(m_session);
        ssh_free(m_session);
        m_session = nullptr;
        if (err.find("imeout") != std::string::npos)
            throw TimeoutError("Failed to connect to " + m_name + ": " + err);
        throw Error("Failed to connect to " + m_name + ": " + err);
    }
    const int one = 1;
    ::setsockopt(ssh_get_fd(m_session), IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);

    // Verify the host key before sending anything that identifies us.
    const auto known = ssh_session_is_known_server(m_session);
    if (known != SSH_KNOWN_HOSTS_OK) {
        std::string fp = "unknown";
        ssh_key srvKey = nullptr;
        if (ssh_get_server_publickey(m_session, &srvKey) == SSH_OK) {
            fp = fingerprintOf(srvKey);
            ssh_key_free(srvKey);
        }
        std::string why;
        switch (known) {
        case SSH_KNOWN_HOSTS_CHANGED: why = "its host key differs from the pinned one"; break;
        case SSH_KNOWN_HOSTS_OTHER: why = "it offered a host key of a type other than the pinned one"; break;
        case SSH_KNOWN_HOSTS_NOT_FOUND: why = "no pinned host keys (" + options.knownHostsFile + " is missing)"; break;
        case SSH_KNOWN_HOSTS_UNKNOWN: why = "its host key is not pinned in " + options.knownHostsFile; break;
        default: why = std::string("host key check failed: ") + ssh_get_error(m_session); break;
        }
        ssh_disconnect(m_session);
        ssh_free(m_session);
        m_session = nullptr;
        throw AuthError("Refusing " + m_name + ": " + why + " (offered " + fp + ")");
    }
    {
        ssh_key srvKey = nullptr;
        if (ssh_get_server_publickey(m_session, &srvKey) == SSH_OK) {
            m_hostKeyFingerprint = fingerprintOf(srvKey);
            ssh_key_free(srvKey);
        }
    }

    ssh_key priv = nullptr;
    if (ssh_pki_import_privkey_file(options.privateKeyFile.c_str(), nullptr, nullptr, nullptr, &priv) != SSH_OK) {
        ssh_disconnect(m_session);
        ssh_free(m_session);
        m_session = nullptr;
        throw Error("Failed to load the key " + options.privateKeyFile);
    }
    KeyPtr key(priv);
    int rc = SSH_AUTH_DENIED;
    // A certificate from the registry's CA (<key>-cert.pub, written by
    // keyregd) goes first: a master whose sshd trusts the CA admits it with
    // no key lookup. A master that does not is asked with the plain key.
    const std::string certFile = options.privateKeyFile + "-cert.pub";
    ssh_key cert = nullptr;
    if (::access(certFile.c_str(), F_OK) == 0 && ssh_pki_import_cert_file(certFile.c_str(), &cert) == SSH_OK) {
        KeyPtr certOwned(cert);
        ssh_key certified = nullptr;
        if (ssh_pki_import_privkey_file(options.privateKeyFile.c_str(), nullptr, nullptr, nullptr, &certified) ==
            SSH_OK) {
            KeyPtr certifiedOwned(certified);
            if (ssh_pki_copy_cert_to_privkey(cert, certified) == SSH_OK)
                rc = pump(m_session, deadlineIn(options.ioTimeout),
                          [&] { return ssh_userauth_publickey(m_session, nullptr, certified); });
        }
    }
    if (rc != SSH_AUTH_SUCCESS && rc != SSH_AUTH_ERROR)
        rc = pump(m_session, deadlineIn(options.ioTimeout),
                  [&] { return ssh_userauth_publickey(m_session, nullptr, key.get()); });
    if (rc != SSH_AUTH_SUCCESS) {
        const std::string err = rc == SSH_AUTH_DENIED ? "the master refused this node's key" : ssh_get_error(m_session);
        ssh_disconnect(m_session);
        ssh_free(m_session);
        m_session = nullptr;
        throw AuthError("Failed to authenticate to " + m_name + ": " + err);
    }
}

SshSession::~SshSession()
{
    if (m_session != nullptr) {
        ssh_disconnect(m_session);
        ssh_free(m_session);
    }
}

int SshSession::fd() const
{
    return ssh_get_fd(m_session);
}

void SshSession::rearmQuickAck() const
{
    const int one = 1;
    ::setsockopt(fd(), IPPROTO_TCP, TCP_QUICKACK, &one, sizeof one);
}

std::unique_ptr<SshChannel> SshSession::openForward(const std::string& host, std::uint16_t port, std::uint16_t originPort)
{
    ssh_channel ch = ssh_channel_new(m_session);
    if (ch == nullptr)
        throw Error("Failed to create a channel on " + m_name);
    if (pump(m_session, deadlineIn(m_options.ioTimeout),
             [&] { return ssh_channel_open_forward(ch, host.c_str(), port, "127.0.0.1", originPort); }) != SSH_OK) {
        const std::string err = ssh_get_error(m_session);
        ssh_channel_free(ch);
        throw Error("Failed to forward to " + host + ":" + std::to_string(port) + " through " + m_name + ": " + err);
    }
    return std::unique_ptr<SshChannel>(
        new SshChannel(*this, ch, host + ":" + std::to_string(port) + " via " + m_name));
}

std::unique_ptr<SshChannel> SshSession::exec(const std::string& command)
{
    ssh_channel ch = ssh_channel_new(m_session);
    if (ch == nullptr)
        throw Error("Failed to create a channel on " + m_name);
    const Deadline deadline = deadlineIn(m_options.ioTimeout);
    if (pump(m_session, deadline, [&] { return ssh_channel_open_session(ch); }) != SSH_OK ||
        pump(m_session, deadline, [&] { return ssh_channel_request_exec(ch, command.c_str()); }) != SSH_OK) {
        const std::string err = ssh_get_error(m_session);
        ssh_channel_free(ch);
        throw Error("Failed to run '" + command + "' on " + m_name + ": " + err);
    }
    return std::unique_ptr<SshChannel>(new SshChannel(*this, ch, "'" + command + "' on " + m_name));
}

SshChannel::SshChannel(SshSession& session, ssh_channel ch, std::string peer)
    : m_session(session), m_channel(ch), m_peer(std::move(peer))
{
}

SshChannel::~SshChannel()
{
    if (m_channel != nullptr) {
        ssh_channel_close(m_channel);
        ssh_channel_free(m_channel);
    }
}

void SshChannel::waitForSocket(short events, Deadline deadline, const char* what)
{
    pollfd pfd{m_session.fd(), events, 0};
    const int r = ::poll(&pfd, 1, msLeft(deadline));
    if (r == 0)
        throw TimeoutError(std::string("Timed out ") + what + " " + m_peer);
    if (r < 0 && errno != EINTR)
        throwErrno(std::string("poll while ") + what + " " + m_peer);
    m_session.rearmQuickAck();
}

std::string SshChannel::peer() const
{
    if (m_stderr.empty())
        return m_peer;
    // The last line: a remote command's own complaint comes after what sshd
    // may have written first (a home directory it could not enter).
    std::string_view text(m_stderr);
    while (!text.empty() && (text.back() == '\n' || text.back() == '\r'))
        text.remove_suffix(1);
    const auto nl = text.rfind('\n');
    return m_peer + " (which said: " + escapeForLog(nl == std::string_view::npos ? text : text.substr(nl + 1), 200) +
           ")";
}

std::size_t SshChannel::readSome(void* buf, std::size_t size, Deadline deadline)
{
    const auto n32 = static_cast<uint32_t>(std::min<std::size_t>(size, 1 << 20));
    for (;;) {
        // libssh queues window adjusts while reading and sends them on the
        // next flush: a stream that mostly reads would stall without this.
        if (ssh_blocking_flush(m_session.handle(), 0) == SSH_ERROR)
            throw ClosedError("Lost " + m_peer + ": " + ssh_get_error(m_session.handle()));
        const int n = ssh_channel_read_nonblocking(m_channel, buf, n32, 0);
        if (n > 0)
            return static_cast<std::size_t>(n);
        if (n == SSH_ERROR)
            throw ClosedError("Lost " + m_peer + ": " + ssh_get_error(m_session.handle()));
        // Keep stderr moving (bounded) so that it never blocks stdout or EOF.
        char err[4096];
        const int e = ssh_channel_read_nonblocking(m_channel, err, sizeof err, 1);
        if (e > 0) {
            if (m_stderr.size() < 64 * 1024)
                m_stderr.append(err, static_cast<std::size_t>(e));
            continue;
        }
        // Reading stderr may have moved stdout data from the socket into the
        // channel's buffer: look there before sleeping on the socket.
        const int buffered = ssh_channel_poll(m_channel, 0);
        if (buffered > 0)
            continue;
        if (buffered == SSH_EOF || ssh_channel_is_eof(m_channel) || ssh_channel_is_closed(m_channel))
            return 0;
        waitForSocket(POLLIN, deadline, "reading from");
    }
}

void SshChannel::writeAll(const void* buf, std::size_t size, Deadline deadline)
{
    const auto* p = static_cast<const char*>(buf);
    std::size_t done = 0;
    while (done < size) {
        const auto chunk = static_cast<uint32_t>(std::min<std::size_t>(size - done, 1 << 20));
        const int n = ssh_channel_write(m_channel, p + done, chunk);
        if (n == SSH_ERROR)
            throw ClosedError("Lost " + m_peer + " while writing: " + ssh_get_error(m_session.handle()));
        done += static_cast<std::size_t>(n);
        if (done < size) {
            if (ssh_channel_window_size(m_channel) == 0) {
                // The peer's window is exhausted: wait for its adjust, which
                // ssh_channel_poll processes.
                waitForSocket(POLLIN, deadline, "writing to");
                if (ssh_channel_poll(m_channel, 0) == SSH_ERROR)
                    throw ClosedError("Lost " + m_peer + " while writing: " + ssh_get_error(m_session.handle()));
            } else if (ssh_blocking_flush(m_session.handle(), std::max(msLeft(deadline), 1)) != SSH_OK) {
                // libssh's own output buffer was full: it must drain first.
                throw TimeoutError("Timed out writing to " + m_peer);
            }
            m_session.rearmQuickAck();
        }
    }
    const int left = msLeft(deadline);
    if (ssh_blocking_flush(m_session.handle(), std::max(left, 1)) != SSH_OK)
        throw TimeoutError("Timed out flushing data to " + m_peer);
}

bool SshChannel::hasInput()
{
    // The window adjusts that reading queued go out first (see readSome):
    // the caller may now be busy for a while without reading. Then what the
    // socket holds moves into the channel's buffer, not waiting.
    if (ssh_blocking_flush(m_session.handle(), 0) == SSH_ERROR)
        return false;
    return ssh_channel_poll(m_channel, 0) > 0;
}

bool SshChannel::waitForInput(int wakeFd, Deadline deadline)
{
    for (;;) {
        // What the socket holds moves into the channel's buffer here, and
        // the window adjusts of earlier reads go out.
        if (hasInput() || ssh_channel_is_eof(m_channel) || ssh_channel_is_closed(m_channel))
            return true;
        pollfd pfd[2] = {{m_session.fd(), POLLIN, 0}, {wakeFd, POLLIN, 0}};
        const int r = ::poll(pfd, 2, msLeft(deadline));
        if (r < 0 && errno != EINTR)
            throwErrno("poll while waiting for " + m_peer);
        m_session.rearmQuickAck();
        if (r == 0 || (pfd[1].revents & POLLIN) != 0)
            return false;
        // The socket had something; it may have been for another channel
        // or the transport alone: look again.
    }
}

void SshChannel::closeWrite()
{
    ssh_channel_send_eof(m_channel);
    ssh_blocking_flush(m_session.handle(), 1000);
}

int SshChannel::exitStatus()
{
    return ssh_channel_get_exit_status(m_channel);
}

} // namespace ferry
