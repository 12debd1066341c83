#pragma once
// The edges fwcheckd reads the system through. The real one runs the
// tools; tests substitute one edge (say, the account database) while the
// rest stays real, or feed captured text to the tracers directly.

#include <map>
#include <optional>
#include <string>
#include <vector>

namespace fwcheck {

struct CommandOutput {
    bool ran = false;      // false: the program is missing or could not start
    int exitCode = -1;     // -1 when killed or timed out
    std::string out;
    std::string err;
    std::string describe() const;  // "exit 2: <first line of stderr>"
};

struct Account {
    std::string name;
    std::string shell;
    std::vector<std::string> groups;  // primary first
    std::string home;
};

// One nftables table in the inventory.
struct NftTableInfo {
    bool xt = false;  // some rule uses an xt match or target (iptables-nft's compat expressions)
};

struct Route {
    std::string interface;  // empty when there is no route
    std::string source;     // the node's address on that route
};

class SystemReader {
public:
    virtual ~SystemReader() = default;
    // tool: "iptables-legacy-save", "ip6tables-legacy-save", "iptables-nft-save", "ip6tables-nft-save".
    // Firewall::load runs several at once, each on its own thread: an
    // implementation must allow that.
    virtual CommandOutput iptablesSave(const std::string& tool) = 0;
    // `nft -j list ruleset`.
    virtual CommandOutput nftRuleset() = 0;
    // Every nftables table ("family name") and whether its rules hold xt
    // expressions, without decoding the rules; nullopt when this reader
    // cannot tell (then nftRuleset() is read whole).
    virtual std::optional<std::map<std::string, NftTableInfo>> nftTables() { return std::nullopt; }
    // `nft -j list table …` for these tables ("family name") only, as one document.
    virtual CommandOutput nftRulesetOf(const std::vector<std::string>& tables)
    {
        (void)tables;
        return nftRuleset();
    }
    // These tables (all when empty) as nft's text: nft 1.0.6 leaves ingress
    // devices out of its JSON.
    virtual CommandOutput nftRulesetText(const std::vector<std::string>& tables)
    {
        (void)tables;
        return {};
    }
    // `sshd -T -C user=…,host=…,addr=…` (plus -f when a config path is set).
    virtual CommandOutput sshdEffective(const std::string& user, const std::string& host, const std::string& addr) = 0;
    // Whole file; nullopt when missing. Throws ferry::Error when unreadable.
    virtual std::optional<std::string> readFile(const std::string& path) = 0;
    virtual std::optional<Account> account(const std::string& user) = 0;
    virtual Route route(const std::string& address) = 0;
    // Addresses of the master's host name (the address itself if it is one).
    virtual std::vector<std::string> resolve(const std::string& host) = 0;
    // Local TCP ports with a listening socket, and the addresses they bind.
    virtual CommandOutput listeningSockets() = 0;
};

// Runs argv with stdin from /dev/null, capturing output, killing it after
// timeoutMs. Never throws for the program's own failure. ambientCaps, when
// given, is the whole ambient capability set the program starts with (see
// Capabilities.h); a capability we do not hold is left out.
CommandOutput runCommand(const std::vector<std::string>& argv, int timeoutMs,
                         const std::optional<std::vector<int>>& ambientCaps = std::nullopt);

} // namespace fwcheck
