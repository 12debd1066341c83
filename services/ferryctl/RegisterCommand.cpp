// Placeholder until keyregd lands; replaced by the real command group.
#include <iostream>

#include "Commands.h"

namespace ferryctl {

int registerCommand(const Options&)
{
    std::cerr << "ferryctl register: not available in this build (keyregd is not built yet)\n";
    return 1;
}

} // namespace ferryctl
