#pragma once
// registryd's settings: production defaults, /etc/ferry/registry.yml for the
// operator, and flags (tests run unprivileged on a loopback port with them).

#include <chrono>
#include <string>
#include <vector>

#include "Manager.h"
#include "RegistryServer.h"

namespace registryd {

struct Options {
    std::string listen = "0.0.0.0:50010";  // used only without systemd's sockets
    std::string stateDir;                  // default: FERRY_STATE_DIR, STATE_DIRECTORY, /var/lib/ferry
    std::vector<std::string> hostKeyFiles; // default: /etc/ssh/ssh_host_{ed25519,ecdsa,rsa}_key.pub that exist
    // Idle exit makes sense only when systemd holds the socket and can start
    // us again: without socket activation the default is to stay.
    std::chrono::milliseconds idleTimeout{30000};
    bool idleTimeoutGiven = false;
    ServerOptions server;
    ManagerOptions manager;  // hostKeys filled from hostKeyFiles by loadHostKeys
    int verbosity = 0;
    bool help = false;
    // --sync-krl: bring the KRL up to date with the store once and exit
    // (ferry-krl-sync.service, while registryd is not running).
    bool syncKrl = false;
};

// Defaults, then <config dir>/registry.yml (if it exists), then the flags.
Options parseArgs(int argc, char* argv[]);
// Applies a registry.yml text to o (unknown keys and bad values refused,
// naming file, line and key).
void applyConfig(const std::string& name, const std::string& text, Options& o);
std::string usage();
// Reads the host key files; throws naming the file when one is unusable or
// when there is none at all.
std::vector<std::string> loadHostKeys(const std::vector<std::string>& files);

} // namespace registryd
