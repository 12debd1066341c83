#include "ferry/Log.h"

#include <sys/stat.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <mutex>
#include <string>

#include <spdlog/sinks/base_sink.h>
#include <spdlog/sinks/stdout_sinks.h>

namespace ferry {

namespace {

// Our stderr is a journal stream: systemd says so in JOURNAL_STREAM
// ("<device>:<inode>" of the stream), which must be the file on fd 2 now,
// not one that a parent had (systemd.exec(5)).
bool stderrIsJournal()
{
    const char* env = std::getenv("JOURNAL_STREAM");
    struct stat st {};
    if (env == nullptr || ::fstat(2, &st) != 0)
        return false;
    unsigned long long dev = 0, ino = 0;
    if (std::sscanf(env, "%llu:%llu", &dev, &ino) != 2)
        return false;
    return dev == static_cast<unsigned long long>(st.st_dev) && ino == static_cast<unsigned long long>(st.st_ino);
}

// One line per message on stderr, led by its syslog priority as "<N>",
// which journald turns into the entry's PRIORITY (sd-daemon(3)). No
// libsystemd: the journal is reached through the stream systemd gave us,
// so a process that needs nothing else of systemd does not map it.
class JournalStreamSink : public spdlog::sinks::base_sink<std::mutex> {
protected:
    void sink_it_(const spdlog::details::log_msg& msg) override
    {
        int priority = 6;
        switch (msg.level) {
        case spdlog::level::trace:
        case spdlog::level::debug: priority = 7; break;
        case spdlog::level::info: priority = 6; break;
        case spdlog::level::warn: priority = 4; break;
        case spdlog::level::err: priority = 3; break;
        default: priority = 2; break;
        }
        spdlog::memory_buf_t text;
        formatter_->format(msg, text);
        // Each line is an entry of its own: each gets the priority.
        const std::string_view all(text.data(), text.size());
        std::string out;
        for (std::size_t at = 0; at < all.size();) {
            const std::size_t end = std::min(all.find('\n', at), all.size());
            out += "<" + std::to_string(priority) + ">";
            out.append(all.substr(at, end - at));
            out += '\n';
            at = end + 1;
        }
        std::fwrite(out.data(), 1, out.size(), stderr);
    }
    void flush_() override { std::fflush(stderr); }
};

} // namespace

void initLogging(std::string_view identifier, int verbosity)
{
    const std::string ident{identifier};
    std::shared_ptr<spdlog::logger> logger;
    if (stderrIsJournal()) {
        // The journal names the unit, the process and the time itself.
        logger = std::make_shared<spdlog::logger>(ident, std::make_shared<JournalStreamSink>());
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
