#pragma once
// The real SystemReader: reads nftables through libnftables in-process,
// runs iptables-save, sshd -T, ip route and ss, reads files and the
// account database.

#include "SystemReader.h"

namespace fwcheck {

struct HostReaderOptions {
    // Prepended to every command (tests run them inside a namespace with
    // {"ip", "netns", "exec", "<name>"}).
    std::vector<std::string> commandPrefix;
    // The network namespace (a name under /run/netns) whose nftables rules
    // are read in-process; empty: our own. Tests set it with commandPrefix.
    std::string netns;
    // Prepended to the sshd command only (tests give it a private /run).
    std::vector<std::string> sshdPrefix;
    std::string sshdBinary = "/usr/sbin/sshd";
    std::string sshdConfig;  // empty: sshd's own default
    int timeoutMs = 10000;
};

class HostReader : public SystemReader {
public:
    explicit HostReader(HostReaderOptions options) : m_options(std::move(options)) {}

    CommandOutput iptablesSave(const std::string& tool) override;
    CommandOutput nftRuleset() override;
    std::optional<std::map<std::string, NftTableInfo>> nftTables() override;
    CommandOutput nftRulesetOf(const std::vector<std::string>& tables) override;
    CommandOutput nftRulesetText(const std::vector<std::string>& tables) override;
    CommandOutput sshdEffective(const std::string& user, const std::string& host, const std::string& addr) override;
    std::optional<std::string> readFile(const std::string& path) override;
    std::optional<Account> account(const std::string& user) override;
    Route route(const std::string& address) override;
    std::vector<std::string> resolve(const std::string& host) override;
    CommandOutput listeningSockets() override;

private:
    // Programs start with the given ambient capabilities only (none by default).
    CommandOutput run(std::vector<std::string> argv, const std::vector<int>& caps = {});
    std::string netnsPath() const;

    HostReaderOptions m_options;
};

} // namespace fwcheck
