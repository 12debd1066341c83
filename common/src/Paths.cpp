#include "ferry/Paths.h"

#include <cstdlib>

namespace ferry {

namespace {

std::string envOr(const char* name, const char* systemdName, const std::string& fallback)
{
    if (const char* v = std::getenv(name); v != nullptr && *v != '\0')
        return v;
    // systemd may pass several colon-separated directories; ours is the first.
    if (const char* v = std::getenv(systemdName); v != nullptr && *v != '\0') {
        std::string s = v;
        return s.substr(0, s.find(':'));
    }
    return fallback;
}

} // namespace

Paths pathsFromEnvironment()
{
    Paths p;
    p.configDir = envOr("FERRY_CONFIG_DIR", "CONFIGURATION_DIRECTORY", p.configDir);
    p.stateDir = envOr("FERRY_STATE_DIR", "STATE_DIRECTORY", p.stateDir);
    p.runtimeDir = envOr("FERRY_RUNTIME_DIR", "RUNTIME_DIRECTORY", p.runtimeDir);
    return p;
}

} // namespace ferry
