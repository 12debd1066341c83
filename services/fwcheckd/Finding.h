#pragma once
// What a check reports: findings (each with the exact command that would
// fix it) and a summary verdict.

#include <cstdint>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

namespace fwcheck {

// "error" blocks the master; "undecided" means we could not tell.
namespace severity {
inline constexpr const char* kInfo = "info";
inline constexpr const char* kWarning = "warning";
inline constexpr const char* kUndecided = "undecided";
inline constexpr const char* kError = "error";
} // namespace severity

struct Finding {
    std::string id;        // "firewall.blocked", "sshd.allow-users", …
    std::string severity;  // see severity::
    std::string message;
    std::string fix;       // commands or lines to add; empty when none
    bool operator==(const Finding&) const = default;
};

struct MasterResult {
    std::string host;     // as configured
    std::string address;  // the address checked
    std::string verdict;  // reachable / blocked / undecided
    std::string firewall; // accept / drop / reject / undecided
    std::string decidedBy;
};

struct Report {
    std::string verdict = "undecided";
    std::int64_t lastCheck = 0;  // ms since the epoch; 0 = never
    std::vector<Finding> findings;
    std::vector<MasterResult> masters;
};

nlohmann::json toJson(const Report& r);
// Throws ferry::Error naming what is wrong.
Report reportFromJson(const nlohmann::json& j);

} // namespace fwcheck
