#include "FwcheckSummary.h"

#include <nlohmann/json.hpp>

#include "ferry/Files.h"
#include "ferry/Clock.h"

namespace pushd {

std::string fwcheckSummary(const std::string& file, std::size_t maxBytes)
{
    std::string text;
    try {
        const auto content = ferry::readFileIfExists(file, 4 * 1024 * 1024);
        if (!content)
            return {};
        const auto j = nlohmann::json::parse(*content);
        text = j.at("verdict").get<std::string>();
        if (const auto at = j.value("lastCheck", std::int64_t{0}); at > 0)
            text += " (checked " + ferry::formatTime(at) + ")";
        std::size_t shown = 0;
        const auto& findings = j.at("findings");
        for (const auto& f : findings) {
            std::string one = f.value("id", std::string("?")) + ": " + f.value("message", std::string());
            if (const auto fix = f.value("fix", std::string()); !fix.empty())
                one += " | fix: " + fix;
            const std::string sep = shown == 0 ? ": " : "; ";
            // Room for the "(+N more)" note that may follow.
            if (text.size() + sep.size() + one.size() + 16 > maxBytes)
                break;
            text += sep + one;
            ++shown;
        }
        if (shown < findings.size())
            text += " (+" + std::to_string(findings.size() - shown) + " more)";
    } catch (const std::exception& e) {
        text = std::string("unreadable fwcheck result: ") + e.what();
    }
    if (text.size() > maxBytes)
        text.resize(maxBytes);
    return text;
}

std::int64_t fwcheckCheckedMs(const std::string& file)
{
    try {
        const auto content = ferry::readFileIfExists(file, 4 * 1024 * 1024);
        if (!content)
            return 0;
        return nlohmann::json::parse(*content).value("lastCheck", std::int64_t{0});
    } catch (const std::exception&) {
        return 0;
    }
}

} // namespace pushd
