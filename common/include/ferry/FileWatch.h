#pragma once
// Changes to a few files, through inotify on their directories (editors and
// writeFileAtomic replace a file by renaming, which a watch on the file
// itself would miss). fwcheckd re-checks when a checked file changes, with
// the fd on its event loop; pushd waits for fwcheckd's verdict file with
// waitForChange. Only events that name a watched file (or any entry of a
// watched directory) count.

#include <chrono>
#include <map>
#include <set>
#include <string>
#include <vector>

namespace ferry {

class FileWatch {
public:
    // A path ending in '/' is a directory whose every entry matters. A
    // directory that does not exist is skipped (debug line). Throws
    // ferry::Error when inotify itself is unavailable.
    explicit FileWatch(const std::vector<std::string>& paths);
    ~FileWatch();
    FileWatch(const FileWatch&) = delete;
    FileWatch& operator=(const FileWatch&) = delete;

    // Readable when events are pending (for EventLoop::watch). Non-blocking.
    int fd() const { return m_fd; }
    // Reads every pending event; true when one concerned a watched path.
    bool changed();
    // Waits until a watched path changes or timeout passes (false then).
    bool waitForChange(std::chrono::milliseconds timeout);

private:
    int m_fd = -1;
    std::set<std::string> m_names; // "dir/name" pairs we care about, and whole directories ("dir/")
    std::map<int, std::string> m_dirs;
};

} // namespace ferry
