#pragma once
// Re-check while running when a checked file changes: the path units start
// the daemon when it is not running, but a start request for a running
// service is a no-op, so the daemon watches the same files itself (through
// their directories, since editors replace files by renaming).

#include <functional>
#include <map>
#include <set>
#include <string>
#include <vector>

#include "ferry/Bus.h"

namespace fwcheck {

class FileWatch {
public:
    // Throws ferry::Error when inotify is unavailable.
    FileWatch(ferry::EventLoop& loop, const std::vector<std::string>& paths, std::function<void()> onChange);
    ~FileWatch();
    FileWatch(const FileWatch&) = delete;
    FileWatch& operator=(const FileWatch&) = delete;

private:
    void drain();

    int m_fd = -1;
    std::set<std::string> m_names;  // "dir/name" pairs we care about, and whole directories
    std::map<int, std::string> m_dirs;
    std::function<void()> m_onChange;
};

} // namespace fwcheck
