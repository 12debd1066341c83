#pragma once
// The node's configuration: /etc/ferry/ferry.yml and /etc/ferry/plugins.yml,
// parsed once into plain validated structs. A missing file means defaults;
// anything unknown or of the wrong type is refused, naming file, line and key.

#include <chrono>
#include <cstdint>
#include <string>
#include <vector>

#include "ferry/Paths.h" // Paths, which loaders take and callers used to find here

namespace ferry {

enum class TransportMode { Auto, Push, Pull };
const char* toString(TransportMode mode);

struct MasterAddress {
    std::string host;            // address or name of the master
    std::uint16_t sshPort = 22;  // push: the master's sshd
    std::uint16_t registryPort = 50010;
    // The master id this node's per-master key is derived for (Crypto.h):
    // `id:` of the masters: entry, by default host. Masters sharing one
    // database give all their entries one id.
    std::string id = {};
};
// The master id of an entry: its id, or its host when it has none.
inline const std::string& masterIdOf(const MasterAddress& m)
{
    return m.id.empty() ? m.host : m.id;
}

struct NodeConfig {
    std::string nodeName;        // default: the host name
    TransportMode mode = TransportMode::Auto;
    std::vector<MasterAddress> masters;  // tried in turn
    // push: (the push transport alone)
    // The master's tunnel user: it owns no files there, and sshd runs
    // ferry-tunnel-relay as its shell, which hands the session to the
    // collector with this node's address.
    std::string tunnelUser = "ferry-tunnel";
    // How the SSH connection reaches the collector: an exec channel to the
    // relay (masters from the release with ferry-tunnel on), or, for older
    // masters (tunnel user ferry), a direct-tcpip forward to
    // collectorHost:collectorPort.
    enum class PushChannel { Relay, Forward };
    PushChannel pushChannel = PushChannel::Relay;
    std::string collectorHost = "127.0.0.1";
    std::uint16_t collectorPort = 50009;
    // The local address pushes leave from (empty: the kernel's choice), for
    // a node with several addresses whose master expects one of them.
    std::string sourceAddress;
    // transport: (push, pull and registration alike; once under push:)
    std::chrono::seconds connectTimeout{10};
    std::chrono::seconds ioTimeout{30};
    // A batch is one transaction (one fsync) on the master: at 1 MiB a
    // week's backlog takes 9 of them instead of 21 (bench/backlog).
    std::uint32_t batchRecords = 2000;
    std::uint32_t batchBytes = 1024 * 1024;
    // Where the node's own sshd listens, for pulls and for fwcheckd.
    std::string sshAddress = "0.0.0.0";
    std::uint16_t sshPort = 22;
    // Auto mode turns push on when no pull came for this long.
    std::chrono::seconds pullAbsence{15 * 60};
    std::uint64_t spoolMaxBytes = 64ull * 1024 * 1024;
    std::chrono::seconds spoolMaxAge{7 * 24 * 3600};
    // One message per file that still uses a deprecated key (also logged
    // as a warning when parsed).
    std::vector<std::string> deprecations;
};

struct PluginsConfig {
    // `sender: period:` — seconds between push cycles.
    std::chrono::seconds period{240};
    std::chrono::seconds pluginTimeout{10};
    // node_exporter's textfile collector: every *.prom file here is read at
    // each sampler run (empty: off).
    std::string textfileDirectory;
    // Series kept per plugin run or .prom file; the rest is dropped and logged.
    std::size_t maxSeries = 10000;
};

// The smallest push period the node accepts (the master's policy floor for
// free users in the seed is 4 minutes; a node operator may go down to this).
constexpr std::chrono::seconds kMinPushPeriod{10};

NodeConfig loadNodeConfig(const Paths& paths);
NodeConfig parseNodeConfig(const std::string& name, const std::string& text);
PluginsConfig loadPluginsConfig(const Paths& paths);
PluginsConfig parsePluginsConfig(const std::string& name, const std::string& text);

// "host", "host:port" or "[v6]:port" -> host and port (default used when absent).
MasterAddress parseMasterAddress(const std::string& text, std::uint16_t defaultSshPort);

} // namespace ferry
