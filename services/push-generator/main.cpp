// ferry-push-generator: a systemd generator (installed in
// /usr/lib/systemd/system-generators). At every boot and daemon-reload it
// reads `sender: period:` from /etc/ferry/plugins.yml and writes a drop-in
// for ferry-push.timer, so the period reaches systemd the systemd way and no
// daemon sleeps in a loop. A bad plugins.yml keeps the shipped period and
// says why (generators log to the kernel log / journal through stderr).
//
// The master's period floor (issue 15) arrives in keyregd's signed
// registration answers; keyregd stores the strictest one in
// /var/lib/ferry/period-floor. A configured period below it is raised to
// it, with one line saying why. The file is read when /var is mounted at
// generator time (it is, unless /var is a separate file system; then the
// floor applies from the next daemon-reload, which ferry-push-policy.path
// triggers when keyregd writes the file).

#include <cstdio>
#include <cstdlib>
#include <cstdint>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include "ferry/DaemonArgs.h"
#include "ferry/Files.h"
#include "ferry/NodeConfig.h"
#include "ferry/RegistryProtocol.h"

namespace {

// The first push after boot waits 30 s plus a phase in [0, period) that is
// fixed per machine (FNV-1a of /etc/machine-id): a fleet rebooted at once
// (a hypervisor restart, a data-centre power event) then reaches the master
// spread evenly over one period instead of in one burst, and since
// OnUnitActiveSec= counts from each run the spread lasts. A per-machine
// value, unlike RandomizedDelaySec=, does not stretch every period.
// No machine id (a container without one): no phase, the unit's 30 s.
std::uint64_t pushPhaseSeconds(const std::string& machineIdFile, std::uint64_t period)
{
    std::ifstream in(machineIdFile);
    std::string id;
    if (!std::getline(in, id) || id.empty() || period == 0)
        return 0;
    std::uint64_t hash = 1469598103934665603ull;
    for (unsigned char c : id + "/ferry-push") {
        hash ^= c;
        hash *= 1099511628211ull;
    }
    return hash % period;
}

} // namespace

int main(int argc, char* argv[])
{
    // systemd passes normal-dir, early-dir, late-dir; only normal-dir is used.
    std::string normalDir;
    try {
        ferry::ArgParser("ferry-push-generator",
                         "writes ferry-push.timer's period from plugins.yml (a systemd generator)")
            .operands("NORMAL-DIR [EARLY-DIR LATE-DIR]", 1, 3,
                      [&](const std::vector<std::string>& dirs) {
                          if (dirs.size() == 2)
                              throw ferry::UsageError("expected 1 or 3 directory arguments, got 2");
                          normalDir = dirs[0];
                      })
            .parse(argc, argv);
    } catch (const std::exception& e) {
        std::fprintf(stderr, "ferry-push-generator: %s\n", e.what());
        return EXIT_FAILURE;
    }
    ferry::Paths paths;
    if (const char* dir = std::getenv("FERRY_CONFIG_DIR"))
        paths.configDir = dir;
    ferry::PluginsConfig plugins;
    try {
        plugins = ferry::loadPluginsConfig(paths);
    } catch (const std::exception& e) {
        std::fprintf(stderr, "ferry-push-generator: keeping the default push period: %s\n", e.what());
        return EXIT_SUCCESS;
    }
    std::string stateDir = "/var/lib/ferry";
    if (const char* dir = std::getenv("FERRY_STATE_DIR"))
        stateDir = dir;
    long long seconds = plugins.period.count();
    std::string why = paths.pluginsFile() + " (sender: period:)";
    const std::string floorFile = ferry::periodFloorFile(stateDir);
    try {
        if (const auto text = ferry::readFileIfExists(floorFile, 4096)) {
            const auto floor = ferry::parsePeriodFloor(floorFile, *text);
            if (floor.minPushPeriodS > seconds) {
                std::fprintf(stderr,
                             "ferry-push-generator: pushing every %u s, not the configured %lld s: master %s "
                             "allows a push at most every %u s (%s)\n",
                             floor.minPushPeriodS, seconds, floor.master.c_str(), floor.minPushPeriodS,
                             floorFile.c_str());
                why = paths.pluginsFile() + " (sender: period: " + std::to_string(seconds) +
                      " s), raised to the floor of master " + floor.master + " (" + floorFile + ")";
                seconds = floor.minPushPeriodS;
            }
        }
    } catch (const std::exception& e) {
        std::fprintf(stderr, "ferry-push-generator: ignoring the master's period floor: %s\n", e.what());
    }
    try {
        const std::string dropInDir = normalDir + "/ferry-push.timer.d";
        std::filesystem::create_directories(dropInDir);
        const auto periodSeconds = static_cast<std::uint64_t>(seconds);
        const auto period = std::to_string(periodSeconds);
        const char* machineId = std::getenv("FERRY_MACHINE_ID_FILE");
        const std::uint64_t phase = pushPhaseSeconds(machineId ? machineId : "/etc/machine-id", periodSeconds);
        ferry::writeFileAtomic(dropInDir + "/50-period.conf",
                               "# Generated by ferry-push-generator from " + why + "\n"
                                   // An empty assignment resets every monotonic trigger of
                                   // the timer, OnActiveSec= included: restate it.
                                   "# The first push waits 30 s plus this machine's phase (" +
                                   std::to_string(phase) + " s of the period) so a fleet spreads.\n"
                                   "[Timer]\nOnUnitActiveSec=\nOnActiveSec=" + std::to_string(30 + phase) +
                                   "s\nOnUnitActiveSec=" + period + "s\n",
                               0644);
    } catch (const std::exception& e) {
        std::fprintf(stderr, "ferry-push-generator: %s\n", e.what());
        return EXIT_FAILURE;
    }
    return EXIT_SUCCESS;
}
