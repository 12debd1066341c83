#pragma once
// The puller's settings: /etc/ferry/pulld.yml, parsed once and validated.
// A missing file means the defaults below; an unknown key or a wrong type is
// refused, naming file, line and key.
//
//   concurrency: 8          nodes pulled at once
//   min_interval: 4m        a timer round skips nodes pulled more recently
//   connect_timeout: 10s
//   io_timeout: 30s
//   user: ferry             the restricted user on the nodes
//   key: /var/lib/ferry/pull_id_ed25519        (created when missing)
//   known_hosts: /var/lib/ferry/pull_known_hosts  pinned node host keys

#include <chrono>
#include <string>

#include "ferry/Paths.h"

namespace pulld {

struct PulldConfig {
    unsigned concurrency = 8;
    std::chrono::seconds minInterval{240};
    std::chrono::seconds connectTimeout{10};
    std::chrono::seconds ioTimeout{30};
    std::string user = "ferry";
    std::string keyFile;         // default <state>/pull_id_ed25519
    std::string knownHostsFile;  // default <state>/pull_known_hosts
};

PulldConfig loadPulldConfig(const ferry::Paths& paths);
PulldConfig parsePulldConfig(const ferry::Paths& paths, const std::string& name, const std::string& text);

} // namespace pulld
