#pragma once
// The nftables rule set read in-process through libnftables, the library
// the nft program is built on: the same JSON as `nft -j list ruleset`
// without starting a program (which cost more than half of a check on a
// large rule set). Needs CAP_NET_ADMIN: the kernel's nfnetlink refuses
// every request, listings included, without it.

#include <string>

#include "SystemReader.h"

namespace fwcheck {

// `list ruleset` as JSON (json = true) or as nft's text. netnsPath, when
// not empty, names a network namespace (/run/netns/<name>) to read instead
// of the caller's: the listing then runs on a short-lived thread that joins
// it, so the calling thread never changes namespace. A failure comes back
// as ran = false (the library or namespace is unusable) or a non-zero
// exitCode with libnftables' error text in err.
CommandOutput listNftRuleset(bool json, const std::string& netnsPath = {});

} // namespace fwcheck
