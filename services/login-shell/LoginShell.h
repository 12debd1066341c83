#pragma once
// ferry-login's core: decide whether the request is one of the pull
// commands, refuse anything else with one fixed message and a journal line,
// and serve the rest from the spool over stdin/stdout. It never evaluates,
// expands, executes or forwards what it was given.

#include <string>

#include "Invocation.h"
#include "PushNotifier.h"
#include "ferry/NodeConfig.h"

namespace pullshell {

// The only thing a refused client is ever told.
constexpr const char* kRefusalMessage = "ferry-login: refused: this account only serves Ferry pulls\n";
// What a client is told when an accepted command failed on the node.
constexpr const char* kFailureMessage = "ferry-login: the pull failed; the node's journal says why\n";

struct ShellContext {
    Invocation invocation;
    std::string client;       // the master's address from SSH_CLIENT, for logs
    bool onTerminal = false;  // stdin or stdout is a terminal (a pty was granted)
    ferry::Paths paths;
    // Where this host's sshd keeps its host keys: a master's session binding
    // must name one of them.
    std::string sshdHostKeyDir = "/etc/ssh";
};

class LoginShell {
public:
    LoginShell(ShellContext context, PullObserver& observer);
    // Serves one request; returns the exit status.
    int run(int inFd, int outFd, int errFd);

private:
    int refuse(int errFd, const std::string& reason, const std::string& command);

    ShellContext m_context;
    PullObserver& m_observer;
};

} // namespace pullshell
