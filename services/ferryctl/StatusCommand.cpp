// Placeholder: being written in the foundation work.
#include <iostream>

#include "Commands.h"

namespace ferryctl {

int statusCommand(const Options&)
{
    std::cerr << "ferryctl status: not available yet\n";
    return 1;
}

} // namespace ferryctl
