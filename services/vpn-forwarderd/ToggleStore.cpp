#include "ToggleStore.h"

#include <filesystem>
#include <sstream>

#include <spdlog/spdlog.h>

#include "ferry/Error.h"
#include "ferry/Files.h"

namespace vpnfwd {

Toggles ToggleStore::load() const
{
    Toggles toggles;
    std::optional<std::string> text;
    try {
        text = ferry::readFileIfExists(m_path, 64 * 1024);
    } catch (const std::exception& e) {
        spdlog::error("Ignoring the saved toggles, both off: {}", e.what());
        return {};
    }
    if (!text)
        return toggles;
    std::istringstream in(*text);
    std::string line;
    int lineNo = 0;
    while (std::getline(in, line)) {
        ++lineNo;
        if (line.empty() || line[0] == '#')
            continue;
        const auto eq = line.find('=');
        const std::string key = line.substr(0, eq);
        const std::string value = eq == std::string::npos ? std::string{} : line.substr(eq + 1);
        bool* target = key == "lan-access" ? &toggles.lanAccess : key == "host-control" ? &toggles.hostControl : nullptr;
        if (target == nullptr || (value != "on" && value != "off")) {
            spdlog::error("Ignoring the saved toggles in {}, both off: line {} is not 'lan-access=on|off' or "
                          "'host-control=on|off'",
                          m_path, lineNo);
            return {};
        }
        *target = value == "on";
    }
    return toggles;
}

void ToggleStore::save(const Toggles& toggles) const
{
    const std::string text = std::string("# Written by ferry-vpn-forwarderd; change with `ferryctl vpn`.\n") +
                             "lan-access=" + (toggles.lanAccess ? "on" : "off") + "\n" +
                             "host-control=" + (toggles.hostControl ? "on" : "off") + "\n";
    try {
        // systemd creates StateDirectory=; a manual start may not have it yet.
        const auto dir = std::filesystem::path(m_path).parent_path();
        if (!dir.empty())
            std::filesystem::create_directories(dir);
        ferry::writeFileAtomic(m_path, text, 0644);
    } catch (const std::exception& e) {
        throw ferry::Error("Failed to save the toggles to " + m_path + ": " + e.what());
    }
}

} // namespace vpnfwd
