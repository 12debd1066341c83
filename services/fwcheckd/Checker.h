#pragma once
// One complete check: for each configured master address, the firewall,
// the effective sshd configuration and hosts_access, into a Report. Each
// check is its own function; run() only reads the host once and walks the
// master addresses.

#include <optional>
#include <string>

#include "Finding.h"
#include "Firewall.h"
#include "HostsAccess.h"
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
    // What is read once per check and shared by every master address.
    struct HostFacts {
        std::optional<Account> account;
        std::optional<HostsAccess> hosts;
        std::optional<CommandOutput> sockets;
    };
    // One master address being checked: its findings and its summary line.
    struct Target {
        std::string host;  // as configured
        std::string addressText;
        Address source;            // the master
        std::optional<Address> destination;  // the node address it connects to
        std::string destinationText;
        std::string interface;
        bool byName = false;
        std::vector<Finding> findings;
        MasterResult result;
    };

    void checkMastersConfigured(std::vector<Finding>& out) const;
    std::optional<Account> checkAccount(std::vector<Finding>& out);
    std::optional<HostsAccess> readHostsAccess(std::vector<Finding>& out);
    void checkMaster(const ferry::MasterAddress& master, const Firewall& firewall, const HostFacts& facts,
                     Report& report);

    // Per master address.
    void findRoute(Target& t);
    void checkFirewall(const Firewall& firewall, Target& t) const;
    void checkNeighbourDiscovery(const Firewall& firewall, const Packet& p, FirewallVerdict& v, Target& t) const;
    void checkListening(const CommandOutput& sockets, Target& t) const;
    void checkSshd(const HostFacts& facts, Target& t);
    void checkPullConfinement(const std::map<std::string, std::vector<std::string>>& effective,
                              const std::optional<Account>& account, Target& t);
    void checkHostsAccess(const HostsAccess& hosts, Target& t) const;

    SystemReader& m_reader;
    CheckSettings m_settings;
};

// "reachable" / "blocked" / "undecided" from a set of findings.
std::string summarize(const std::vector<Finding>& findings);

} // namespace fwcheck
