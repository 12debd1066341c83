#include "Capabilities.h"

#include <sys/syscall.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>

#include "ferry/Error.h"

namespace fwcheck {

void keepEffectiveCapabilities(const CapabilityList& keep)
{
    if (::geteuid() == 0)
        return;
    __user_cap_header_struct header{_LINUX_CAPABILITY_VERSION_3, 0};
    __user_cap_data_struct data[_LINUX_CAPABILITY_U32S_3] = {};
    if (::syscall(SYS_capget, &header, data) != 0)
        throw ferry::Error("Failed to read our capabilities: " + ferry::errnoMessage(errno));
    for (int word = 0; word < _LINUX_CAPABILITY_U32S_3; ++word) {
        std::uint32_t mask = 0;
        for (int cap : keep)
            if (cap / 32 == word)
                mask |= 1u << (cap % 32);
        data[word].effective &= mask;
    }
    if (::syscall(SYS_capset, &header, data) != 0)
        throw ferry::Error("Failed to lower our effective capabilities: " + ferry::errnoMessage(errno));
}

} // namespace fwcheck
