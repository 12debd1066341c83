#pragma once
// The forwarder's core: turns (configuration, links and addresses, toggles)
// into Ferry's nftables table and keeps it in step as links come and go.
// Knows nothing of D-Bus; runs on one thread (the event loop's).

#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "ForwarderConfig.h"
#include "Ipv4Prefix.h"
#include "Network.h"
#include "ToggleStore.h"

namespace vpnfwd {

struct ForwarderStatus {
    bool linkUp = false;
    bool forwarding = false;                // the VPN forwards are installed
    std::optional<Ipv4Prefix> vpnAddress;   // primary IPv4 address of the VPN link
    Toggles toggles;
    std::string lastError;                  // empty when all is well
    bool refused = false;                   // lastError is a refusal (overlap), not a failure
    bool operator==(const ForwarderStatus&) const = default;
};

class Manager {
public:
    Manager(ForwarderConfig config, Network& network, Firewall& firewall, ToggleStore& store);

    // Loads the saved toggles and installs the table for the current links.
    // Failures are recorded in LastError, not thrown: the daemon stays up to
    // react to the next link event or a Reapply.
    void start();
    // Re-reads links and addresses and replaces the table when the result
    // differs from what is installed (always, when force is set). Returns
    // false when the table could not be applied.
    bool refresh(bool force = false);
    // Persist the toggle, then apply. On failure the previous toggle is
    // restored and ferry::Error thrown.
    void setLanAccess(bool enabled);
    void setHostControl(bool enabled);
    // Removes Ferry's table (clean stop).
    void shutdown();

    const ForwarderStatus& status() const { return m_status; }
    const ForwarderConfig& config() const { return m_config; }
    // One line for sd_notify STATUS= and logs.
    std::string statusLine() const;

    // Called with the D-Bus names of the properties that changed.
    void onChanged(std::function<void(const std::vector<std::string>&)> callback) { m_onChanged = std::move(callback); }

private:
    void setToggles(const Toggles& toggles);
    void publish(const ForwarderStatus& next);
    std::optional<std::string> overlapProblem(const NetSnapshot& snap, const LinkState& vpn) const;
    void enableForwardingOn(const LinkState& link);

    ForwarderConfig m_config;
    Network& m_network;
    Firewall& m_firewall;
    ToggleStore& m_store;
    Toggles m_toggles;        // what the operator chose (saved)
    ForwarderStatus m_status; // what is in force, as the properties report it
    std::string m_installed;  // the script last applied successfully
    std::string m_lastLoggedError;
    bool m_warnedNoContainerLink = false;
    std::function<void(const std::vector<std::string>&)> m_onChanged;
};

} // namespace vpnfwd
