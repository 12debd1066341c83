#include "Options.h"

#include "ferry/DaemonArgs.h"
#include "ferry/Error.h"

namespace keyregd {

std::string usage()
{
    return "Usage: ferry-keyregd [OPTIONS]\n"
           "  --retry-initial MS   first wait after a failed round (default 2000)\n"
           "  --retry-max MS       longest wait between rounds (default 600000)\n"
           "  --idle-timeout S     exit after this long without work (0: never; default 30)\n"
           "  --sshd-host-keys DIR where this node's sshd host keys are, ssh_host_*_key.pub (default /etc/ssh)\n"
           "  -v, --verbose        debug logging (twice: trace)\n"
           "Paths come from FERRY_CONFIG_DIR / FERRY_STATE_DIR or systemd's *_DIRECTORY.\n";
}

Options parseArgs(int argc, char* argv[])
{
    Options o;
    for (int i = 1; i < argc; ++i) {
        const std::string a = argv[i];
        auto value = [&]() -> std::string {
            if (i + 1 >= argc)
                throw ferry::ConfigError("Failed to parse the command line: " + a + " needs a value");
            return argv[++i];
        };
        if (a == "--retry-initial")
            o.manager.retryInitial = std::chrono::milliseconds(ferry::parseNumberArg(a, value(), 10, 3600000));
        else if (a == "--retry-max")
            o.manager.retryMax = std::chrono::milliseconds(ferry::parseNumberArg(a, value(), 10, 86400000));
        else if (a == "--idle-timeout")
            o.idleTimeout = std::chrono::seconds(ferry::parseNumberArg(a, value(), 0, 86400));
        else if (a == "--sshd-host-keys")
            o.manager.sshdHostKeyDir = value();
        else if (a == "-v" || a == "--verbose")
            ++o.verbosity;
        else if (a == "-h" || a == "--help")
            o.help = true;
        else
            throw ferry::ConfigError("Failed to parse the command line: unknown option '" + a + "'\n" + usage());
    }
    if (o.manager.retryMax < o.manager.retryInitial)
        throw ferry::ConfigError("Failed to parse the command line: --retry-max is below --retry-initial");
    return o;
}

} // namespace keyregd
