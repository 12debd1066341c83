// ferryctl vpn: status | lan on|off | host-control on|off | reapply, over
// org.ferry.VpnForwarder1 (ferry-vpn-forwarderd).
#include <iostream>
#include <optional>
#include <string>

#include <nlohmann/json.hpp>
#include <sdbus-c++/sdbus-c++.h>

#include "Commands.h"
#include "org.ferry.VpnForwarder1-proxy.h"

namespace ferryctl {

namespace {

class VpnForwarderProxy final : public sdbus::ProxyInterfaces<org::ferry::VpnForwarder1_proxy> {
public:
    explicit VpnForwarderProxy(sdbus::IConnection& bus)
        : ProxyInterfaces(bus, "org.ferry.VpnForwarder1", "/org/ferry/VpnForwarder1")
    {
        registerProxy();
    }
    ~VpnForwarderProxy() { unregisterProxy(); }
};

void vpnUsage(std::ostream& out)
{
    out << "Usage: ferryctl [--json] vpn [status]\n"
           "       ferryctl vpn lan on|off            forward the same ports from the LAN interfaces\n"
           "       ferryctl vpn host-control on|off   let the VPN peer reach this host's sshd\n"
           "       ferryctl vpn reapply               re-read links and replace the forwarding table\n";
}

std::optional<bool> onOff(const std::string& word)
{
    if (word == "on")
        return true;
    if (word == "off")
        return false;
    return std::nullopt;
}

std::string portsText(const std::vector<sdbus::Struct<uint16_t, uint16_t>>& ports)
{
    std::string out;
    for (const auto& p : ports) {
        if (!out.empty())
            out += ", ";
        out += std::to_string(p.get<0>());
        if (p.get<1>() != p.get<0>())
            out += "-" + std::to_string(p.get<1>());
    }
    return out;
}

int status(VpnForwarderProxy& proxy, bool json)
{
    const std::string ifname = proxy.VpnInterface();
    const bool linkUp = proxy.LinkUp();
    const bool forwarding = proxy.Forwarding();
    const std::string address = proxy.VpnAddress();
    const std::string container = proxy.ContainerAddress();
    const auto ports = proxy.ForwardedPorts();
    const bool lan = proxy.LanAccess();
    const bool hostControl = proxy.HostControl();
    const std::uint16_t hostControlPort = proxy.HostControlPort();
    const std::string lastError = proxy.LastError();

    if (json) {
        nlohmann::json j;
        j["vpnInterface"] = ifname;
        j["linkUp"] = linkUp;
        j["forwarding"] = forwarding;
        j["vpnAddress"] = address;
        j["containerAddress"] = container;
        j["forwardedPorts"] = nlohmann::json::array();
        for (const auto& p : ports)
            j["forwardedPorts"].push_back({{"first", p.get<0>()}, {"last", p.get<1>()}});
        j["lanAccess"] = lan;
        j["hostControl"] = hostControl;
        j["hostControlPort"] = hostControlPort;
        j["lastError"] = lastError;
        std::cout << j.dump(2) << "\n";
    } else {
        std::cout << "VPN link:      " << ifname << " " << (linkUp ? "up" : "down")
                  << (address.empty() ? (linkUp ? ", no IPv4 address" : "") : ", " + address) << "\n"
                  << "Forwarding:    TCP " << portsText(ports) << " -> " << container << " ("
                  << (forwarding ? "active" : "inactive") << ")\n"
                  << "LAN access:    " << (lan ? "on" : "off") << "\n"
                  << "Host control:  " << (hostControl ? "on" : "off") << " (VPN port " << hostControlPort
                  << " -> this host's sshd)\n"
                  << "Last error:    " << (lastError.empty() ? "none" : lastError) << "\n";
    }
    return lastError.empty() ? 0 : 1;
}

} // namespace

int vpnCommand(const Options& options)
{
    const auto& args = options.args;
    const std::string sub = args.empty() ? "status" : args[0];
    std::optional<bool> value;
    if (sub == "lan" || sub == "host-control") {
        if (args.size() != 2 || !(value = onOff(args[1]))) {
            std::cerr << "ferryctl vpn " << sub << ": expected on|off\n";
            vpnUsage(std::cerr);
            return 2;
        }
    } else if ((sub != "status" && sub != "reapply") || args.size() > 1) {
        vpnUsage(std::cerr);
        return 2;
    }

    try {
        auto bus = sdbus::createSystemBusConnection();
        VpnForwarderProxy proxy(*bus);
        if (sub == "status")
            return status(proxy, options.json);
        if (sub == "reapply") {
            proxy.Reapply();
            if (options.json)
                std::cout << nlohmann::json{{"reapplied", true}}.dump() << "\n";
            else
                std::cout << "Forwarding table replaced\n";
            return 0;
        }
        if (sub == "lan")
            proxy.SetLanAccess(*value);
        else
            proxy.SetHostControl(*value);
        if (options.json)
            std::cout << nlohmann::json{{sub == "lan" ? "lanAccess" : "hostControl", *value}}.dump() << "\n";
        else
            std::cout << (sub == "lan" ? "LAN access " : "Host control ") << (*value ? "on" : "off") << "\n";
        return 0;
    } catch (const sdbus::Error& e) {
        std::cerr << "ferryctl vpn " << sub << ": " << e.getMessage() << " (" << e.getName() << ")\n";
        return 1;
    }
}

} // namespace ferryctl
