#include "LoginShell.h"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include <spdlog/spdlog.h>

#include "ferry/Crypto.h"
#include "ferry/Error.h"
#include "ferry/PullServer.h"
#include "ferry/Spool.h"
#include "ferry/SshdHostKeys.h"

namespace pullshell {

namespace {

// sshd reads what the shell sends from a pipe of 64 KiB: the shell would
// wait for it sixteen times per 1 MiB batch instead of reading and encoding
// the next one. 1 MiB is what an unprivileged process may ask for
// (/proc/sys/fs/pipe-max-size).
constexpr int kOutputPipeSize = 1024 * 1024;

void writeMessage(int fd, const char* message)
{
    // Nothing can be done if stderr is gone; the journal line stands.
    const std::size_t size = std::strlen(message);
    std::size_t done = 0;
    while (done < size) {
        const ssize_t n = ::write(fd, message + done, size - done);
        if (n <= 0)
            return;
        done += static_cast<std::size_t>(n);
    }
}

} // namespace

LoginShell::LoginShell(ShellContext context, PullObserver& observer)
    : m_context(std::move(context)), m_observer(observer)
{
}

int LoginShell::refuse(int errFd, const std::string& reason, const std::string& command)
{
    // The journal line first: a client that hangs up on reading the message
    // must not take the record of its attempt with it.
    spdlog::warn("Refused a request from {}: {}; command '{}'", m_context.client, reason,
                 ferry::escapeForLog(command));
    writeMessage(errFd, kRefusalMessage);
    return 1;
}

int LoginShell::run(int inFd, int outFd, int errFd)
{
    const Request request = resolveRequest(m_context.invocation);
    if (!request.command)
        return refuse(errFd, request.refusal, "");
    const ferry::PullCommandParse parsed = ferry::parsePullCommand(*request.command);
    if (!parsed.command)
        return refuse(errFd, parsed.reason, *request.command);
    // The protocol is binary; a terminal would mangle it, and a granted pty
    // means someone is trying to sit at this account.
    if (m_context.onTerminal)
        return refuse(errFd, "a terminal was allocated", *request.command);

    const ferry::PullCommand command = *parsed.command;
    const std::string what = ferry::formatPullCommand(command);
    try {
        const ferry::NodeConfig config = ferry::loadNodeConfig(m_context.paths);
        const std::string secret = ferry::loadSecret(m_context.paths.secretFile());
        ferry::Spool spool{m_context.paths.spoolFile(), ferry::SpoolLimits{config.spoolMaxBytes, config.spoolMaxAge}};
        if (::fcntl(outFd, F_SETPIPE_SZ, kOutputPipeSize) < 0 && errno != EBADF)
            spdlog::debug("Could not enlarge the pipe to sshd, ignoring: {}", ferry::errnoMessage(errno));
        ferry::FdStream stream{inFd, outFd, "master " + m_context.client, false};
        ferry::PullServerOptions options;
        options.nodeName = config.nodeName;
        options.secret = secret;
        options.ownHostKeys = ferry::sshdHostKeyFingerprints(m_context.sshdHostKeyDir);
        options.batchRecords = config.batchRecords;
        options.batchBytes = config.batchBytes;
        options.ioTimeout = std::chrono::duration_cast<std::chrono::milliseconds>(config.ioTimeout);
        options.report.transportMode = "pull";
        options.report.transportReason = "pulled by " + m_context.client;
        ferry::PullServer server{stream, spool, options};
        const ferry::PullServerResult result = server.run(command);
        if (command.verb == ferry::PullVerb::Fetch) {
            if (result.held)
                spdlog::warn("Pull by {}: the master holds the data of this spool (epoch {}); the records stay here",
                             m_context.client, result.epoch.shortHex());
            else
                spdlog::info("Pull by {}: sent {} records of epoch {} in {} batches, deleted {} acknowledged records "
                             "(up to {}){}",
                             m_context.client, result.recordsSent, result.epoch.shortHex(), result.batches,
                             result.deleted, result.acknowledgedUpTo,
                             result.laterEpochQueued ? "; the records of a later epoch go with the next pull" : "");
            m_observer.notePull();
        } else {
            spdlog::info("Served '{}' to {}", what, m_context.client);
        }
        return 0;
    } catch (const ferry::AuthError& e) {
        spdlog::warn("Refused '{}' from {}: {}", what, m_context.client, e.what());
        return 1;
    } catch (const std::exception& e) {
        spdlog::error("Failed to serve '{}' to {}: {}", what, m_context.client, e.what());
        writeMessage(errFd, kFailureMessage);
        return 1;
    }
}

} // namespace pullshell
