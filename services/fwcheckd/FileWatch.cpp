#include "FileWatch.h"

#include <sys/inotify.h>
#include <unistd.h>

#include <cerrno>

#include <spdlog/spdlog.h>

#include "ferry/Error.h"

namespace fwcheck {

FileWatch::FileWatch(ferry::EventLoop& loop, const std::vector<std::string>& paths, std::function<void()> onChange)
    : m_onChange(std::move(onChange))
{
    m_fd = ::inotify_init1(IN_NONBLOCK | IN_CLOEXEC);
    if (m_fd < 0)
        ferry::throwErrno("create an inotify instance");
    constexpr uint32_t kMask = IN_CLOSE_WRITE | IN_MOVED_TO | IN_MOVED_FROM | IN_CREATE | IN_DELETE | IN_ATTRIB;
    for (const auto& p : paths) {
        // A path ending in '/' is a directory whose every entry matters.
        const bool wholeDir = !p.empty() && p.back() == '/';
        const std::string dir = wholeDir ? p.substr(0, p.size() - 1) : p.substr(0, p.rfind('/'));
        const int wd = ::inotify_add_watch(m_fd, dir.c_str(), kMask);
        if (wd < 0) {
            spdlog::debug("Not watching {}: {}", dir, ferry::errnoMessage(errno));
            continue;
        }
        m_dirs[wd] = dir;
        m_names.insert(wholeDir ? dir + "/" : p);
    }
    loop.watch(m_fd, [this] { drain(); });
}

FileWatch::~FileWatch()
{
    if (m_fd >= 0)
        ::close(m_fd);
}

void FileWatch::drain()
{
    alignas(inotify_event) char buf[8192];
    bool relevant = false;
    for (;;) {
        const ssize_t n = ::read(m_fd, buf, sizeof buf);
        if (n <= 0)
            break;
        for (ssize_t off = 0; off < n;) {
            const auto* ev = reinterpret_cast<const inotify_event*>(buf + off);
            auto dir = m_dirs.find(ev->wd);
            if (dir != m_dirs.end()) {
                const std::string name = ev->len > 0 ? std::string(ev->name) : std::string();
                if (m_names.count(dir->second + "/") || m_names.count(dir->second + "/" + name))
                    relevant = true;
            }
            off += static_cast<ssize_t>(sizeof(inotify_event) + ev->len);
        }
    }
    if (relevant)
        m_onChange();
}

} // namespace fwcheck
