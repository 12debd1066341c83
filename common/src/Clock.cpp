#include "ferry/Clock.h"

#include <ctime>

namespace ferry {

std::int64_t nowMs()
{
    using namespace std::chrono;
    return duration_cast<milliseconds>(system_clock::now().time_since_epoch()).count();
}

std::string formatTime(std::int64_t epochMs)
{
    if (epochMs <= 0)
        return "never";
    const std::time_t t = static_cast<std::time_t>(epochMs / 1000);
    std::tm tm{};
    ::localtime_r(&t, &tm);
    char buf[64];
    std::strftime(buf, sizeof buf, "%Y-%m-%d %H:%M:%S", &tm);
    return buf;
}

} // namespace ferry
