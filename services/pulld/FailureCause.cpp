#include "FailureCause.h"

#include <spdlog/spdlog.h>

#include "ferry/Error.h"
#include "ferry/MasterQueries.h"

namespace pulld {

const char* toString(FailureCause cause)
{
    switch (cause) {
    case FailureCause::ConnectionRefused: return "connection refused";
    case FailureCause::ClosedBeforeHandshake: return "closed before the SSH handshake";
    case FailureCause::NoBanner: return "no SSH banner";
    case FailureCause::Timeout: return "timeout";
    case FailureCause::Unreachable: return "unreachable";
    case FailureCause::HostKeyMismatch: return "host key mismatch";
    case FailureCause::HostKeyUnknown: return "host key unknown";
    case FailureCause::AuthRefused: return "auth refused";
    case FailureCause::ShellRefused: return "shell refused";
    case FailureCause::SecretMismatch: return "secret mismatch";
    case FailureCause::Other: return "other";
    }
    return "other";
}

namespace {
bool has(std::string_view text, std::string_view part)
{
    return text.find(part) != std::string_view::npos;
}
} // namespace

FailureCause classifyPullFailure(const std::exception& error)
{
    const std::string_view m = error.what();
    // Connecting (SshSession): libssh's own words for the socket errors.
    if (has(m, "Connection refused"))
        return FailureCause::ConnectionRefused;
    // sshd accepted the TCP connection and closed it at once (SshSession).
    if (has(m, "closed the connection before the SSH handshake"))
        return FailureCause::ClosedBeforeHandshake;
    if (has(m, "sent no SSH banner"))
        return FailureCause::NoBanner;
    if (has(m, "No route to host") || has(m, "Network is unreachable") || has(m, "Host is unreachable"))
        return FailureCause::Unreachable;
    if (dynamic_cast<const ferry::TimeoutError*>(&error) != nullptr || has(m, "timed out") || has(m, "Timed out") ||
        has(m, "imeout"))
        return FailureCause::Timeout;
    // The host key check comes before authentication (SshSession).
    if (has(m, "differs from the pinned one") || has(m, "type other than the pinned"))
        return FailureCause::HostKeyMismatch;
    if (has(m, "is not pinned") || has(m, "no pinned host keys"))
        return FailureCause::HostKeyUnknown;
    // PullClient: the node's proof of the secret, or ours, did not match.
    if (has(m, "node secret") || has(m, "Failed to authenticate node"))
        return FailureCause::SecretMismatch;
    if (dynamic_cast<const ferry::AuthError*>(&error) != nullptr || has(m, "Failed to authenticate"))
        return FailureCause::AuthRefused;
    // Logged in, but no pull protocol: the exec request was refused, or the
    // session ended or spoke something else (a login shell other than
    // ferry-login, or ferry-login refusing the command).
    if (has(m, "Failed to run") || dynamic_cast<const ferry::ClosedError*>(&error) != nullptr ||
        dynamic_cast<const ferry::ProtocolError*>(&error) != nullptr)
        return FailureCause::ShellRefused;
    return FailureCause::Other;
}

void storePullFailure(ferry::SqlConnection& db, const std::string& node, std::int64_t whenMs,
                      const std::exception& error)
{
    const char* cause = toString(classifyPullFailure(error));
    // An exception without words still gets a message: the cause names the
    // kind, the message is what the operator reads next to it.
    std::string message = error.what();
    if (message.empty())
        message = std::string("(no message; cause ") + cause + ")";
    ferry::MasterQueries(db).recordPullFailure(node, whenMs, cause, message);
}

void recordPullFailure(ferry::SqlConnection& db, const std::string& node, std::int64_t whenMs,
                       const std::exception& error)
{
    const char* cause = toString(classifyPullFailure(error));
    try {
        storePullFailure(db, node, whenMs, error);
    } catch (const std::exception& e) {
        spdlog::error("Failed to record the pull failure cause ({}) of node {}, ignoring: {}", cause, node, e.what());
    }
}

} // namespace pulld
