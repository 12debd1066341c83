#pragma once
// For programs sshd starts for a login (the pull shell, the tunnel relay):
// like git-shell, make sure fds 0-2 are open before anything else, so that
// no file or socket opened later becomes "stdout" by accident. Header-only
// and libc-only, for programs that link nothing of ours.

#include <fcntl.h>

#include <cerrno>
#include <cstdlib>

namespace ferry {

inline void ensureStandardFds()
{
    for (int fd = 0; fd <= 2; ++fd) {
        if (::fcntl(fd, F_GETFD) == -1 && errno == EBADF) {
            const int opened = ::open("/dev/null", O_RDWR);
            if (opened != fd)
                std::_Exit(1);
        }
    }
}

} // namespace ferry
