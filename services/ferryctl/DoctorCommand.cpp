// Placeholder until fwcheckd lands; replaced by the real command group.
#include <iostream>

#include "Commands.h"

namespace ferryctl {

int doctorCommand(const Options&)
{
    std::cerr << "ferryctl doctor: not available in this build (fwcheckd is not built yet)\n";
    return 1;
}

} // namespace ferryctl
