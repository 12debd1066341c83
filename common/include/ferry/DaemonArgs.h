#pragma once
// The command line every Ferry daemon shares: -v/--verbose (repeatable) and
// --idle-timeout=SECONDS (0 = never exit for idleness). Anything else goes
// to the daemon's own handler; an argument nobody takes is an Error that
// quotes it and the usage line.

#include <chrono>
#include <functional>
#include <string>

namespace ferry {

struct DaemonArgs {
    int verbosity = 0;
    std::chrono::milliseconds idleTimeout{30000};
};

// A whole-number flag value in [min, max]; ConfigError naming the flag otherwise.
long long parseNumberArg(const std::string& flag, const std::string& value, long long min, long long max);

DaemonArgs parseDaemonArgs(int argc, char* argv[], std::chrono::milliseconds defaultIdle, const std::string& usage,
                           const std::function<bool(const std::string&)>& extra = {});

} // namespace ferry
