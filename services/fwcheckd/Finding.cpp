#include "Finding.h"

#include "ferry/Error.h"

namespace fwcheck {

nlohmann::json toJson(const Report& r)
{
    nlohmann::json j;
    j["verdict"] = r.verdict;
    j["lastCheck"] = r.lastCheck;
    j["findings"] = nlohmann::json::array();
    for (const auto& f : r.findings)
        j["findings"].push_back({{"id", f.id}, {"severity", f.severity}, {"message", f.message}, {"fix", f.fix}});
    j["masters"] = nlohmann::json::array();
    for (const auto& m : r.masters)
        j["masters"].push_back({{"host", m.host},
                                {"address", m.address},
                                {"verdict", m.verdict},
                                {"firewall", m.firewall},
                                {"decidedBy", m.decidedBy}});
    return j;
}

Report reportFromJson(const nlohmann::json& j)
{
    try {
        Report r;
        r.verdict = j.at("verdict").get<std::string>();
        if (r.verdict != "reachable" && r.verdict != "blocked" && r.verdict != "undecided")
            throw ferry::Error("unknown verdict '" + r.verdict + "'");
        r.lastCheck = j.at("lastCheck").get<std::int64_t>();
        for (const auto& f : j.at("findings"))
            r.findings.push_back({f.at("id").get<std::string>(), f.at("severity").get<std::string>(),
                                  f.at("message").get<std::string>(), f.at("fix").get<std::string>()});
        for (const auto& m : j.at("masters"))
            r.masters.push_back({m.at("host").get<std::string>(), m.at("address").get<std::string>(),
                                 m.at("verdict").get<std::string>(), m.at("firewall").get<std::string>(),
                                 m.at("decidedBy").get<std::string>()});
        return r;
    } catch (const nlohmann::json::exception& e) {
        throw ferry::Error(std::string("Failed to read the saved check result: ") + e.what());
    }
}

} // namespace fwcheck
