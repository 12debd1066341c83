#pragma once
// `nft -j list ruleset` lowered into the tracer's chains: every base chain
// on the ingress, prerouting and input hooks of the ip, ip6, inet and netdev
// families. Expressions we cannot evaluate make a rule "unknown"; they never
// make it silently match or not.

#include <map>
#include <optional>
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
    // devices: "table chain" of netdev ingress chains -> their devices, from
    // parseIngressDevices(), because the JSON of nft 1.0.6 omits them.
    NftRuleset(const std::string& jsonText, const std::set<std::string>& skipTables,
               const std::map<std::string, std::vector<std::string>>& devices = {});
    // The same from an already parsed document.
    NftRuleset(const nlohmann::json& doc, const std::set<std::string>& skipTables,
               const std::map<std::string, std::vector<std::string>>& devices);

    std::vector<Stage> stages(Family family) const;
    const std::vector<std::string>& problems() const { return m_problems; }
    std::size_t ruleCount() const { return m_ruleCount; }

private:
    struct Table {
        std::string family, name;
        std::shared_ptr<ChainMap> chains = std::make_shared<ChainMap>();
        struct Base {
            std::string chain, hook, type;
            std::optional<std::vector<std::string>> devices;  // netdev only; nullopt: unknown
            int priority = 0;
        };
        std::vector<Base> bases;
        std::map<std::string, nlohmann::json> sets;  // name -> elem array (maps too)
        std::shared_ptr<const std::map<std::string, nlohmann::json>> sharedSets;  // for the rules' closures
        bool firewalld = false;
    };

    void read(const nlohmann::json& doc, const std::set<std::string>& skipTables,
              const std::map<std::string, std::vector<std::string>>& devices);
    void addRule(Table& t, const nlohmann::json& rule);

    std::vector<Table> m_tables;
    std::vector<std::string> m_problems;
    std::size_t m_ruleCount = 0;
};

// Netdev ingress chains' devices from `nft list ruleset` text.
std::map<std::string, std::vector<std::string>> parseIngressDevices(const std::string& text);

} // namespace fwcheck
