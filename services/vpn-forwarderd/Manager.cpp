#include "Manager.h"

#include <spdlog/spdlog.h>

#include "Ruleset.h"
#include "ferry/Error.h"

namespace vpnfwd {

Manager::Manager(ForwarderConfig config, Network& network, Firewall& firewall, ToggleStore& store)
    : m_config(std::move(config)), m_network(network), m_firewall(firewall), m_store(store)
{
}

void Manager::start()
{
    m_toggles = m_store.load();
    spdlog::info("Configured to forward TCP {} from {} to {}; LAN access {}, host control {}",
                 formatPortRanges(m_config.forwardedPorts), m_config.vpnInterface,
                 formatIpv4(m_config.containerAddress), m_toggles.lanAccess ? "on" : "off",
                 m_toggles.hostControl ? "on" : "off");
    refresh(true);
}

std::optional<std::string> Manager::overlapProblem(const NetSnapshot& snap, const LinkState& vpn) const
{
    // Every address on the VPN link counts, not only the one forwarded: a
    // secondary address overlapping a local subnet misroutes just the same.
    for (const auto& mine : vpn.addresses) {
        if (mine.contains(m_config.containerAddress))
            return "the VPN subnet " + mine.subnetText() + " on " + vpn.name + " contains the container address " +
                   formatIpv4(m_config.containerAddress);
        for (const auto& link : snap.links) {
            if (link.index == vpn.index)
                continue;
            for (const auto& other : link.addresses) {
                if (mine.overlaps(other))
                    return "the VPN subnet " + mine.subnetText() + " on " + vpn.name + " overlaps the local subnet " +
                           other.subnetText() + " on " + link.name;
            }
        }
    }
    return std::nullopt;
}

void Manager::enableForwardingOn(const LinkState& link)
{
    if (link.forwarding)
        return;
    m_network.enableForwarding(link);
    spdlog::info("Enabled IPv4 forwarding on {}", link.name);
}

bool Manager::refresh(bool force)
{
    ForwarderStatus next;
    next.toggles = m_toggles;
    std::string error;
    NetSnapshot snap;
    try {
        snap = m_network.snapshot();
    } catch (const std::exception& e) {
        // Without a picture of the links nothing can be decided; keep what is installed.
        next = m_status;
        next.toggles = m_toggles;
        next.lastError = std::string("Failed to read links and addresses: ") + e.what();
        next.refused = false;
        if (next.lastError != m_lastLoggedError)
            spdlog::error("{}", next.lastError);
        m_lastLoggedError = next.lastError;
        publish(next);
        return false;
    }

    const LinkState* vpn = snap.find(m_config.vpnInterface);
    next.linkUp = vpn != nullptr && vpn->up;
    if (next.linkUp && !vpn->addresses.empty())
        next.vpnAddress = vpn->addresses.front();

    RulesetInput input;
    input.lanAccess = next.toggles.lanAccess;
    if (next.vpnAddress) {
        if (auto problem = overlapProblem(snap, *vpn)) {
            error = "Refusing to forward: " + *problem +
                    "; replies would be routed to the wrong place. Change the VPN server's subnet or the local one.";
            next.refused = true;
        } else {
            input.vpnAddress = next.vpnAddress;
            input.hostControl = next.toggles.hostControl;
        }
    }

    // The kernel forwards a packet only when forwarding is on for the link it
    // came in on: the VPN link (requests), the container's link (replies),
    // and the LAN links when LAN access is on.
    try {
        std::vector<const LinkState*> needForwarding;
        if (input.vpnAddress)
            needForwarding.push_back(vpn);
        if (input.vpnAddress || input.lanAccess) {
            const LinkState* containerLink = nullptr;
            for (const auto& link : snap.links) {
                for (const auto& a : link.addresses)
                    if (&link != vpn && a.length < 32 && a.contains(m_config.containerAddress))
                        containerLink = &link;
            }
            if (containerLink)
                needForwarding.push_back(containerLink);
            else if (!m_warnedNoContainerLink) {
                spdlog::warn("No local subnet contains the container address {}; IPv4 forwarding must be enabled "
                             "on the link that leads to it",
                             formatIpv4(m_config.containerAddress));
                m_warnedNoContainerLink = true;
            }
        }
        if (input.lanAccess) {
            for (const auto& name : m_config.lanInterfaces)
                if (const LinkState* l = snap.find(name))
                    needForwarding.push_back(l);
        }
        for (const LinkState* l : needForwarding)
            enableForwardingOn(*l);
    } catch (const std::exception& e) {
        if (error.empty())
            error = e.what();
    }

    const std::string script = buildRuleset(m_config, input);
    bool applied = true;
    if (force || script != m_installed) {
        try {
            m_firewall.run(script);
            m_installed = script;
        } catch (const std::exception& e) {
            applied = false;
            error = std::string("Failed to replace nftables table ") + kTableFamily + " " + kTableName + ": " + e.what();
            next.refused = false;
        }
    }
    next.forwarding = (applied ? input.vpnAddress.has_value() : m_status.forwarding);
    next.lastError = error;

    const ForwarderStatus previous = m_status;
    publish(next);
    if (error != m_lastLoggedError) {
        if (!error.empty())
            spdlog::error("{}", error);
        else if (!m_lastLoggedError.empty())
            spdlog::info("Working again: {}", statusLine());
        m_lastLoggedError = error;
    }
    if (next.forwarding != previous.forwarding || next.vpnAddress != previous.vpnAddress) {
        if (next.forwarding)
            spdlog::info("Forwarding TCP {} on {} ({}) to {}", formatPortRanges(m_config.forwardedPorts),
                         next.vpnAddress->addressText(), m_config.vpnInterface, formatIpv4(m_config.containerAddress));
        else if (previous.forwarding)
            spdlog::info("Removed the VPN forwards ({} is {})", m_config.vpnInterface,
                         !next.linkUp ? "down" : next.vpnAddress ? "refused" : "without an IPv4 address");
    }
    return applied;
}

void Manager::setToggles(const Toggles& toggles)
{
    const Toggles previous = m_toggles;
    if (toggles == previous) {
        if (!refresh())
            throw ferry::Error(m_status.lastError);
        return;
    }
    m_store.save(toggles);
    m_toggles = toggles;
    if (!refresh()) {
        const std::string why = m_status.lastError;
        // The failed transaction changed nothing: the table in force is the
        // one for the previous toggles. Say so, and keep the reason visible.
        m_toggles = previous;
        try {
            m_store.save(previous);
        } catch (const std::exception& e) {
            spdlog::error("Ignoring a failure to restore the saved toggles: {}", e.what());
        }
        ForwarderStatus restored = m_status;
        restored.toggles = previous;
        publish(restored);
        throw ferry::Error(why);
    }
}

void Manager::setLanAccess(bool enabled)
{
    Toggles t = m_toggles;
    t.lanAccess = enabled;
    setToggles(t);
    spdlog::info("LAN access {}", enabled ? "on" : "off");
}

void Manager::setHostControl(bool enabled)
{
    Toggles t = m_toggles;
    t.hostControl = enabled;
    setToggles(t);
    spdlog::info("Host control {}", enabled ? "on" : "off");
}

void Manager::shutdown()
{
    // The forwards go; the guards stay: a stopped forwarder must leave the
    // host as closed to the VPN peer and the LAN as a running one.
    try {
        m_firewall.run(guardsOnlyRuleset(m_config));
        m_installed.clear();
        spdlog::info("Removed the forwards from nftables table {} {}; its guards stay", kTableFamily, kTableName);
    } catch (const std::exception& e) {
        spdlog::error("Failed to remove the forwards from nftables table {} {} on stop: {}", kTableFamily, kTableName,
                      e.what());
    }
}

std::string Manager::statusLine() const
{
    std::string line;
    if (!m_status.lastError.empty())
        line = m_status.lastError;
    else if (m_status.forwarding)
        line = "Forwarding TCP " + formatPortRanges(m_config.forwardedPorts) + " from " +
               m_status.vpnAddress->addressText() + " to " + formatIpv4(m_config.containerAddress);
    else if (!m_status.linkUp)
        line = "Waiting for " + m_config.vpnInterface + " to come up";
    else
        line = "Waiting for an IPv4 address on " + m_config.vpnInterface;
    line += std::string("; LAN access ") + (m_status.toggles.lanAccess ? "on" : "off") + ", host control " +
            (m_status.toggles.hostControl ? "on" : "off");
    return line;
}

void Manager::publish(const ForwarderStatus& next)
{
    std::vector<std::string> changed;
    if (next.linkUp != m_status.linkUp)
        changed.push_back("LinkUp");
    if (next.forwarding != m_status.forwarding)
        changed.push_back("Forwarding");
    if (next.vpnAddress != m_status.vpnAddress)
        changed.push_back("VpnAddress");
    if (next.toggles.lanAccess != m_status.toggles.lanAccess)
        changed.push_back("LanAccess");
    if (next.toggles.hostControl != m_status.toggles.hostControl)
        changed.push_back("HostControl");
    if (next.lastError != m_status.lastError)
        changed.push_back("LastError");
    m_status = next;
    if (!changed.empty() && m_onChanged)
        m_onChanged(changed);
}

} // namespace vpnfwd
