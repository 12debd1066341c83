#pragma once
// keyregd's command line: production defaults, flags for tests.

#include <chrono>
#include <string>

#include "Manager.h"

namespace keyregd {

struct Options {
    ManagerOptions manager;
    std::chrono::milliseconds idleTimeout{30000};
    int verbosity = 0;
    bool help = false;
};

Options parseArgs(int argc, char* argv[]);
std::string usage();

} // namespace keyregd
