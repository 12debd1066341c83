// Placeholder until vpn-forwarderd lands; replaced by the real command group.
#include <iostream>

#include "Commands.h"

namespace ferryctl {

int vpnCommand(const Options&)
{
    std::cerr << "ferryctl vpn: not available in this build (vpn-forwarderd is not built yet)\n";
    return 1;
}

} // namespace ferryctl
