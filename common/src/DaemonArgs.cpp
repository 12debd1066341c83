#include "ferry/DaemonArgs.h"

#include <charconv>

#include "ferry/Error.h"

namespace ferry {

long long parseNumberArg(const std::string& flag, const std::string& value, long long min, long long max)
{
    long long v = 0;
    const auto [p, ec] = std::from_chars(value.data(), value.data() + value.size(), v);
    if (value.empty() || ec != std::errc{} || p != value.data() + value.size() || v < min || v > max)
        throw ConfigError("Failed to parse " + flag + " '" + value + "': expected a number from " +
                          std::to_string(min) + " to " + std::to_string(max));
    return v;
}

DaemonArgs parseDaemonArgs(int argc, char* argv[], std::chrono::milliseconds defaultIdle, const std::string& usage,
                           const std::function<bool(const std::string&)>& extra)
{
    DaemonArgs a;
    a.idleTimeout = defaultIdle;
    static const std::string kIdle = "--idle-timeout=";
    for (int i = 1; i < argc; ++i) {
        const std::string s = argv[i];
        if (s == "-v" || s == "--verbose") {
            ++a.verbosity;
        } else if (s.rfind(kIdle, 0) == 0) {
            a.idleTimeout = std::chrono::seconds(parseNumberArg("--idle-timeout", s.substr(kIdle.size()), 0, 86400));
        } else if (!extra || !extra(s)) {
            throw Error("Unknown argument '" + s + "' (usage: " + usage + ")");
        }
    }
    return a;
}

} // namespace ferry
