#pragma once
// A node as the master sees it, for pull tests: a real /usr/sbin/sshd on a
// loopback port, a real system user whose login shell is the built
// ferry-login, and that user's home as the node's state directory (secret,
// spool). sshd runs in its own mount namespace with a test directory bound
// on /run, so that
//   - /run/sshd exists without touching the host,
//   - /run/systemd/journal/socket is a socket this fixture reads: the
//     shell's journal lines (sd_journal_send, the real protocol) land here,
//   - /run/dbus/system_bus_socket can point at a private test bus.
//
// (tests/support/TestSshd.h did not exist when this was written; this one
// also needs the journal and bus sockets under /run.)

#include <cstdint>
#include <atomic>
#include <map>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include <sys/types.h>

#include "support/TestSupport.h"

namespace pulltest {

struct JournalEntry {
    std::map<std::string, std::string> fields;
    std::string message() const;
};

class NodeSshd {
public:
    struct Options {
        // Bounds sshd and everything it starts (the shell) with prlimit
        // --data, in bytes; 0 = no bound.
        std::uint64_t dataLimit = 0;
        // A private bus the shell should see as the system bus.
        std::string busAddress;
        std::vector<std::string> extraConfig;
        // Appended to the user name, for several nodes in one process.
        std::string userSuffix;
        // An existing key pair to authorize through the shipped template
        // instead of a fresh "restricted" key (one master key, many nodes).
        std::string masterKey;
        // Also create a user with /bin/sh as its shell (plain key), for
        // baselines such as `ssh node cat FILE`.
        bool shellUser = false;
        // Runs sshd in its own UTS namespace with this host name, which the
        // shell then takes as its node name (when ferry.yml sets none).
        std::string hostName;
    };

    NodeSshd();
    explicit NodeSshd(Options options);
    ~NodeSshd();
    NodeSshd(const NodeSshd&) = delete;
    NodeSshd& operator=(const NodeSshd&) = delete;

    const std::string& user() const { return m_user; }
    std::uint16_t port() const { return m_port; }
    std::string home() const { return m_dir / "home"; }
    std::string nodeName() const { return m_nodeName; }
    const std::string& secret() const { return m_secret; }
    std::string spoolPath() const { return home() + "/spool.db"; }

    // Master keys: "plain" has no options in authorized_keys (the shell alone
    // must hold), "restricted" uses the shipped authorized_keys template.
    std::string plainKey() const { return m_dir / "client/plain"; }
    std::string restrictedKey() const { return m_dir / "client/restricted"; }
    std::string knownHosts() const { return m_dir / "client/known_hosts"; }
    // A directory the test user may write to: escape attempts try to create
    // files here; none may appear.
    std::string trapDir() const { return m_dir / "trap"; }
    // The /bin/sh user (Options::shellUser) and its home.
    std::string shellUser() const { return m_user + "s"; }
    std::string shellHome() const { return m_dir / "shellhome"; }

    // `ssh` with this node's pinned host key and the given key; extra
    // options go before the destination, command after it.
    std::vector<std::string> sshArgv(const std::string& key, const std::vector<std::string>& options,
                                     const std::vector<std::string>& command) const;
    std::vector<std::string> sshArgvAs(const std::string& user, const std::string& key,
                                       const std::vector<std::string>& options,
                                       const std::vector<std::string>& command) const;

    // Gives every file in home to the test user (after the test wrote the spool).
    void chownHome() const;
    // Everything the shell logged so far (drains the socket).
    std::vector<JournalEntry> journal();
    std::string sshdLog() const;

private:
    void createUser();
    void removeUser();
    void start();

    Options m_options;
    ferry::test::TempDir m_dir;
    std::string m_user;
    std::uint16_t m_port = 0;
    std::string m_nodeName;
    std::string m_secret;
    // A datagram socket queues only ~10 messages (net.unix.max_dgram_qlen)
    // before senders block, so a thread keeps reading it.
    void readJournal();
    int m_journalFd = -1;
    std::mutex m_journalMutex;
    std::vector<JournalEntry> m_journal;
    std::atomic<bool> m_stopJournal{false};
    std::thread m_journalThread;
    std::optional<ferry::test::Process> m_sshd;
};

// Processes running as user (the shells sshd started for it).
std::vector<pid_t> pidsOfUser(const std::string& user);

// Removes test users left behind by a crashed test (their pid is gone).
void removeStaleTestUsers();

} // namespace pulltest
