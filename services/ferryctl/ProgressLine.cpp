#include "ProgressLine.h"

#include <sys/ioctl.h>
#include <unistd.h>

#include <cmath>
#include <cstdio>

namespace ferryctl {

ProgressLine::ProgressLine(bool wanted) : m_active(wanted && ::isatty(STDERR_FILENO) == 1)
{}

ProgressLine::~ProgressLine()
{
    clear();
}

void ProgressLine::eraseLocked()
{
    if (m_shown)
        std::fputs("\r\033[K", stderr);
    m_shown = false;
}

void ProgressLine::update(const std::string& text)
{
    if (!m_active)
        return;
    std::lock_guard lock(m_mutex);
    if (m_closed)
        return;
    // A line longer than the terminal wraps, and "\r" then redraws only its
    // last part: cut it to the width.
    std::size_t width = 80;
    winsize ws{};
    if (::ioctl(STDERR_FILENO, TIOCGWINSZ, &ws) == 0 && ws.ws_col > 1)
        width = ws.ws_col;
    eraseLocked();
    const std::string shown = text.size() < width ? text : text.substr(0, width - 1);
    std::fputs(shown.c_str(), stderr);
    std::fflush(stderr);
    m_shown = true;
}

void ProgressLine::note(const std::string& line)
{
    if (!m_active)
        return;
    std::lock_guard lock(m_mutex);
    if (m_closed)
        return;
    eraseLocked();
    std::fputs((line + "\n").c_str(), stderr);
    std::fflush(stderr);
}

void ProgressLine::clear()
{
    if (!m_active)
        return;
    std::lock_guard lock(m_mutex);
    eraseLocked();
    m_closed = true;
    std::fflush(stderr);
}

std::string formatCount(std::uint64_t n)
{
    std::string digits = std::to_string(n);
    std::string out;
    for (std::size_t i = 0; i < digits.size(); ++i) {
        if (i > 0 && (digits.size() - i) % 3 == 0)
            out += ',';
        out += digits[i];
    }
    return out;
}

std::string formatBytes(std::uint64_t bytes)
{
    char buf[32];
    if (bytes < 1024)
        std::snprintf(buf, sizeof buf, "%llu B", static_cast<unsigned long long>(bytes));
    else if (bytes < 1024 * 1024)
        std::snprintf(buf, sizeof buf, "%llu KiB", static_cast<unsigned long long>(bytes / 1024));
    else
        std::snprintf(buf, sizeof buf, "%.1f MiB", static_cast<double>(bytes) / (1024.0 * 1024.0));
    return buf;
}

std::string timeLeftText(double seconds)
{
    if (seconds < 90)
        return "about " + std::to_string(static_cast<long long>(std::ceil(seconds))) + " s left";
    return "about " + std::to_string(static_cast<long long>(std::ceil(seconds / 60))) + " min left";
}

std::string transferText(std::uint64_t recordsDone, std::uint64_t recordsTotal, std::uint64_t bytesDone,
                         std::uint64_t bytesTotal, std::chrono::milliseconds elapsed)
{
    std::string text = formatCount(recordsDone) + " of " + formatCount(recordsTotal) + " records, " +
                       formatBytes(bytesDone) + " of " + formatBytes(bytesTotal);
    const double seconds = static_cast<double>(elapsed.count()) / 1000.0;
    if (bytesDone > 0 && seconds >= 0.2) {
        const double rate = static_cast<double>(bytesDone) / seconds;
        text += ", " + formatBytes(static_cast<std::uint64_t>(rate)) + "/s";
        if (bytesTotal > bytesDone)
            text += ", " + timeLeftText(static_cast<double>(bytesTotal - bytesDone) / rate);
    }
    return text;
}

} // namespace ferryctl
