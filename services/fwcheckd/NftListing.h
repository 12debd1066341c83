#pragma once
// The nftables rule set read in-process: an inventory straight from the
// kernel over netlink (which tables exist and which of them hold xt
// expressions, the compat matches iptables-nft writes), and listings through
// libnftables, the library the nft program is built on (the same JSON as
// `nft -j list …` without starting a program).
//
// Why both: libnftables spends most of a large listing decoding rules, and
// on a host whose big tables come from iptables-nft that work is wasted
// (those tables are read with iptables-nft-save, which can show what their
// xt expressions test). The inventory costs one netlink dump without
// decoding, so only the tables that need libnftables are listed with it.
//
// Everything here needs CAP_NET_ADMIN: nfnetlink refuses every request,
// listings included, without it.

#include <map>
#include <optional>
#include <string>
#include <vector>

#include "SystemReader.h"

namespace fwcheck {

// "family name" ("ip filter", "inet firewalld", …) of every table. netnsPath,
// when not empty, names a network namespace (/run/netns/<name>) to read
// instead of the caller's: the work then runs on a short-lived thread that
// joins it, so the calling thread never changes namespace. Throws
// ferry::Error naming what failed.
std::map<std::string, NftTableInfo> nftInventory(const std::string& netnsPath = {});

// Runs `list …` commands through libnftables and returns their output: as
// one {"nftables": [...]} JSON document (json = true; the commands' arrays
// joined) or as nft's text. A failure comes back as ran = false (the
// library or namespace is unusable) or a non-zero exitCode with
// libnftables' error text in err.
CommandOutput listNft(const std::vector<std::string>& commands, bool json, const std::string& netnsPath = {});

} // namespace fwcheck
