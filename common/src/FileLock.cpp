#include "ferry/FileLock.h"

#include <fcntl.h>
#include <sys/file.h>
#include <unistd.h>

#include <cerrno>

#include "ferry/Error.h"

namespace ferry {

FileLock::FileLock(const std::string& path)
{
    m_fd = ::open(path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0600);
    if (m_fd < 0)
        throwErrno("create the lock file " + path);
    while (::flock(m_fd, LOCK_EX) != 0) {
        if (errno != EINTR) {
            const int saved = errno;
            ::close(m_fd);
            errno = saved;
            throwErrno("lock " + path);
        }
    }
}

FileLock::~FileLock()
{
    ::close(m_fd);
}

} // namespace ferry
