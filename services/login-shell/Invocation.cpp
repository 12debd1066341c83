#include "Invocation.h"

namespace pullshell {

Request resolveRequest(const Invocation& invocation)
{
    Request request;
    const auto& args = invocation.args;
    if (args.empty()) {
        if (invocation.originalCommand) {
            request.command = *invocation.originalCommand;
            return request;
        }
        request.refusal = "interactive login (no -c)";
        return request;
    }
    if (args.size() != 2 || args[0] != "-c") {
        request.refusal = "unexpected arguments (only -c <command> is accepted)";
        return request;
    }
    const std::string& command = args[1];
    const bool forced = command == kInstalledPath || (!invocation.selfPath.empty() && command == invocation.selfPath);
    if (!forced) {
        request.command = command;
        return request;
    }
    if (!invocation.originalCommand) {
        request.refusal = "interactive login through the forced command (no command requested)";
        return request;
    }
    request.command = *invocation.originalCommand;
    return request;
}

} // namespace pullshell
