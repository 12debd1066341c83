#include "ferry/SshdHostKeys.h"

#include <algorithm>
#include <filesystem>

#include <spdlog/spdlog.h>

#include "ferry/Files.h"
#include "ferry/RegistryProtocol.h"

namespace ferry {

std::vector<std::string> readSshdHostKeys(const std::string& dir)
{
    std::vector<std::string> files;
    std::error_code ec;
    for (const auto& entry : std::filesystem::directory_iterator(dir, ec)) {
        const std::string name = entry.path().filename().string();
        if (name.rfind("ssh_host_", 0) == 0 && name.size() > 12 && name.ends_with("_key.pub"))
            files.push_back(entry.path().string());
    }
    if (ec)
        spdlog::warn("Failed to list the sshd host keys in {}: {}; going on without them", dir, ec.message());
    std::sort(files.begin(), files.end());
    std::vector<std::string> keys;
    for (const auto& f : files) {
        if (keys.size() >= kMaxHostKeys) {
            spdlog::warn("Ignoring sshd host key {}: at most {} are sent", f, kMaxHostKeys);
            continue;
        }
        try {
            auto key = normalizeKeyLine(readFile(f, kMaxKeyLine));
            if (std::find(keys.begin(), keys.end(), key) == keys.end())
                keys.push_back(std::move(key));
        } catch (const std::exception& e) {
            spdlog::warn("Ignoring sshd host key {}: {}", f, e.what());
        }
    }
    return keys;
}

std::vector<std::string> sshdHostKeyFingerprints(const std::string& dir)
{
    std::vector<std::string> out;
    for (const auto& line : readSshdHostKeys(dir))
        out.push_back(keyFingerprint(line));
    return out;
}

} // namespace ferry
