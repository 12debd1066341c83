// libFuzzer target: what the pull shell reads from its client before any
// proof of the secret — the command line (parsePullCommand), the way it is
// handed over (argv and SSH_ORIGINAL_COMMAND, resolveRequest) — and the
// `status` answer the master decodes (decodePullStatus). Input layout:
// NUL-separated parts; the first is the command line, the rest argv words.

#include <string>

#include "FuzzSupport.h"
#include "Invocation.h"
#include "ferry/Error.h"
#include "ferry/PullProtocol.h"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size)
{
    const auto in = fuzz::view(data, size);
    const auto parsed = ferry::parsePullCommand(in);
    if (parsed.command) {
        // Whatever is accepted must be exactly what the master would send.
        if (ferry::formatPullCommand(*parsed.command) != in)
            __builtin_trap();
    } else if (parsed.reason.empty()) {
        __builtin_trap();  // a refusal always says why
    }
    (void)ferry::escapeForLog(in);

    const auto parts = fuzz::splitNul(in, 8);
    pullshell::Invocation inv;
    inv.selfPath = pullshell::kInstalledPath;
    inv.originalCommand = parts.front();
    inv.args.assign(parts.begin() + 1, parts.end());
    const auto request = pullshell::resolveRequest(inv);
    if (request.command)
        (void)ferry::parsePullCommand(*request.command);

    try {
        (void)ferry::decodePullStatus(in, "fuzz");
    } catch (const ferry::Error&) {
    }
    return 0;
}
