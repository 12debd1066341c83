#include "ferry/DaemonArgs.h"

#include <charconv>

#include "ferry/Error.h"

namespace ferry {

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
            const std::string v = s.substr(kIdle.size());
            unsigned seconds = 0;
            const auto [p, ec] = std::from_chars(v.data(), v.data() + v.size(), seconds);
            if (ec != std::errc{} || p != v.data() + v.size() || v.empty() || seconds > 86400)
                throw Error("Invalid argument '" + s + "': expected a number of seconds from 0 to 86400 (usage: " +
                            usage + ")");
            a.idleTimeout = std::chrono::seconds(seconds);
        } else if (!extra || !extra(s)) {
            throw Error("Unknown argument '" + s + "' (usage: " + usage + ")");
        }
    }
    return a;
}

} // namespace ferry
