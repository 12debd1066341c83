// Placeholder: being written in the foundation work.
#include <iostream>

#include "Commands.h"

namespace ferryctl {

int pushCommand(const Options&)
{
    std::cerr << "ferryctl push: not available yet\n";
    return 1;
}

} // namespace ferryctl
