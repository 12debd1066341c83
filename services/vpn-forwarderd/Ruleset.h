#pragma once
// Builds the text of Ferry's nftables table from the configuration and the
// current situation. Pure: no I/O, so it is tested directly.
//
// The table is "inet ferry_forwarder": one table for IPv4 and IPv6, so the
// guards also hold over the VPN link's and the LAN's IPv6 (link-local
// addresses exist whether or not anyone configured IPv6). It is always
// replaced as a whole in one transaction ("add table; delete table; add
// table { … }"), so it never holds a half-applied state, a restart never
// duplicates a rule, and no other table is touched (but the IPv4-only
// "ip ferry_vpn" of earlier versions, which the same transaction removes).

#include <cstdint>
#include <optional>
#include <string>

#include "ForwarderConfig.h"
#include "Ipv4Prefix.h"

namespace vpnfwd {

inline constexpr const char* kTableFamily = "inet";
inline constexpr const char* kTableName = "ferry_forwarder";

struct RulesetInput {
    // Set while the VPN link is up with an address and forwarding is allowed.
    std::optional<Ipv4Prefix> vpnAddress;
    bool lanAccess = false;
    bool hostControl = false;
};

// The transaction that replaces the table with the one for input.
std::string buildRuleset(const ForwarderConfig& config, const RulesetInput& input);
// The transaction that leaves only the guards (no forward, no redirect):
// what a stopping daemon installs. Stopping must never open the host.
std::string guardsOnlyRuleset(const ForwarderConfig& config);
// The transaction that removes the table (and succeeds when it is absent):
// for uninstalling, never for a stop.
std::string removeRuleset();

} // namespace vpnfwd
