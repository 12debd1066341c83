// Placeholder until keyregd lands; replaced by the real command group.
#include <iostream>

#include "Commands.h"

namespace ferryctl {

int secretCommand(const Options&)
{
    std::cerr << "ferryctl secret: not available in this build (keyregd is not built yet)\n";
    return 1;
}

} // namespace ferryctl
