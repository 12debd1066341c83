#pragma once
// A real OpenSSH sshd for tests: /usr/sbin/sshd on 127.0.0.1:<free port>,
// its own host key and config in a temporary directory, started inside
// `unshare --mount` with a private tmpfs on /run (sshd 9.2 insists on
// /run/sshd) so the host is not touched. Needs root.

#include <optional>
#include <string>
#include <vector>

#include "support/TestSupport.h"

namespace ferry::test {

struct SshdOptions {
    // Extra lines for the global section (before any Match block).
    std::vector<std::string> globalLines;
    // Appended last (Match blocks), e.g. the shipped drop-in's text.
    // "@DIR@" is replaced by the sshd's own directory.
    std::string tail;
};

class TestSshd {
public:
    explicit TestSshd(SshdOptions options = {});
    ~TestSshd();

    int port() const { return m_port; }
    // The listening sshd's pid (0 when stopped): it reaps every connection's
    // processes, so its children's CPU time is sshd's whole work.
    int pid() const { return m_process ? m_process->pid() : 0; }
    const std::string& dir() const { return m_dir.path(); }
    // "[127.0.0.1]:port ssh-ed25519 AAAA…" for a pinned known_hosts file.
    std::string knownHostsLine() const;
    // The host key's public line ("ssh-ed25519 AAAA…").
    std::string hostKeyLine() const;
    // A directory holding its public host key as ssh_host_ed25519_key.pub
    // (collectord --sshd-host-keys: the session binding's check).
    std::string hostKeyDir() const { return m_dir / "hostkeys"; }
    // The per-user authorized_keys file (AuthorizedKeysFile %h is not used).
    std::string authorizedKeysFile(const std::string& user) const { return m_dir / ("authorized_keys." + user); }
    std::string log() const { return readFile(m_dir / "sshd.log"); }

    // Stops and starts again on the same port (e.g. for "master returns").
    void stop();
    void start();

private:
    void writeConfig();

    TempDir m_dir;
    SshdOptions m_options;
    int m_port = 0;
    std::optional<Process> m_process;
};

// A copy of a program where sshd accepts it as an AuthorizedKeysCommand:
// sshd refuses a command if any directory above it is group- or
// world-writable (as /tmp is), wherever the build tree happens to live.
// The copy lives under /var/lib/ferry-tests/ (root-owned, 0755), removed
// with this object.
class RootOwnedCopy {
public:
    explicit RootOwnedCopy(const std::string& program);
    ~RootOwnedCopy();
    const std::string& path() const { return m_path; }

private:
    std::string m_dir;
    std::string m_path;
};

// Makes sure a system user exists for tests (created if absent, with a
// shadow entry of '*' so that key login works with UsePAM no).
void ensureUser(const std::string& name, const std::string& shell);

// Makes sure a system group exists for tests.
void ensureGroup(const std::string& name);

// The directories a master keeps beside its state directory, as packaging
// makes them for /var/lib/ferry (MasterStore.h, AuthorizedKeysView.h):
// stateDir-keys (node-keys.db) and stateDir-authkeys (the helper's view,
// ferry:ferry-authkeys 2750, so the AuthorizedKeysCommandUser of the shipped
// drop-in reads it). The keys directory belongs to owner here, so that
// daemons run as owner without supplementary groups reach it; packaging
// makes it root:ferry-keys 2770 (tests/security/NodeKeysTest checks that).
// Ensures the users and groups. Needs root.
void prepareMasterSideDirs(const std::string& stateDir, const std::string& owner = "ferry");

// The shipped master drop-in. With keysFile, its AuthorizedKeysCommand lines
// become an AuthorizedKeysFile in the test sshd's directory; otherwise the
// helper path is replaced by helperPath. Its relay (ForceCommand) is the
// built ferry-tunnel-relay (tunnelRelayPath()); with relaySocket, sshd
// points it at that collector socket (SetEnv FERRY_RELAY_SOCKET).
std::string shippedMasterDropIn(bool keysFile, const std::string& helperPath = {}, const std::string& relaySocket = {});

// The master's tunnel user as the master package makes it: ferry-tunnel,
// with the built relay as its login shell (at tunnelRelayPath(), a copy
// that stays, since tests running at once share the user).
void ensureTunnelUser();
std::string tunnelRelayPath();

// The authorized_keys line the key lookup prints for a node's key.
std::string tunnelKeyLine(const std::string& publicKeyLine);

// A root-owned 0755 directory under /var/lib/ferry-tests that every user can
// traverse (a relay socket's directory, a state directory laid out as
// /var/lib/ferry is), removed with its contents.
class SharedDir {
public:
    explicit SharedDir(const std::string& prefix);
    ~SharedDir();
    SharedDir(const SharedDir&) = delete;
    SharedDir& operator=(const SharedDir&) = delete;
    const std::string& path() const { return m_path; }
    std::string operator/(const std::string& leaf) const { return m_path + "/" + leaf; }

private:
    std::string m_path;
};

} // namespace ferry::test
