#pragma once
// Logging: spdlog to the journal (with priorities) when started by systemd,
// to stderr otherwise. Call initLogging() once at the top of main().

#include <exception>
#include <string_view>

#include <spdlog/spdlog.h>

namespace ferry {

// verbosity: 0 = info, 1 = debug, 2 = trace; negative = warnings only.
void initLogging(std::string_view identifier, int verbosity = 0);

// Sets the level by its journal name ("debug", "info", "warning", "err", …);
// returns false for an unknown name. Used by org.freedesktop.LogControl1.
bool setLogLevel(std::string_view name);
std::string_view logLevelName();

// The last line of a failing main(): logs the exception and its nested causes.
void logFatal(const std::exception& e);

} // namespace ferry
