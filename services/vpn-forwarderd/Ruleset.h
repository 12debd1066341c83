#pragma once
// Builds the text of Ferry's nftables table from the configuration and the
// current situation. Pure: no I/O, so it is tested directly.
//
// The table is "ip ferry_vpn". It is always replaced as a whole in one
// transaction ("add table; delete table; add table { … }"), so it never holds
// a half-applied state, a restart never duplicates a rule, and no other table
// is touched.

#include <cstdint>
#include <optional>
#include <string>

#include "ForwarderConfig.h"
#include "Ipv4Prefix.h"

namespace vpnfwd {

inline constexpr const char* kTableFamily = "ip";
inline constexpr const char* kTableName = "ferry_vpn";

struct RulesetInput {
    // Set while the VPN link is up with an address and forwarding is allowed.
    std::optional<Ipv4Prefix> vpnAddress;
    bool lanAccess = false;
    bool hostControl = false;
};

// The transaction that replaces the table with the one for input.
std::string buildRuleset(const ForwarderConfig& config, const RulesetInput& input);
// The transaction that removes the table (and succeeds when it is absent).
std::string removeRuleset();

} // namespace vpnfwd
