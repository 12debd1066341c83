#pragma once
// keyregd's command line: production defaults, flags for tests.

#include <chrono>
#include <string>

#include "Manager.h"

namespace keyregd {

struct Options {
    ManagerOptions manager;
    std::chrono::milliseconds idleTimeout{30000};
    // Register at start (ferry-keyreg-boot.service asks over the bus
    // instead); without it a start by bus activation (a property read,
    // `ferryctl status`) registers nothing.
    bool registerAtStart = false;
    int verbosity = 0;
    bool help = false;
};

Options parseArgs(int argc, char* argv[]);
std::string usage();

} // namespace keyregd
