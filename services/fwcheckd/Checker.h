#pragma once
// One complete check: for each configured master address, the firewall,
// the effective sshd configuration and hosts_access, into a Report.

#include <string>

#include "Finding.h"
#include "Firewall.h"
#include "SystemReader.h"
#include "ferry/NodeConfig.h"

namespace fwcheck {

struct CheckSettings {
    std::vector<ferry::MasterAddress> masters;
    std::string sshAddress = "0.0.0.0";  // ferry.yml node.ssh_address
    std::uint16_t sshPort = 22;          // ferry.yml node.ssh_port
    std::string pullUser = "ferry";
    std::string pullShell = "/usr/sbin/ferry-login";
    std::string sshdBinary = "/usr/sbin/sshd";
    std::string sshdConfigPath = "/etc/ssh/sshd_config";  // for fix texts
    std::string hostsAllow = "/etc/hosts.allow";
    std::string hostsDeny = "/etc/hosts.deny";
    bool checkSshd = true;
    bool checkHostsAccess = true;
    bool checkListening = true;

    static CheckSettings fromNodeConfig(const ferry::NodeConfig& c);
};

class Checker {
public:
    Checker(SystemReader& reader, CheckSettings settings) : m_reader(reader), m_settings(std::move(settings)) {}
    Report run();

private:
    SystemReader& m_reader;
    CheckSettings m_settings;
};

// "reachable" / "blocked" / "undecided" from a set of findings.
std::string summarize(const std::vector<Finding>& findings);

} // namespace fwcheck
