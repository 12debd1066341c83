#include "Options.h"

#include <sys/stat.h>

#include "ferry/DaemonArgs.h"
#include "ferry/Error.h"
#include "ferry/Files.h"
#include "ferry/Paths.h"
#include "ferry/PeriodFloorConfig.h"
#include "ferry/RegistryProtocol.h"
#include "ferry/YamlReader.h"

namespace registryd {

namespace {

// hostKeysFromFlags: flags replace the configured host key list rather than add to it.
ferry::ArgParser parser(Options& o, bool& hostKeysFromFlags)
{
    using ferry::parseNumberArg;
    ferry::ArgParser p("ferry-registryd", "registers nodes' SSH keys on the master, TCP 50010 (org.ferry.Registry1)");
    p.option("--listen", "ADDR:PORT", "bind here when systemd passed no socket (default 0.0.0.0:50010)",
             [&o](const std::string& v) { o.listen = v; })
        .option("--state-dir", "DIR", "where master.db lives (default $FERRY_STATE_DIR or /var/lib/ferry)",
                [&o](const std::string& v) { o.stateDir = v; })
        .option("--host-key", "FILE",
                "an sshd public host key to hand to nodes (repeatable; default "
                "/etc/ssh/ssh_host_{ed25519,ecdsa,rsa}_key.pub)",
                [&o, &hostKeysFromFlags](const std::string& v) {
                    if (!hostKeysFromFlags)
                        o.hostKeyFiles.clear();
                    hostKeysFromFlags = true;
                    o.hostKeyFiles.push_back(v);
                })
        .option("--unknown-nodes", "pending|refuse", "what to do with nodes the master has no secret for",
                [&o](const std::string& v) {
                    if (v != "pending" && v != "refuse")
                        throw ferry::ConfigError("Failed to parse --unknown-nodes '" + v +
                                                 "': expected pending or refuse");
                    o.manager.acceptUnknown = v == "pending";
                })
        .option("--idle-timeout", "SECONDS",
                "exit after this long without work (0: never; default 30 when socket-activated, never when "
                "listening by itself)",
                [&o](const std::string& v) {
                    o.idleTimeout = std::chrono::seconds(parseNumberArg("--idle-timeout", v, 0, 86400));
                    o.idleTimeoutGiven = true;
                })
        .option("--deadline", "MS", "per-connection deadline (default 10000)",
                [&o](const std::string& v) {
                    o.server.connectionDeadline =
                        std::chrono::milliseconds(parseNumberArg("--deadline", v, 100, 600000));
                })
        .option("--max-per-source", "N",
                "concurrent connections per source (IPv4 address or IPv6 /64; default 8; a newer one cuts the "
                "source's oldest)",
                [&o](const std::string& v) {
                    o.server.maxPerSource = static_cast<std::size_t>(parseNumberArg("--max-per-source", v, 1, 100000));
                })
        .option("--max-connections", "N", "concurrent connections in total (default 128)",
                [&o](const std::string& v) {
                    o.server.maxConnections =
                        static_cast<std::size_t>(parseNumberArg("--max-connections", v, 1, 100000));
                })
        .option("--rate-per-source", "N", "new connections per second per source (default 5; 0: no limit)",
                [&o](const std::string& v) {
                    o.server.sourceRate = static_cast<double>(parseNumberArg("--rate-per-source", v, 0, 100000));
                })
        .option("--burst-per-source", "N", "new connections at once per source (default 20)",
                [&o](const std::string& v) {
                    o.server.sourceBurst = static_cast<double>(parseNumberArg("--burst-per-source", v, 1, 100000));
                })
        .option("--min-push-period", "SECONDS", "period floor for nodes' pushes (default 0: none)",
                [&o](const std::string& v) {
                    o.manager.policy.minPushPeriodS =
                        static_cast<std::uint32_t>(parseNumberArg("--min-push-period", v, 0, ferry::kMaxPolicySeconds));
                })
        .option("--min-pull-interval", "SECONDS", "floor for the interval between pulls of a node (default 0: none)",
                [&o](const std::string& v) {
                    o.manager.policy.minPullIntervalS = static_cast<std::uint32_t>(
                        parseNumberArg("--min-pull-interval", v, 0, ferry::kMaxPolicySeconds));
                })
        .option("--ca-key", "FILE", "sign OpenSSH user certificates for accepted nodes with this CA key",
                [&o](const std::string& v) { o.manager.caKeyFile = v; })
        .option("--cert-validity", "SECONDS", "certificate lifetime (default 604800; renewed at half)",
                [&o](const std::string& v) {
                    o.manager.certValidity = std::chrono::seconds(parseNumberArg("--cert-validity", v, 600, 366 * 86400));
                })
        .option("--krl", "FILE", "the revocation list for sshd's RevokedKeys (default <state>/revoked_keys.krl)",
                [&o](const std::string& v) { o.manager.krlFile = v; })
        .option("--krl-refresh", "SECONDS",
                "while running, check the store for other masters' revocations this often (default 5; 0: never)",
                [&o](const std::string& v) {
                    o.manager.krlRefresh = std::chrono::seconds(parseNumberArg("--krl-refresh", v, 0, 3600));
                })
        .flag("--sync-krl", "write the KRL if the store has revocations it lacks, then exit (ferry-krl-sync.timer)",
              [&o] { o.syncKrl = true; })
        .flag("-v|--verbose", "debug logging (twice: trace)", [&o] { ++o.verbosity; })
        .epilog("Flags override /etc/ferry/registry.yml.");
    return p;
}

} // namespace

std::string usage()
{
    Options unused;
    bool fromFlags = false;
    return parser(unused, fromFlags).help();
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
        if (auto v = r->integer("rate_per_source", 0, 100000))
            o.server.sourceRate = static_cast<double>(*v);
        if (auto v = r->integer("burst_per_source", 1, 100000))
            o.server.sourceBurst = static_cast<double>(*v);
        if (auto v = r->seconds("max_clock_skew", 10, 86400))
            o.manager.maxClockSkew = std::chrono::seconds(*v);
        ferry::PeriodFloorDefaults floor{o.manager.policy.minPushPeriodS, o.manager.policy.minPullIntervalS};
        ferry::readPeriodFloorKeys(*r, floor);
        o.manager.policy = {floor.minPushPeriodS, floor.minPullIntervalS};
        if (auto v = r->string("ca_key"))
            o.manager.caKeyFile = *v;
        if (auto v = r->seconds("cert_validity", 600, 366 * 86400))
            o.manager.certValidity = std::chrono::seconds(*v);
        if (auto v = r->string("cert_principal"))
            o.manager.certPrincipal = *v;
        if (auto v = r->string("krl"))
            o.manager.krlFile = *v;
        if (auto v = r->seconds("krl_refresh", 0, 3600))
            o.manager.krlRefresh = std::chrono::seconds(*v);
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
    parser(o, hostKeysFromFlags).parse(argc, argv);
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
