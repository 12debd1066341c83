#pragma once
// What the shell was asked to do, decided from its argv and the one variable
// sshd sets for forced commands, before any of it is parsed.
//
// sshd runs a login shell as `<shell> -c "<command>"`. With a forced command
// in authorized_keys (command="/usr/sbin/ferry-login", see
// authorized_keys.in) the -c argument is that forced command and the
// client's request is in SSH_ORIGINAL_COMMAND; if an administrator ever
// changes the user's shell, the forced command still runs this program,
// without arguments, with the request in the same variable. Nothing else is
// accepted: no interactive login, no other option, no second argument.

#include <optional>
#include <string>
#include <vector>

namespace pullshell {

// Where the package installs the shell; the forced command names it.
constexpr const char* kInstalledPath = "/usr/sbin/ferry-login";

struct Invocation {
    std::vector<std::string> args;               // argv[1..]
    std::optional<std::string> originalCommand;  // SSH_ORIGINAL_COMMAND
    std::string selfPath;                        // this binary (/proc/self/exe)
};

struct Request {
    std::optional<std::string> command;  // the client's command line, unparsed
    std::string refusal;                 // why not, for the log
};

Request resolveRequest(const Invocation& invocation);

} // namespace pullshell
