#include "Options.h"

#include "ferry/DaemonArgs.h"
#include "ferry/Error.h"

namespace keyregd {

namespace {

ferry::ArgParser parser(Options& o)
{
    ferry::ArgParser p("ferry-keyregd", "registers this node's SSH key with its masters (org.ferry.KeyReg1)");
    p.option("--retry-initial", "MS", "first wait after a failed round (default 2000)",
             [&o](const std::string& v) {
                 o.manager.retryInitial =
                     std::chrono::milliseconds(ferry::parseNumberArg("--retry-initial", v, 10, 3600000));
             })
        .option("--retry-max", "MS", "longest wait between rounds (default 600000)",
                [&o](const std::string& v) {
                    o.manager.retryMax =
                        std::chrono::milliseconds(ferry::parseNumberArg("--retry-max", v, 10, 86400000));
                })
        .option("--idle-timeout", "SECONDS", "exit after this long without work (0: never; default 30)",
                [&o](const std::string& v) {
                    o.idleTimeout = std::chrono::seconds(ferry::parseNumberArg("--idle-timeout", v, 0, 86400));
                })
        .option("--sshd-host-keys", "DIR",
                "where this node's sshd host keys are, ssh_host_*_key.pub (default /etc/ssh)",
                [&o](const std::string& v) { o.manager.sshdHostKeyDir = v; })
        .flag("--register", "register with every master at start (default: wait for the Register method)",
              [&o] { o.registerAtStart = true; })
        .flag("-v|--verbose", "debug logging (twice: trace)", [&o] { ++o.verbosity; })
        .epilog("Paths come from FERRY_CONFIG_DIR / FERRY_STATE_DIR or systemd's *_DIRECTORY.");
    return p;
}

} // namespace

std::string usage()
{
    Options unused;
    return parser(unused).help();
}

Options parseArgs(int argc, char* argv[])
{
    Options o;
    parser(o).parse(argc, argv);
    if (o.manager.retryMax < o.manager.retryInitial)
        throw ferry::ConfigError("Failed to parse the command line: --retry-max is below --retry-initial");
    return o;
}

} // namespace keyregd
