#pragma once
// Where Ferry's files live on a host: configuration, state and runtime
// directories and the files in them. Both roles use it (the master's
// daemons need the state directory too), so it lives in the base layer and
// not in the node's configuration header.

#include <string>

namespace ferry {

struct Paths {
    std::string configDir = "/etc/ferry";
    std::string stateDir = "/var/lib/ferry";
    std::string runtimeDir = "/run/ferry";

    std::string configFile() const { return configDir + "/ferry.yml"; }
    std::string pluginsFile() const { return configDir + "/plugins.yml"; }
    std::string pluginsDir() const { return configDir + "/plugins.d"; }
    std::string secretFile() const { return stateDir + "/secret"; }
    std::string spoolFile() const { return stateDir + "/spool.db"; }
    std::string privateKeyFile() const { return stateDir + "/id_ed25519"; }
    std::string knownHostsFile() const { return stateDir + "/known_hosts"; }
    std::string pushStateFile() const { return stateDir + "/push-state"; }
    // Held while push-state is read, changed and written back.
    std::string pushStateLockFile() const { return stateDir + "/push-state.lock"; }
    // Held for the length of a push cycle: one cycle at a time on a node,
    // whichever ferry-pushd (the timer's or the bus's) runs it.
    std::string pushCycleLockFile() const { return stateDir + "/push-cycle.lock"; }
    // fwcheckd's last result, and the file whose change asks it for a fresh
    // one (ferry-fwcheckd.path starts it; a running fwcheckd watches it).
    std::string fwcheckResultFile() const { return stateDir + "/fwcheck.json"; }
    std::string fwcheckRequestFile() const { return stateDir + "/fwcheck-request"; }
};

// Reads FERRY_CONFIG_DIR, FERRY_STATE_DIR and FERRY_RUNTIME_DIR (tests and
// the demo use them), then systemd's CONFIGURATION_DIRECTORY,
// STATE_DIRECTORY and RUNTIME_DIRECTORY, then falls back to the defaults.
Paths pathsFromEnvironment();

} // namespace ferry
