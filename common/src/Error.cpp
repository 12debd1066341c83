#include "ferry/Error.h"

#include <cerrno>
#include <cstring>

namespace ferry {

std::string errnoMessage(int err)
{
    char buf[256];
    // GNU strerror_r returns the message, possibly not in buf.
    return ::strerror_r(err, buf, sizeof buf);
}

void throwErrno(const std::string& what)
{
    const int err = errno;
    throw Error("Failed to " + what + ": " + errnoMessage(err));
}

} // namespace ferry
