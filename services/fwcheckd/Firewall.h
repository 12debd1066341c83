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
    // The tool whose rules the operator should change (ufw, firewalld, …).
    Tool toolFor(Family f) const;

private:
    std::vector<Stage> m_stages;
    std::vector<Finding> m_findings;
    std::size_t m_rules = 0;
};

// The commands that would let master through on port, fitted to the stage
// that blocked it and the tool that manages the rules.
std::string fixCommands(const Stage& stage, Tool tool, const std::string& master, std::uint16_t port);
// The command that lets ICMPv6 neighbour discovery (icmpType 135 or 136) through stage.
std::string neighbourDiscoveryFix(const Stage& stage, int icmpType);

} // namespace fwcheck
