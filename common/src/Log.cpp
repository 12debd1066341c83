#include "ferry/Log.h"

#include <cstdlib>
#include <string>

#include <spdlog/sinks/stdout_sinks.h>
#include <spdlog/sinks/systemd_sink.h>

namespace ferry {

void initLogging(std::string_view identifier, int verbosity)
{
    const std::string ident{identifier};
    std::shared_ptr<spdlog::logger> logger;
    // sd_journal_* succeeds and drops the message when there is no journald,
    // so the journal sink is used only when systemd connected our stderr to it.
    if (std::getenv("JOURNAL_STREAM") != nullptr) {
        auto sink = std::make_shared<spdlog::sinks::systemd_sink_mt>(ident);
        logger = std::make_shared<spdlog::logger>(ident, sink);
        logger->set_pattern("%v");
    } else {
        auto sink = std::make_shared<spdlog::sinks::stderr_sink_mt>();
        logger = std::make_shared<spdlog::logger>(ident, sink);
        logger->set_pattern(ident + "[%P]: %l: %v");
    }
    spdlog::set_default_logger(logger);
    if (verbosity < 0)
        spdlog::set_level(spdlog::level::warn);
    else if (verbosity == 0)
        spdlog::set_level(spdlog::level::info);
    else if (verbosity == 1)
        spdlog::set_level(spdlog::level::debug);
    else
        spdlog::set_level(spdlog::level::trace);
    spdlog::flush_on(spdlog::level::trace);
}

namespace {
struct LevelName {
    std::string_view name;
    spdlog::level::level_enum level;
};
// Journal (syslog) names as systemctl service-log-level uses them.
constexpr LevelName kLevels[] = {
    {"emerg", spdlog::level::critical}, {"alert", spdlog::level::critical},
    {"crit", spdlog::level::critical},  {"err", spdlog::level::err},
    {"warning", spdlog::level::warn},   {"notice", spdlog::level::info},
    {"info", spdlog::level::info},      {"debug", spdlog::level::debug},
};
} // namespace

bool setLogLevel(std::string_view name)
{
    for (const auto& l : kLevels) {
        if (l.name == name) {
            spdlog::set_level(l.level);
            return true;
        }
    }
    return false;
}

std::string_view logLevelName()
{
    switch (spdlog::get_level()) {
    case spdlog::level::trace:
    case spdlog::level::debug: return "debug";
    case spdlog::level::info: return "info";
    case spdlog::level::warn: return "warning";
    case spdlog::level::err: return "err";
    default: return "crit";
    }
}

namespace {
void logNested(const std::exception& e, int depth)
{
    if (depth == 0)
        spdlog::critical("{}", e.what());
    else
        spdlog::critical("  caused by: {}", e.what());
    try {
        std::rethrow_if_nested(e);
    } catch (const std::exception& inner) {
        logNested(inner, depth + 1);
    } catch (...) {
    }
}
} // namespace

void logFatal(const std::exception& e)
{
    logNested(e, 0);
}

} // namespace ferry
