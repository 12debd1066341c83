#include "ferry/PeriodFloorConfig.h"

#include "ferry/Limits.h"
#include "ferry/YamlReader.h"

namespace ferry {

void readPeriodFloorKeys(YamlMap& registry, PeriodFloorDefaults& out)
{
    if (auto v = registry.seconds("min_push_period", 0, kMaxPolicySeconds))
        out.minPushPeriodS = static_cast<std::uint32_t>(*v);
    if (auto v = registry.seconds("min_pull_interval", 0, kMaxPolicySeconds))
        out.minPullIntervalS = static_cast<std::uint32_t>(*v);
}

PeriodFloorDefaults loadPeriodFloorDefaults(const Paths& paths)
{
    PeriodFloorDefaults out;
    auto top = YamlMap::loadFile(paths.configDir + "/registry.yml");
    if (!top)
        return out;
    // The other keys are registryd's: no finish() here.
    if (auto r = top->map("registry"))
        readPeriodFloorKeys(*r, out);
    return out;
}

} // namespace ferry
