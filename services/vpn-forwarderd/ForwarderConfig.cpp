#include "ForwarderConfig.h"

#include <algorithm>
#include <charconv>
#include <optional>

#include "Ipv4Prefix.h"
#include "ferry/Error.h"
#include "ferry/Files.h"
#include "ferry/YamlReader.h"

namespace vpnfwd {

namespace {

std::optional<std::uint16_t> parsePort(const std::string& s)
{
    unsigned v = 0;
    auto [p, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
    if (s.empty() || ec != std::errc{} || p != s.data() + s.size() || v < 1 || v > 65535)
        return std::nullopt;
    return static_cast<std::uint16_t>(v);
}

std::string trim(const std::string& s)
{
    const auto b = s.find_first_not_of(' ');
    if (b == std::string::npos)
        return {};
    return s.substr(b, s.find_last_not_of(' ') - b + 1);
}

std::vector<PortRange> readPorts(ferry::YamlMap& map, const std::string& key)
{
    auto items = map.rawList(key);
    if (!items)
        return ForwarderConfig{}.forwardedPorts;
    if (items->empty())
        map.fail(key, "expected at least one port or range");
    std::vector<std::pair<PortRange, YAML::Node>> ranges;
    for (std::size_t i = 0; i < items->size(); ++i) {
        const YAML::Node& item = (*items)[i];
        const std::string path = map.pathOf(key) + "[" + std::to_string(i) + "]";
        if (!item.IsScalar())
            map.failAt(item, path, "expected a port (22) or a range (2000-2009)");
        const std::string text = item.Scalar();
        PortRange range;
        const auto dash = text.find('-');
        const auto first = parsePort(trim(text.substr(0, dash)));
        const auto last = dash == std::string::npos ? first : parsePort(trim(text.substr(dash + 1)));
        if (!first || !last)
            map.failAt(item, path, "expected a port from 1 to 65535 or a range like 2000-2009, got '" + text + "'");
        if (*first > *last)
            map.failAt(item, path, "port range '" + text + "' ends before it starts");
        range.first = *first;
        range.last = *last;
        ranges.emplace_back(range, item);
    }
    std::sort(ranges.begin(), ranges.end(),
              [](const auto& a, const auto& b) { return a.first.first < b.first.first; });
    for (std::size_t i = 1; i < ranges.size(); ++i) {
        if (ranges[i].first.first <= ranges[i - 1].first.last)
            map.failAt(ranges[i].second, map.pathOf(key),
                       "port range " + formatPortRange(ranges[i].first) + " overlaps " +
                           formatPortRange(ranges[i - 1].first));
    }
    std::vector<PortRange> out;
    for (const auto& [r, node] : ranges)
        out.push_back(r);
    return out;
}

} // namespace

bool isSafeInterfaceName(const std::string& name)
{
    if (name.empty() || name.size() > 15 || name == "." || name == "..")
        return false;
    return std::all_of(name.begin(), name.end(), [](char c) {
        return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '.' ||
               c == '_' || c == '-' || c == '@' || c == ':' || c == '+';
    });
}

std::string formatPortRange(const PortRange& range)
{
    if (range.first == range.last)
        return std::to_string(range.first);
    return std::to_string(range.first) + "-" + std::to_string(range.last);
}

std::string formatPortRanges(const std::vector<PortRange>& ranges, const std::string& separator)
{
    std::string out;
    for (const auto& r : ranges) {
        if (!out.empty())
            out += separator;
        out += formatPortRange(r);
    }
    return out;
}

ForwarderConfig parseForwarderConfig(const std::string& name, const std::string& text)
{
    auto map = ferry::YamlMap::loadString(name, text);
    ForwarderConfig config;

    if (auto v = map.string("vpn-interface")) {
        if (!isSafeInterfaceName(*v))
            map.fail("vpn-interface", "'" + *v + "' is not a valid interface name (1-15 letters, digits or . _ - @ : +)");
        config.vpnInterface = *v;
    }
    if (auto v = map.string("container-address")) {
        const auto prefix = Ipv4Prefix::parse(*v);
        if (!prefix || prefix->length != 32)
            map.fail("container-address", "expected an IPv4 address like 10.0.3.2, got '" + *v + "'");
        const std::uint32_t a = prefix->address;
        if (a == 0 || a == 0xffffffffu || (a >> 24) == 127 || (a >> 28) == 0xe)
            map.fail("container-address", "'" + *v + "' cannot be a container's address (unspecified, loopback, "
                                                   "broadcast or multicast)");
        config.containerAddress = a;
    }
    config.forwardedPorts = readPorts(map, "forwarded-ports");
    if (auto v = map.stringList("lan-interfaces")) {
        for (const auto& ifname : *v) {
            if (!isSafeInterfaceName(ifname))
                map.fail("lan-interfaces", "'" + ifname + "' is not a valid interface name");
            if (ifname == config.vpnInterface)
                map.fail("lan-interfaces", "'" + ifname + "' is the VPN interface");
        }
        config.lanInterfaces = *v;
    }
    if (auto v = map.integer("host-control-port", 1, 65535))
        config.hostControlPort = static_cast<std::uint16_t>(*v);
    if (auto v = map.integer("host-ssh-port", 1, 65535))
        config.hostSshPort = static_cast<std::uint16_t>(*v);
    for (const auto& r : config.forwardedPorts) {
        if (r.contains(config.hostControlPort))
            map.fail(map.has("host-control-port") ? "host-control-port" : "forwarded-ports",
                     "host-control port " + std::to_string(config.hostControlPort) +
                         " is also a forwarded port (" + formatPortRange(r) + ")");
    }
    map.finish();
    return config;
}

ForwarderConfig loadForwarderConfig(const std::string& path)
{
    const auto text = ferry::readFileIfExists(path, 1024 * 1024);
    if (!text)
        return ForwarderConfig{};
    return parseForwarderConfig(path, *text);
}

} // namespace vpnfwd
