#include "ferry/FileWatch.h"

#include <poll.h>
#include <sys/inotify.h>
#include <unistd.h>

#include <cerrno>

#include <spdlog/spdlog.h>

#include "ferry/Error.h"

namespace ferry {

FileWatch::FileWatch(const std::vector<std::string>& paths)
{
    m_fd = ::inotify_init1(IN_NONBLOCK | IN_CLOEXEC);
    if (m_fd < 0)
        throwErrno("create an inotify instance");
    constexpr uint32_t kMask = IN_CLOSE_WRITE | IN_MOVED_TO | IN_MOVED_FROM | IN_CREATE | IN_DELETE | IN_ATTRIB;
    for (const auto& p : paths) {
        const bool wholeDir = !p.empty() && p.back() == '/';
        const auto slash = p.rfind('/');
        const std::string dir =
            wholeDir ? p.substr(0, p.size() - 1) : (slash == std::string::npos ? "." : p.substr(0, slash));
        const int wd = ::inotify_add_watch(m_fd, dir.c_str(), kMask);
        if (wd < 0) {
            spdlog::debug("Not watching {}: {}", dir, errnoMessage(errno));
            continue;
        }
        m_dirs[wd] = dir;
        m_names.insert(wholeDir ? dir + "/" : dir + "/" + p.substr(slash == std::string::npos ? 0 : slash + 1));
    }
}

FileWatch::~FileWatch()
{
    if (m_fd >= 0)
        ::close(m_fd);
}

bool FileWatch::changed()
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
    return relevant;
}

bool FileWatch::waitForChange(std::chrono::milliseconds timeout)
{
    const auto deadline = std::chrono::steady_clock::now() + timeout;
    for (;;) {
        if (changed())
            return true;
        const auto left =
            std::chrono::ceil<std::chrono::milliseconds>(deadline - std::chrono::steady_clock::now()).count();
        if (left <= 0)
            return false;
        pollfd p{m_fd, POLLIN, 0};
        const int r = ::poll(&p, 1, static_cast<int>(left));
        if (r < 0 && errno != EINTR)
            throwErrno("wait for a change of a watched file");
    }
}

} // namespace ferry
