#pragma once
// The master's default period floor, from /etc/ferry/registry.yml:
//
//   registry:
//     min_push_period: 4m      # nodes push at most this often (0: no floor)
//     min_pull_interval: 0
//
// registryd reads the whole file (and refuses its faults); it sends the
// floor in registration answers. collectord reads these two keys alone, to
// carry the floor in every push session and to tell an early node when to
// come back (ferry/Session.h). A per-node floor (node_policy, `ferryctl
// master set-policy`) overrides both.

#include <cstdint>

#include "ferry/Paths.h"

namespace ferry {

class YamlMap;

struct PeriodFloorDefaults {
    std::uint32_t minPushPeriodS = 0;
    std::uint32_t minPullIntervalS = 0;
};

// Reads min_push_period and min_pull_interval of registry.yml's `registry:`
// map into out (absent keys leave it as it is; bad values throw ConfigError
// naming file, line and key).
void readPeriodFloorKeys(YamlMap& registry, PeriodFloorDefaults& out);

// <config dir>/registry.yml's floor; a missing file or section: no floor.
PeriodFloorDefaults loadPeriodFloorDefaults(const Paths& paths);

} // namespace ferry
