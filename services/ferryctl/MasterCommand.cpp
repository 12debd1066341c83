// Placeholder: being written in the foundation work.
#include <iostream>

#include "Commands.h"

namespace ferryctl {

int masterCommand(const Options&)
{
    std::cerr << "ferryctl master: not available yet\n";
    return 1;
}

} // namespace ferryctl
