#include "Ruleset.h"

namespace vpnfwd {

namespace {

std::string quoted(const std::string& s)
{
    return "\"" + s + "\"";
}

std::string portSet(const std::vector<PortRange>& ports)
{
    return "{ " + formatPortRanges(ports) + " }";
}

std::string interfaceSet(const std::vector<std::string>& names)
{
    std::string out = "{ ";
    for (std::size_t i = 0; i < names.size(); ++i)
        out += (i ? ", " : "") + quoted(names[i]);
    return out + " }";
}

std::string header()
{
    return std::string("add table ") + kTableFamily + " " + kTableName + "\n" + "delete table " + kTableFamily + " " +
           kTableName + "\n" + "add table ip ferry_vpn\ndelete table ip ferry_vpn\n";
}

} // namespace

std::string buildRuleset(const ForwarderConfig& config, const RulesetInput& input)
{
    const std::string vpn = quoted(config.vpnInterface);
    const std::string container = formatIpv4(config.containerAddress);
    const std::string ports = portSet(config.forwardedPorts);
    const bool haveLan = !config.lanInterfaces.empty();
    const std::string lan = haveLan ? interfaceSet(config.lanInterfaces) : std::string{};

    std::string pre, in, fwd;
    if (input.vpnAddress) {
        const std::string addr = input.vpnAddress->addressText();
        pre += "    iifname " + vpn + " ip daddr " + addr + " tcp dport " + ports + " dnat ip to " + container +
               " comment \"vpn forward\"\n";
        fwd += "    iifname " + vpn + " ip daddr " + container + " tcp dport " + ports +
               " ct status dnat accept comment \"vpn forward\"\n";
        if (input.hostControl) {
            pre += "    iifname " + vpn + " ip daddr " + addr + " tcp dport " + std::to_string(config.hostControlPort) +
                   " redirect to :" + std::to_string(config.hostSshPort) + " comment \"host control\"\n";
            in += "    iifname " + vpn + " tcp dport " + std::to_string(config.hostSshPort) +
                  " ct status dnat accept comment \"host control\"\n";
        }
    }
    // LAN access does not depend on the VPN link: an owner trying the
    // appliance on a LAN or in a VM has no VPN at all.
    if (input.lanAccess && haveLan) {
        pre += "    iifname " + lan + " fib daddr type local tcp dport " + ports + " dnat ip to " + container +
               " comment \"lan access\"\n";
        fwd += "    iifname " + lan + " ip daddr " + container + " tcp dport " + ports +
               " ct status dnat accept comment \"lan access\"\n";
    }
    // The guards are always present: the VPN peer reaches nothing on the host
    // (only what is forwarded or redirected above), and the forwarded ports
    // stay closed from the LAN, whatever the host itself listens on.
    in += "    iifname " + vpn + " ct state new meta l4proto tcp reject with tcp reset comment \"guard\"\n";
    in += "    iifname " + vpn + " ct state new meta l4proto udp reject comment \"guard\"\n";
    fwd += "    iifname " + vpn + " ct state new meta l4proto tcp reject with tcp reset comment \"guard\"\n";
    fwd += "    iifname " + vpn + " ct state new drop comment \"guard\"\n";
    if (haveLan) {
        in += "    iifname " + lan + " ct state new tcp dport " + ports +
              " reject with tcp reset comment \"guard\"\n";
        fwd += "    iifname " + lan + " ip daddr " + container +
               " ct state new meta l4proto tcp reject with tcp reset comment \"guard\"\n";
        fwd += "    iifname " + lan + " ip daddr " + container + " ct state new drop comment \"guard\"\n";
        fwd += "    iifname " + lan + " oifname " + vpn + " ct state new drop comment \"guard\"\n";
    }

    std::string out = header();
    out += std::string("table ") + kTableFamily + " " + kTableName + " {\n";
    out += "  comment \"Owned by ferry-vpn-forwarderd, replaced as a whole: do not edit\"\n";
    out += "  chain prerouting {\n    type nat hook prerouting priority dstnat; policy accept;\n" + pre + "  }\n";
    out += "  chain input {\n    type filter hook input priority filter; policy accept;\n" + in + "  }\n";
    out += "  chain forward {\n    type filter hook forward priority filter; policy accept;\n" + fwd + "  }\n";
    out += "}\n";
    return out;
}

std::string guardsOnlyRuleset(const ForwarderConfig& config)
{
    return buildRuleset(config, RulesetInput{});
}

std::string removeRuleset()
{
    return header();
}

} // namespace vpnfwd
