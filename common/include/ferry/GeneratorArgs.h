#pragma once
// What Ferry's systemd generators (ferry-push-generator,
// ferry-master-generator) share of their command line.

#include <string>

namespace ferry {

// A systemd generator's arguments (normal-dir [early-dir late-dir], as
// systemd passes them): the normal directory, the only one Ferry's
// generators write. --help and --version as every tool; UsageError otherwise.
std::string parseGeneratorArgs(const std::string& name, const std::string& summary, int argc, char* argv[]);

} // namespace ferry
