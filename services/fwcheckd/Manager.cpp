#include "Manager.h"

#include <spdlog/spdlog.h>

#include "ferry/Files.h"

namespace fwcheck {

void Manager::loadSaved()
{
    try {
        auto text = ferry::readFileIfExists(m_stateFile, 4 * 1024 * 1024);
        if (!text)
            return;
        auto r = reportFromJson(nlohmann::json::parse(*text));
        std::lock_guard lock(m_mutex);
        m_report = std::move(r);
    } catch (const std::exception& e) {
        spdlog::warn("Failed to load the last result from {}: {}; ignoring it", m_stateFile, e.what());
    }
}

Report Manager::check()
{
    std::lock_guard checkLock(m_checkMutex);
    Report r = m_checker.run();
    try {
        ferry::writeFileAtomic(m_stateFile, toJson(r).dump(2) + "\n", 0644);
    } catch (const std::exception& e) {
        spdlog::error("Failed to save the result to {}: {}", m_stateFile, e.what());
    }
    std::lock_guard lock(m_mutex);
    m_report = r;
    return r;
}

Report Manager::current() const
{
    std::lock_guard lock(m_mutex);
    return m_report;
}

} // namespace fwcheck
