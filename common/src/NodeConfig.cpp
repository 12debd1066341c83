#include "ferry/NodeConfig.h"

#include <arpa/inet.h>
#include <unistd.h>

#include <algorithm>
#include <cstdlib>
#include <fstream>
#include <sstream>
#include <limits>

#include <spdlog/spdlog.h>

#include "ferry/Error.h"
#include "ferry/Files.h"
#include "ferry/Limits.h"
#include "ferry/YamlReader.h"

namespace ferry {

namespace {

std::string hostName()
{
    char buf[256] = {};
    if (::gethostname(buf, sizeof buf - 1) != 0 || buf[0] == '\0')
        return "localhost";
    return buf;
}

bool validNodeName(const std::string& s)
{
    if (s.empty() || s.size() > 64)
        return false;
    for (char c : s) {
        const bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-' ||
                        c == '_' || c == '.';
        if (!ok)
            return false;
    }
    return s.front() != '-' && s.front() != '.';
}

bool validHost(const std::string& s)
{
    if (s.empty() || s.size() > 253)
        return false;
    for (char c : s) {
        const bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-' ||
                        c == '.' || c == ':' || c == '_';
        if (!ok)
            return false;
    }
    return s.front() != '-';
}

constexpr const char* kTransportKeys[] = {"connect_timeout", "io_timeout", "batch_records", "batch_bytes"};

void readTransportKeys(YamlMap& m, NodeConfig& c)
{
    if (auto v = m.seconds("connect_timeout", 1, 300))
        c.connectTimeout = std::chrono::seconds(*v);
    if (auto v = m.seconds("io_timeout", 1, 600))
        c.ioTimeout = std::chrono::seconds(*v);
    if (auto v = m.integer("batch_records", 1, 10000))
        c.batchRecords = static_cast<std::uint32_t>(*v);
    // One limit with the wire: a batch must fit the frame every receiver
    // accepts (Limits.h), or every session would fail on it.
    if (auto v = m.bytes("batch_bytes", 1024, kMaxBatchBytes))
        c.batchBytes = static_cast<std::uint32_t>(*v);
}

} // namespace

const char* toString(TransportMode mode)
{
    switch (mode) {
    case TransportMode::Auto: return "auto";
    case TransportMode::Push: return "push";
    case TransportMode::Pull: return "pull";
    }
    return "?";
}

MasterAddress parseMasterAddress(const std::string& text, std::uint16_t defaultSshPort)
{
    MasterAddress m;
    m.sshPort = defaultSshPort;
    std::string host = text;
    std::string port;
    if (!text.empty() && text.front() == '[') {
        const auto close = text.find(']');
        if (close == std::string::npos)
            throw ConfigError("missing ']' in address '" + text + "'");
        host = text.substr(1, close - 1);
        if (close + 1 < text.size()) {
            if (text[close + 1] != ':')
                throw ConfigError("expected ':port' after ']' in '" + text + "'");
            port = text.substr(close + 2);
        }
    } else if (std::count(text.begin(), text.end(), ':') == 1) {
        host = text.substr(0, text.find(':'));
        port = text.substr(text.find(':') + 1);
    }
    if (!validHost(host))
        throw ConfigError("'" + host + "' is not a valid host name or address");
    m.host = host;
    if (!port.empty()) {
        char* end = nullptr;
        const long v = std::strtol(port.c_str(), &end, 10);
        if (*end != '\0' || v < 1 || v > 65535)
            throw ConfigError("'" + port + "' is not a port from 1 to 65535");
        m.sshPort = static_cast<std::uint16_t>(v);
    }
    return m;
}

NodeConfig parseNodeConfig(const std::string& name, const std::string& text)
{
    NodeConfig c;
    c.nodeName = hostName();
    YamlMap top = YamlMap::loadString(name, text);

    if (auto node = top.map("node")) {
        if (auto v = node->string("name")) {
            if (!validNodeName(*v))
                node->fail("name", "'" + *v + "' is not a valid node name (letters, digits, '-', '_', '.'; up to 64)");
            c.nodeName = *v;
        }
        if (auto v = node->string("mode")) {
            if (*v == "auto")
                c.mode = TransportMode::Auto;
            else if (*v == "push")
                c.mode = TransportMode::Push;
            else if (*v == "pull")
                c.mode = TransportMode::Pull;
            else
                node->fail("mode", "expected auto, push or pull, got '" + *v + "'");
        }
        if (auto v = node->string("ssh_address")) {
            if (!validHost(*v))
                node->fail("ssh_address", "'" + *v + "' is not a valid address");
            c.sshAddress = *v;
        }
        if (auto v = node->integer("ssh_port", 1, 65535))
            c.sshPort = static_cast<std::uint16_t>(*v);
        if (auto v = node->seconds("pull_absence", 1, 7 * 86400))
            c.pullAbsence = std::chrono::seconds(*v);
        node->finish();
    }

    if (auto masters = top.rawList("masters")) {
        for (std::size_t i = 0; i < masters->size(); ++i) {
            const YAML::Node& item = (*masters)[i];
            const std::string path = "masters[" + std::to_string(i) + "]";
            MasterAddress m;
            if (item.IsScalar()) {
                try {
                    m = parseMasterAddress(item.Scalar(), 22);
                } catch (const ConfigError& e) {
                    top.failAt(item, path, e.what());
                }
            } else if (item.IsMap()) {
                YamlMap mm(name, item, path);
                auto host = mm.string("host");
                if (!host)
                    top.failAt(item, path + ".host", "missing: every master needs a host");
                if (!validHost(*host))
                    mm.fail("host", "'" + *host + "' is not a valid host name or address");
                m.host = *host;
                if (auto v = mm.integer("ssh_port", 1, 65535))
                    m.sshPort = static_cast<std::uint16_t>(*v);
                if (auto v = mm.integer("registry_port", 1, 65535))
                    m.registryPort = static_cast<std::uint16_t>(*v);
                if (auto v = mm.string("id")) {
                    // As ferry::isValidMasterId (the net layer, above this one).
                    const bool printable =
                        std::all_of(v->begin(), v->end(), [](char ch) { return ch > ' ' && ch <= '~'; });
                    if (v->empty() || v->size() > 255 || !printable)
                        mm.fail("id", "not a valid master id (1-255 printable characters, no spaces)");
                    m.id = *v;
                }
                mm.finish();
            } else {
                top.failAt(item, path, "expected an address or a mapping with host, ssh_port, registry_port");
            }
            if (m.id.empty())
                m.id = m.host;
            c.masters.push_back(m);
        }
    }

    // The keys every transport shares live under transport:. They were once
    // under push:, which also configured pulls and registration; push: still
    // takes them, with one warning, unless transport: sets the same key.
    auto transport = top.map("transport");
    if (auto push = top.map("push")) {
        std::vector<std::string> moved;
        for (const char* key : kTransportKeys) {
            if (!push->has(key))
                continue;
            if (transport && transport->has(key))
                push->fail(key, std::string("also set as transport.") + key + "; keep only that one");
            moved.push_back(push->locationOf(key) + " push." + key);
        }
        if (!moved.empty()) {
            std::string list;
            for (const auto& m : moved)
                list += (list.empty() ? "" : ", ") + m;
            c.deprecations.push_back("Deprecated keys in " + name + " (" + list +
                                     "): they configure every transport, not only push; move them under transport:");
        }
        readTransportKeys(*push, c);
        if (auto v = push->string("user"))
            c.tunnelUser = *v;
        if (auto v = push->string("channel")) {
            if (*v == "relay")
                c.pushChannel = NodeConfig::PushChannel::Relay;
            else if (*v == "forward")
                c.pushChannel = NodeConfig::PushChannel::Forward;
            else
                push->fail("channel", "expected relay or forward");
        }
        if (auto v = push->integer("collector_port", 1, 65535))
            c.collectorPort = static_cast<std::uint16_t>(*v);
        if (auto v = push->string("source_address")) {
            unsigned char raw[16];
            if (::inet_pton(AF_INET, v->c_str(), raw) != 1 && ::inet_pton(AF_INET6, v->c_str(), raw) != 1)
                push->fail("source_address", "expected an IPv4 or IPv6 address");
            c.sourceAddress = *v;
        }
        push->finish();
    }
    if (transport) {
        readTransportKeys(*transport, c);
        transport->finish();
    }

    if (auto spool = top.map("spool")) {
        if (auto v = spool->bytes("max_bytes", 64 * 1024, std::numeric_limits<std::int64_t>::max() / 2))
            c.spoolMaxBytes = static_cast<std::uint64_t>(*v);
        if (auto v = spool->seconds("max_age", 60, 365 * 86400))
            c.spoolMaxAge = std::chrono::seconds(*v);
        spool->finish();
    }
    top.finish();
    for (const auto& d : c.deprecations)
        spdlog::warn("{}", d);
    return c;
}

NodeConfig loadNodeConfig(const Paths& paths)
{
    const auto text = readFileIfExists(paths.configFile(), 1024 * 1024);
    return parseNodeConfig(paths.configFile(), text.value_or(""));
}

PluginsConfig parsePluginsConfig(const std::string& name, const std::string& text)
{
    PluginsConfig c;
    YamlMap top = YamlMap::loadString(name, text);
    if (auto sender = top.map("sender")) {
        if (auto v = sender->seconds("period", kMinPushPeriod.count(), 86400))
            c.period = std::chrono::seconds(*v);
        sender->finish();
    }
    if (auto plugins = top.map("plugins")) {
        if (auto v = plugins->seconds("timeout", 1, 600))
            c.pluginTimeout = std::chrono::seconds(*v);
        if (auto v = plugins->string("textfile_directory"))
            c.textfileDirectory = *v;
        if (auto v = plugins->integer("max_series", 1, 1000000))
            c.maxSeries = static_cast<std::size_t>(*v);
        plugins->finish();
    }
    top.finish();
    return c;
}

PluginsConfig loadPluginsConfig(const Paths& paths)
{
    const auto text = readFileIfExists(paths.pluginsFile(), 1024 * 1024);
    return parsePluginsConfig(paths.pluginsFile(), text.value_or(""));
}

} // namespace ferry
