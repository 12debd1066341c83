#include "ferry/Files.h"

#include <fcntl.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "ferry/Error.h"

namespace ferry {

std::optional<std::string> readFileIfExists(const std::string& path, std::size_t maxBytes)
{
    const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NOCTTY);
    if (fd < 0) {
        if (errno == ENOENT)
            return std::nullopt;
        throwErrno("open " + path);
    }
    std::string out;
    char buf[65536];
    for (;;) {
        const ssize_t n = ::read(fd, buf, sizeof buf);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            const int err = errno;
            ::close(fd);
            throw Error("Failed to read " + path + ": " + errnoMessage(err));
        }
        if (n == 0)
            break;
        out.append(buf, static_cast<std::size_t>(n));
        if (out.size() > maxBytes) {
            ::close(fd);
            throw Error("Failed to read " + path + ": larger than " + std::to_string(maxBytes) + " bytes");
        }
    }
    ::close(fd);
    return out;
}

std::string readFile(const std::string& path, std::size_t maxBytes)
{
    auto content = readFileIfExists(path, maxBytes);
    if (!content)
        throw Error("Failed to read " + path + ": no such file");
    return *content;
}

void writeFileAtomic(const std::string& path, const std::string& content, mode_t mode)
{
    const std::string tmp = path + ".tmp." + std::to_string(::getpid());
    // A fresh file, never whatever a previous run (or another user of the
    // directory) left under that name: no symlink followed, no mode kept.
    ::unlink(tmp.c_str());
    const int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, mode);
    if (fd < 0)
        throwErrno("create " + tmp);
    std::size_t done = 0;
    while (done < content.size()) {
        const ssize_t n = ::write(fd, content.data() + done, content.size() - done);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            const int err = errno;
            ::close(fd);
            ::unlink(tmp.c_str());
            throw Error("Failed to write " + tmp + ": " + errnoMessage(err));
        }
        done += static_cast<std::size_t>(n);
    }
    ::fchmod(fd, mode);
    if (::fsync(fd) != 0 || ::close(fd) != 0) {
        const int err = errno;
        ::unlink(tmp.c_str());
        throw Error("Failed to write " + tmp + ": " + errnoMessage(err));
    }
    if (::rename(tmp.c_str(), path.c_str()) != 0) {
        const int err = errno;
        ::unlink(tmp.c_str());
        throw Error("Failed to rename " + tmp + " to " + path + ": " + errnoMessage(err));
    }
    // The rename itself survives a power loss only once the directory is synced.
    const auto slash = path.rfind('/');
    const std::string dir = slash == std::string::npos ? "." : slash == 0 ? "/" : path.substr(0, slash);
    if (const int dfd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC); dfd >= 0) {
        ::fsync(dfd);
        ::close(dfd);
    }
}

void refuseSameUserInspection()
{
    if (::prctl(PR_SET_DUMPABLE, 0, 0, 0, 0) != 0)
        throw Error(std::string("Failed to make the process non-dumpable: ") + std::strerror(errno));
}

} // namespace ferry
