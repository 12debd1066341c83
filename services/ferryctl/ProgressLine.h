#pragma once
// ferryctl's progress display for long work (a push draining a backlog, a
// pull of every node): one line on standard error, redrawn in place, and
// lines that stay above it for finished steps. It shows only when standard
// error is a terminal and the output is not JSON, so that scripts, pipes
// and logs see the result alone. Updates may come from any thread.

#include <chrono>
#include <cstdint>
#include <mutex>
#include <string>

namespace ferryctl {

class ProgressLine {
public:
    // wanted: false for --json. Active only when also on a terminal.
    explicit ProgressLine(bool wanted);
    ~ProgressLine();
    ProgressLine(const ProgressLine&) = delete;
    ProgressLine& operator=(const ProgressLine&) = delete;

    bool active() const { return m_active; }
    // Replaces the progress line (cut to the terminal's width).
    void update(const std::string& text);
    // A line that stays, printed above the progress line.
    void note(const std::string& line);
    // Removes the progress line, before the result is printed. Updates and
    // notes that come later (a signal handled after the reply) are dropped.
    void clear();

private:
    void eraseLocked();

    bool m_active = false;
    bool m_shown = false;
    bool m_closed = false;
    std::mutex m_mutex;
};

// "1,200 of 6,000 records, 180 KiB of 900 KiB, 350 KiB/s, about 3 s left":
// a transfer's progress after `elapsed`; rate and time left once they mean
// something (some bytes done, some time passed).
std::string transferText(std::uint64_t recordsDone, std::uint64_t recordsTotal, std::uint64_t bytesDone,
                         std::uint64_t bytesTotal, std::chrono::milliseconds elapsed);
// "512 B", "180 KiB", "3.4 MiB".
std::string formatBytes(std::uint64_t bytes);
// "1,200".
std::string formatCount(std::uint64_t n);
// "about 3 s left", "about 2 min left".
std::string timeLeftText(double seconds);

} // namespace ferryctl
