#pragma once
// Every base chain on the local-input path, from all backends at once (the
// kernel runs legacy xtables hooks and nftables chains side by side), in
// hook and priority order. A packet reaches sshd only if each stage lets it
// through.

#include <map>
#include <set>
#include <string>
#include <vector>

#include "Finding.h"
#include "NftRuleset.h"
#include "Stage.h"
#include "SystemReader.h"

namespace fwcheck {

struct FirewallVerdict {
    Decision decision = Decision::Accept;
    std::string rule;                  // what decided (rule text or policy)
    const Stage* stage = nullptr;      // the stage that decided, if blocked
    std::string chain;                 // the chain of the rule that decided (or of the first unknown one)
    std::vector<std::string> reasons;  // why undecided
};

class Firewall {
public:
    // Reads the rules through reader; problems become findings().
    static Firewall load(SystemReader& reader);
    // For tests and the benchmark: captured text of each backend.
    void addIptables(const std::string& backend, Family family, const std::string& saveText);
    void addNft(const std::string& jsonText, const std::set<std::string>& skipTables = {},
                const std::map<std::string, std::vector<std::string>>& devices = {});

    void addNftRuleset(const NftRuleset& rs);

    FirewallVerdict verdict(const Packet& p) const;
    const std::vector<Finding>& findings() const { return m_findings; }
    std::size_t ruleCount() const { return m_rules; }

private:
    std::vector<Stage> m_stages;
    std::vector<Finding> m_findings;
    std::size_t m_rules = 0;
};

// The commands that would let packet p's master through, fitted to the
// stage and chain that blocked it (or left it undecided) and the tool that
// manages those rules: each puts an accept where it is evaluated before the
// rule that decided, so applying it changes the verdict.
//   ufw        `ufw prepend` (the top of ufw-user-input; `ufw allow` would
//              append behind a limit or deny rule, `ufw insert 1` refuses an
//              IPv6 rule ahead of IPv4 ones), or before.rules when ufw's own
//              before-chains decided;
//   firewalld  a rich rule with the lowest priority in the master's zone (it
//              lands in the zone's _pre chain, ahead of deny and allow);
//   fail2ban   unban (a rule of ours would go into a chain fail2ban owns);
//   Docker     publish elsewhere or exempt the master in nat PREROUTING;
//   otherwise  iptables/ip6tables -I or nft insert at the top of the stage.
std::string fixCommands(const Stage& stage, const std::string& chain, const std::string& rule, const Packet& p);
// The command that lets ICMPv6 neighbour discovery (icmpType 135 or 136) through stage.
std::string neighbourDiscoveryFix(const Stage& stage, int icmpType);

} // namespace fwcheck
