#pragma once
// ferryctl: one CLI over all of Ferry's D-Bus APIs. Each command group lives
// in its own file (StatusCommand.cpp, DoctorCommand.cpp, VpnCommand.cpp, …);
// main.cpp only dispatches.

#include <memory>
#include <string>
#include <vector>

#include "ferry/Paths.h"
#include "ferry/SqlConnection.h"

namespace ferryctl {

struct Options {
    bool json = false;
    std::vector<std::string> args;  // after the command word
};

// Each returns the process exit code: 0 success, 1 failure, 2 usage error.
int statusCommand(const Options& options);    // ferryctl status
int pushCommand(const Options& options);      // ferryctl push
int masterCommand(const Options& options);    // ferryctl master nodes|add-node|accept|decline|revoke
int registerCommand(const Options& options);  // ferryctl register
int secretCommand(const Options& options);    // ferryctl secret
int doctorCommand(const Options& options);    // ferryctl doctor
int vpnCommand(const Options& options);       // ferryctl vpn status|lan on|off|host-control on|off
int nodeCommand(const Options& options);      // ferryctl node trust-master
// ferryctl master show NODE (MasterShowCommand.cpp)
int masterShowCommand(const Options& options, const std::string& node);
int migrateCommand(const Options& options);    // ferryctl master migrate [--to CONNINFO]
int grantReadersCommand(const Options& options); // ferryctl master grant-readers ROLE [--to CONNINFO]
int masterPullCommand(const Options& options);   // ferryctl master pull NODE|--all (MasterPullCommand.cpp)

// The master's store for the master commands: the PostgreSQL database
// /etc/ferry/store.yml names, else master.db in the state directory (root
// becomes the directory's owner first, MasterCommand.cpp says why).
// `where` receives the store's name for messages.
std::unique_ptr<ferry::SqlConnection> openMasterTables(const ferry::Paths& paths, std::string* where = nullptr);

} // namespace ferryctl
