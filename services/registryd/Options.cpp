#include "Options.h"

#include <sys/stat.h>

#include "ferry/DaemonArgs.h"
#include "ferry/Error.h"
#include "ferry/Files.h"
#include "ferry/NodeConfig.h"
#include "ferry/YamlReader.h"
#include "ferry/RegistryProtocol.h"

namespace registryd {

std::string usage()
{
    return "Usage: ferry-registryd [OPTIONS]   (flags override /etc/ferry/registry.yml)\n"
           "  --listen ADDR:PORT        bind here when systemd passed no socket (default 0.0.0.0:50010)\n"
           "  --state-dir DIR           where master.db lives (default $FERRY_STATE_DIR or /var/lib/ferry)\n"
           "  --host-key FILE           an sshd public host key to hand to nodes (repeatable;\n"
           "                            default /etc/ssh/ssh_host_{ed25519,ecdsa,rsa}_key.pub)\n"
           "  --unknown-nodes pending|refuse  what to do with nodes the master has no secret for\n"
           "  --idle-timeout SECONDS    exit after this long without work (0: never; default 30 when\n"
           "                            socket-activated, never when listening by itself)\n"
           "  --deadline MS             per-connection deadline (default 10000)\n"
           "  --max-per-source N        concurrent connections per source address (default 8)\n"
           "  --max-connections N       concurrent connections in total (default 128)\n"
           "  --min-push-period S       period floor for nodes' pushes, seconds (default 0: none)\n"
           "  --ca-key FILE             sign OpenSSH user certificates for accepted nodes with this CA key\n"
           "  --cert-validity S         certificate lifetime, seconds (default 604800; renewed at half)\n"
           "  --krl FILE                the revocation list for sshd's RevokedKeys (default <state>/revoked_keys.krl)\n"
           "  --min-pull-interval S     floor for the interval between pulls of a node (default 0: none)\n"
           "  -v, --verbose             debug logging (twice: trace)\n";
}

void applyConfig(const std::string& name, const std::string& text, Options& o)
{
    auto top = ferry::YamlMap::loadString(name, text);
    if (auto r = top.map("registry")) {
        if (auto v = r->string("unknown_nodes")) {
            if (*v != "pending" && *v != "refuse")
                r->fail("unknown_nodes", "expected pending or refuse, got '" + *v + "'");
            o.manager.acceptUnknown = *v == "pending";
        }
        if (auto v = r->stringList("host_keys"))
            o.hostKeyFiles = *v;
        if (auto v = r->seconds("idle_timeout", 0, 86400)) {
            o.idleTimeout = std::chrono::seconds(*v);
            o.idleTimeoutGiven = true;
        }
        if (auto v = r->seconds("deadline", 1, 600))
            o.server.connectionDeadline = std::chrono::seconds(*v);
        if (auto v = r->integer("max_per_source", 1, 100000))
            o.server.maxPerSource = static_cast<std::size_t>(*v);
        if (auto v = r->integer("max_connections", 1, 100000))
            o.server.maxConnections = static_cast<std::size_t>(*v);
        if (auto v = r->seconds("max_clock_skew", 10, 86400))
            o.manager.maxClockSkew = std::chrono::seconds(*v);
        if (auto v = r->seconds("min_push_period", 0, ferry::kMaxPolicySeconds))
            o.manager.policy.minPushPeriodS = static_cast<std::uint32_t>(*v);
        if (auto v = r->seconds("min_pull_interval", 0, ferry::kMaxPolicySeconds))
            o.manager.policy.minPullIntervalS = static_cast<std::uint32_t>(*v);
        if (auto v = r->string("ca_key"))
            o.manager.caKeyFile = *v;
        if (auto v = r->seconds("cert_validity", 600, 366 * 86400))
            o.manager.certValidity = std::chrono::seconds(*v);
        if (auto v = r->string("cert_principal"))
            o.manager.certPrincipal = *v;
        if (auto v = r->string("krl"))
            o.manager.krlFile = *v;
        if (auto v = r->integer("max_pending", 0, 1000000))
            o.manager.maxPending = static_cast<std::size_t>(*v);
        r->finish();
    }
    top.finish();
}

Options parseArgs(int argc, char* argv[])
{
    Options o;
    const std::string configFile = ferry::pathsFromEnvironment().configDir + "/registry.yml";
    if (const auto text = ferry::readFileIfExists(configFile, 1024 * 1024))
        applyConfig(configFile, *text, o);
    bool hostKeysFromFlags = false;
    for (int i = 1; i < argc; ++i) {
        const std::string a = argv[i];
        auto value = [&]() -> std::string {
            if (i + 1 >= argc)
                throw ferry::ConfigError("Failed to parse the command line: " + a + " needs a value");
            return argv[++i];
        };
        if (a == "--listen")
            o.listen = value();
        else if (a == "--state-dir")
            o.stateDir = value();
        else if (a == "--host-key") {
            // Flags replace the configured list rather than add to it.
            if (!hostKeysFromFlags)
                o.hostKeyFiles.clear();
            hostKeysFromFlags = true;
            o.hostKeyFiles.push_back(value());
        }
        else if (a == "--unknown-nodes") {
            const auto v = value();
            if (v != "pending" && v != "refuse")
                throw ferry::ConfigError("Failed to parse --unknown-nodes '" + v + "': expected pending or refuse");
            o.manager.acceptUnknown = v == "pending";
        } else if (a == "--idle-timeout")
        {
            o.idleTimeout = std::chrono::seconds(ferry::parseNumberArg(a, value(), 0, 86400));
            o.idleTimeoutGiven = true;
        }
        else if (a == "--deadline")
            o.server.connectionDeadline = std::chrono::milliseconds(ferry::parseNumberArg(a, value(), 100, 600000));
        else if (a == "--max-per-source")
            o.server.maxPerSource = static_cast<std::size_t>(ferry::parseNumberArg(a, value(), 1, 100000));
        else if (a == "--max-connections")
            o.server.maxConnections = static_cast<std::size_t>(ferry::parseNumberArg(a, value(), 1, 100000));
        else if (a == "--min-push-period")
            o.manager.policy.minPushPeriodS =
                static_cast<std::uint32_t>(ferry::parseNumberArg(a, value(), 0, ferry::kMaxPolicySeconds));
        else if (a == "--ca-key")
            o.manager.caKeyFile = value();
        else if (a == "--cert-validity")
            o.manager.certValidity = std::chrono::seconds(ferry::parseNumberArg(a, value(), 600, 366 * 86400));
        else if (a == "--krl")
            o.manager.krlFile = value();
        else if (a == "--min-pull-interval")
            o.manager.policy.minPullIntervalS =
                static_cast<std::uint32_t>(ferry::parseNumberArg(a, value(), 0, ferry::kMaxPolicySeconds));
        else if (a == "-v" || a == "--verbose")
            ++o.verbosity;
        else if (a == "-h" || a == "--help")
            o.help = true;
        else
            throw ferry::ConfigError("Failed to parse the command line: unknown option '" + a + "'\n" + usage());
    }
    if (o.hostKeyFiles.empty()) {
        for (const char* f : {"/etc/ssh/ssh_host_ed25519_key.pub", "/etc/ssh/ssh_host_ecdsa_key.pub",
                              "/etc/ssh/ssh_host_rsa_key.pub"}) {
            struct stat st{};
            if (::stat(f, &st) == 0)
                o.hostKeyFiles.emplace_back(f);
        }
    }
    return o;
}

std::vector<std::string> loadHostKeys(const std::vector<std::string>& files)
{
    if (files.empty())
        throw ferry::ConfigError("Failed to find the master's SSH host keys: none of /etc/ssh/ssh_host_*_key.pub "
                                 "exists and no --host-key was given; nodes could not pin this master");
    if (files.size() > ferry::kMaxHostKeys)
        throw ferry::ConfigError("Failed to use the host keys: at most " + std::to_string(ferry::kMaxHostKeys));
    std::vector<std::string> keys;
    for (const auto& f : files) {
        try {
            keys.push_back(ferry::normalizeKeyLine(ferry::readFile(f, ferry::kMaxKeyLine)));
        } catch (const std::exception& e) {
            throw ferry::ConfigError("Failed to read the SSH host key " + f + ": " + e.what());
        }
    }
    return keys;
}

} // namespace registryd
