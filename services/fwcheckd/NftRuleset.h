#pragma once
// `nft -j list ruleset` lowered into the tracer's chains: every base chain
// on the ingress, prerouting and input hooks of the ip, ip6, inet and netdev
// families. Expressions we cannot evaluate make a rule "unknown"; they never
// make it silently match or not.

#include <set>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "Stage.h"

namespace fwcheck {

class NftRuleset {
public:
    // skipTables: "family name" of tables read through iptables-nft-save
    // instead (their xt matches are opaque in JSON).
    NftRuleset(const std::string& jsonText, const std::set<std::string>& skipTables);

    std::vector<Stage> stages(Family family) const;
    const std::vector<std::string>& problems() const { return m_problems; }
    std::size_t ruleCount() const { return m_ruleCount; }

private:
    struct Table {
        std::string family, name;
        std::shared_ptr<ChainMap> chains = std::make_shared<ChainMap>();
        struct Base {
            std::string chain, hook, type, device;
            int priority = 0;
        };
        std::vector<Base> bases;
        std::map<std::string, nlohmann::json> sets;  // name -> elem array (maps too)
        bool firewalld = false;
    };

    void addRule(Table& t, const nlohmann::json& rule);

    std::vector<Table> m_tables;
    std::vector<std::string> m_problems;
    std::size_t m_ruleCount = 0;
};

} // namespace fwcheck
