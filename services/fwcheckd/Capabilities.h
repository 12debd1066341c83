#pragma once
// Which capability each part of a check holds. The unit grants three
// (CAP_NET_ADMIN, CAP_NET_RAW, CAP_DAC_READ_SEARCH) because the listing
// tools need them, but no single part needs all three:
//
//   the daemon itself     CAP_NET_ADMIN        nftables over netlink and libnftables
//   iptables-legacy-save  all three            a raw socket (NET_RAW), the table
//                                              getsockopt (NET_ADMIN), the root-only
//                                              /proc/net/ip_tables_names (DAC_READ_SEARCH)
//   iptables-nft-save     CAP_NET_ADMIN        nfnetlink refuses even listings without it
//   sshd -T               CAP_DAC_READ_SEARCH  it loads the root-only host keys
//   ip route get, ss      none
//
// So the daemon keeps the three in its permitted and inheritable sets (to
// hand them on) but only CAP_NET_ADMIN in its effective set, and each
// program it starts gets exactly its own in the ambient set. Running as
// root (tests, `--check` by hand) none of this applies: root's programs
// get every capability anyway.

#include <linux/capability.h>

#include <vector>

namespace fwcheck {

using CapabilityList = std::vector<int>;

inline const CapabilityList kLegacyIptablesCaps = {CAP_NET_ADMIN, CAP_NET_RAW, CAP_DAC_READ_SEARCH};
inline const CapabilityList kNftIptablesCaps = {CAP_NET_ADMIN};
inline const CapabilityList kSshdCaps = {CAP_DAC_READ_SEARCH};
inline const CapabilityList kNoCaps = {};

// Lowers the effective set to keep (permitted and inheritable stay). Does
// nothing for root. Throws ferry::Error when the kernel refuses.
void keepEffectiveCapabilities(const CapabilityList& keep);

} // namespace fwcheck
