// Issue 12 item 2 (master side) and issue 10's from_address: nodes push as
// ferry-tunnel, a user that owns no files, and sshd runs only
// ferry-tunnel-relay for it, which tells collectord (over its relay socket)
// the address the node connected from. Real sshd on a loopback port with
// the shipped drop-in, real collectord, real pushd, OpenSSH's own clients as
// the attacker. The master's state directory is laid out as the packages
// lay out /var/lib/ferry (0750 ferry:ferry, master.db and the pull key 0600).

#include <fcntl.h>
#include <poll.h>
#include <pwd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstring>
#include <filesystem>
#include <optional>
#include <sstream>
#include <thread>

#include <gtest/gtest.h>

#include "PushCycle.h"
#include "ferry/Crypto.h"
#include "ferry/MasterStore.h"
#include "ferry/Spool.h"
#include "ferry/SshKeys.h"
#include "support/TestSshd.h"
#include "support/TestSupport.h"

namespace ferry::test {
namespace {

// The master drop-in's tunnel block as it was before the tunnel user
// (units/sshd/ferry-master.conf at 5e1db6b), the collector's port made the
// test's own: the "before" of the attack.
std::string dropInBeforeTheTunnelUser(int collectorPort)
{
    return "Match User ferry\n\tAllowAgentForwarding no\n\tAllowStreamLocalForwarding no\n"
           "\tAllowTcpForwarding local\n\tAuthorizedKeysFile @DIR@/authorized_keys.%u\n\tDisableForwarding no\n"
           "\tForceCommand /usr/sbin/nologin\n\tGatewayPorts no\n\tPasswordAuthentication no\n\tPermitListen none\n"
           "\tPermitOpen 127.0.0.1:" +
           std::to_string(collectorPort) + "\n\tPermitTTY no\n\tPermitTunnel no\n\tX11Forwarding no\n";
}

std::uint32_t uidOf(const std::string& user)
{
    const passwd* pw = ::getpwnam(user.c_str());
    if (pw == nullptr)
        throw std::runtime_error("no user " + user);
    return pw->pw_uid;
}

// The real uid of a process (from /proc/PID/status), nullopt when gone.
std::optional<std::uint32_t> realUidOf(const std::string& pid)
{
    const std::string status = readFile("/proc/" + pid + "/status");
    const auto at = status.find("\nUid:");
    if (at == std::string::npos)
        return std::nullopt;
    return static_cast<std::uint32_t>(std::stoul(status.substr(at + 5)));
}

// pids whose command line (what = "cmdline") or executable (what = "exe")
// starts with prefix.
std::vector<std::string> processesStartingWith(const std::string& prefix, const std::string& what = "cmdline")
{
    std::vector<std::string> pids;
    for (const auto& entry : std::filesystem::directory_iterator("/proc")) {
        const std::string pid = entry.path().filename();
        if (pid.find_first_not_of("0123456789") != std::string::npos)
            continue;
        std::string text;
        try {
            text = what == "exe" ? std::filesystem::read_symlink("/proc/" + pid + "/exe").string()
                                 : readFile("/proc/" + pid + "/cmdline");
        } catch (const std::exception&) {
            continue;
        }
        if (text.rfind(prefix, 0) == 0)
            pids.push_back(pid);
    }
    return pids;
}

// Whether process pid is ancestor or one of its descendants (through
// /proc/PID/stat's parent field): tests of other worktrees and other test
// binaries run sshd sessions of their own on this machine at the same time.
bool descendsFrom(std::string pid, int ancestor)
{
    for (int hops = 0; hops < 64 && !pid.empty() && pid != "0"; ++hops) {
        if (pid == std::to_string(ancestor))
            return true;
        std::string stat;
        try {
            stat = readFile("/proc/" + pid + "/stat");
        } catch (const std::exception&) {
            return false;
        }
        // "PID (comm) STATE PPID ...": comm may hold spaces and parentheses.
        const auto close = stat.rfind(')');
        if (close == std::string::npos)
            return false;
        std::istringstream rest(stat.substr(close + 1));
        std::string state;
        rest >> state >> pid;
    }
    return false;
}

// setpriv's arguments to run as user, with that user's groups or the given ones.
std::vector<std::string> asUser(const std::string& user, const std::vector<std::string>& groups = {})
{
    std::vector<std::string> argv{"setpriv", "--reuid=" + user, "--regid=" + user};
    if (groups.empty()) {
        argv.emplace_back("--init-groups");
    } else {
        std::string list;
        for (const auto& g : groups)
            list += (list.empty() ? "" : ",") + g;
        argv.push_back("--groups=" + list);
    }
    return argv;
}

// What a process running as user can read of path.
RunResult readAs(const std::string& user, const std::string& path)
{
    auto argv = asUser(user);
    argv.insert(argv.end(), {"head", "-c", "64", path});
    return run(argv);
}

class ATunnelLogin : public ::testing::Test {
protected:
    void SetUp() override
    {
        if (!isRoot())
            GTEST_SKIP() << "needs root: sshd in a mount namespace, system users ferry and ferry-tunnel";
        ensureUser("ferry", "/usr/sbin/nologin");
        ensureTunnelUser();
        m_shared = std::make_unique<SharedDir>("tunnel-");
        m_state = *m_shared / "state";
        m_relaySocket = *m_shared / "collector.sock";
        m_nodeState = m_root / "node-state";
        m_nodeConfig = m_root / "node-etc";
        for (const auto& d : {m_state, m_nodeState, m_nodeConfig})
            std::filesystem::create_directories(d);

        // The node: key pair and secret; the master enrols it.
        ensureKeyPair(m_nodeState + "/id_ed25519");
        m_secret = generateSecret();
        writeFile(m_nodeState + "/secret", m_secret + "\n", 0600);
        const auto enrol = run({buildPath("services/ferryctl/ferryctl"), "master", "add-node", "tunnel-node"},
                               {{"FERRY_STATE_DIR", m_state}}, m_secret + "\n");
        ASSERT_EQ(enrol.exitCode, 0) << enrol.err;
        // The pull key, as the master's postinst makes it.
        ASSERT_EQ(run({"ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", m_state + "/pull_id_ed25519"}).exitCode, 0);
        // /var/lib/ferry as the packages leave it.
        ASSERT_EQ(run({"chown", "-R", "ferry:ferry", m_state}).exitCode, 0);
        ::chmod(m_state.c_str(), 0750);
        for (const char* f : {"/master.db", "/pull_id_ed25519"})
            ::chmod((m_state + f).c_str(), 0600);

        SshdOptions so;
        so.tail = shippedMasterDropIn(true, {}, m_relaySocket);
        m_sshd.emplace(so);
        writeFile(m_sshd->authorizedKeysFile("ferry-tunnel"),
                  tunnelKeyLine(publicKeyLine(m_nodeState + "/id_ed25519")) + "\n");
        writeFile(m_nodeState + "/known_hosts", m_sshd->knownHostsLine() + "\n");

        m_bus = std::make_unique<TestBus>();
        m_collectorPort = freePort();
        m_collector.emplace(
            std::vector<std::string>{buildPath("services/collectord/ferry-collectord"), "-v",
                                     "--listen=127.0.0.1:" + std::to_string(m_collectorPort), "--relay-socket",
                                     m_relaySocket, "--sshd-host-keys", m_sshd->hostKeyDir()},
            std::map<std::string, std::string>{{"FERRY_STATE_DIR", m_state}}, m_root / "collectord.log");
        ASSERT_TRUE(waitUntil([&] {
            return collectorLog().find("Accepting") != std::string::npos || !m_collector->running();
        })) << collectorLog();
        ASSERT_TRUE(m_collector->running()) << collectorLog();
    }

    void TearDown() override
    {
        m_collector.reset();
        m_bus.reset();
        m_sshd.reset();
        m_shared.reset();
    }

    std::string collectorLog() const { return readFile(m_root / "collectord.log"); }
    // One push cycle of the spooled records over a stream that reaches
    // collectord some way other than pushd's SSH connection.
    pushd::PushCycleResult pushOver(ByteStream& stream)
    {
        Spool spool(m_nodeState + "/spool.db", {});
        pushd::PushCycleOptions o;
        o.nodeName = "tunnel-node";
        o.secret = m_secret;
        o.masterId = "127.0.0.1";
        return pushd::runPushCycle(stream, spool, o);
    }

    // OpenSSH's client with the node's key: what an attacker holding it runs.
    std::vector<std::string> sshArgs(const TestSshd& sshd, const std::string& user,
                                     const std::vector<std::string>& options,
                                     const std::vector<std::string>& command = {})
    {
        std::vector<std::string> argv{"ssh",
                                      "-F",
                                      "/dev/null",
                                      "-i",
                                      m_nodeState + "/id_ed25519",
                                      "-p",
                                      std::to_string(sshd.port()),
                                      "-o",
                                      "UserKnownHostsFile=" + m_root / "attacker_known_hosts",
                                      "-o",
                                      "StrictHostKeyChecking=no",
                                      "-o",
                                      "BatchMode=yes",
                                      "-o",
                                      "IdentitiesOnly=yes",
                                      "-o",
                                      "ConnectTimeout=5"};
        argv.insert(argv.end(), options.begin(), options.end());
        argv.push_back(user + "@127.0.0.1");
        argv.insert(argv.end(), command.begin(), command.end());
        return argv;
    }
    RunResult ssh(const TestSshd& sshd, const std::string& user, const std::vector<std::string>& options,
                  const std::vector<std::string>& command = {})
    {
        return run(sshArgs(sshd, user, options, command), {}, {}, std::chrono::seconds(30));
    }

    // A master sshd of the previous release, the node's key accepted for
    // user ferry with a forward to this collector's TCP port.
    std::unique_ptr<TestSshd> sshdBeforeTheTunnelUser()
    {
        SshdOptions so;
        so.tail = dropInBeforeTheTunnelUser(m_collectorPort);
        auto sshd = std::make_unique<TestSshd>(so);
        writeFile(sshd->authorizedKeysFile("ferry"),
                  "restrict,port-forwarding,permitopen=\"127.0.0.1:" + std::to_string(m_collectorPort) + "\" " +
                      publicKeyLine(m_nodeState + "/id_ed25519") + "\n");
        return sshd;
    }

    // One push cycle as its timer runs it: ferry-push-once, with no bus.
    RunResult pushdCycle()
    {
        return run({buildPath("services/pushd/ferry-push-once")},
                   {{"FERRY_CONFIG_DIR", m_nodeConfig},
                    {"FERRY_STATE_DIR", m_nodeState},
                    {"DBUS_SYSTEM_BUS_ADDRESS", "unix:path=" + m_root / "no-bus-here"}});
    }

    // ferry.yml of a push node with one master at sshPort, then extra lines.
    void writeNodeConfig(int sshPort, const std::string& extra)
    {
        writeFile(m_nodeConfig + "/ferry.yml",
                  "node:\n  name: tunnel-node\n  mode: push\nmasters:\n  - host: 127.0.0.1\n"
                  "    ssh_port: " +
                      std::to_string(sshPort) + "\n" + extra);
    }

    void spoolRecords(int count)
    {
        Spool spool(m_nodeState + "/spool.db", {});
        std::vector<Record> batch;
        for (int i = 0; i < count; ++i)
            batch.push_back({0, nowMs(), "test", std::string(100, static_cast<char>('a' + i))});
        spool.appendAll(batch);
    }

    TempDir m_root;
    std::unique_ptr<SharedDir> m_shared;
    std::string m_state, m_relaySocket, m_nodeState, m_nodeConfig, m_secret;
    std::optional<TestSshd> m_sshd;
    std::unique_ptr<TestBus> m_bus;
    int m_collectorPort = 0;
    std::optional<Process> m_collector;
};

TEST_F(ATunnelLogin, StoresAPushThroughTheRelayUnderTheNodesRealSourceAddress)
{
    writeNodeConfig(m_sshd->port(),
                    "transport:\n  connect_timeout: 5\n  io_timeout: 10\npush:\n  source_address: 127.0.0.5\n");
    spoolRecords(7);
    const auto r = pushdCycle();
    EXPECT_EQ(r.exitCode, 0) << r.out << r.err << collectorLog();

    MasterStore store(m_state + "/master.db");
    EXPECT_EQ(store.countRecords("tunnel-node"), 7u) << collectorLog() << m_sshd->log();
    const auto epochs = store.epochs("tunnel-node");
    ASSERT_EQ(epochs.size(), 1u);
    // sshd saw the node at 127.0.0.5, and so does the store: not the
    // 127.0.0.1 of a forward inside the master.
    EXPECT_EQ(epochs[0].fromAddress.rfind("127.0.0.5:", 0), 0u) << epochs[0].fromAddress;
    EXPECT_NE(m_sshd->log().find("Accepted publickey for ferry-tunnel from 127.0.0.5"), std::string::npos)
        << m_sshd->log();
    EXPECT_NE(collectorLog().find("Stored 7 records from tunnel-node"), std::string::npos) << collectorLog();
}

TEST_F(ATunnelLogin, TellsTheNodeWhyWhenTheMastersCollectorIsDown)
{
    writeNodeConfig(m_sshd->port(), "transport:\n  connect_timeout: 5\n  io_timeout: 10\n");
    spoolRecords(2);
    m_collector.reset();
    const auto r = pushdCycle();
    EXPECT_NE(r.exitCode, 0);
    // The relay's own line reaches the node's log through the channel's stderr.
    EXPECT_NE((r.out + r.err).find("ferry-tunnel-relay: Failed to connect to the collector"), std::string::npos)
        << r.out << r.err;
    EXPECT_EQ(Spool(m_nodeState + "/spool.db", {}).stats().records, 2u);
}

TEST_F(ATunnelLogin, CanNeitherRunACommandNorForwardNorReadTheMastersSecrets)
{
    const std::string masterDb = m_state + "/master.db", pullKey = m_state + "/pull_id_ed25519";

    // A command, a pty, the sftp subsystem: sshd runs the relay for each.
    const auto cat = ssh(*m_sshd, "ferry-tunnel", {}, {"cat", masterDb, pullKey});
    EXPECT_EQ(cat.out.find("SQLite format 3"), std::string::npos);
    EXPECT_EQ(cat.out.find("PRIVATE KEY"), std::string::npos);
    const auto pty = ssh(*m_sshd, "ferry-tunnel", {"-tt"}, {"id"});
    EXPECT_EQ(pty.out.find("uid="), std::string::npos) << pty.out;
    EXPECT_NE(pty.err.find("PTY allocation request failed"), std::string::npos) << pty.err;
    writeFile(m_root / "sftp-batch", "get " + masterDb + " " + m_root / "stolen.db\n");
    const auto sftp =
        run({"sftp", "-F", "/dev/null", "-i", m_nodeState + "/id_ed25519", "-P", std::to_string(m_sshd->port()), "-o",
             "UserKnownHostsFile=" + m_root / "attacker_known_hosts", "-o", "StrictHostKeyChecking=no", "-o",
             "BatchMode=yes", "-b", m_root / "sftp-batch", "ferry-tunnel@127.0.0.1"},
            {}, {}, std::chrono::seconds(30));
    EXPECT_NE(sftp.exitCode, 0);
    EXPECT_FALSE(std::filesystem::exists(m_root / "stolen.db"));

    // Forwards anywhere, the collector's own TCP port and sshd included.
    for (int port : {m_collectorPort, m_sshd->port()}) {
        const auto w = ssh(*m_sshd, "ferry-tunnel", {"-W", "127.0.0.1:" + std::to_string(port)});
        EXPECT_NE(w.exitCode, 0) << port;
        EXPECT_NE(w.err.find("administratively prohibited"), std::string::npos) << w.err;
    }
    const auto remote = ssh(*m_sshd, "ferry-tunnel", {"-o", "ExitOnForwardFailure=yes", "-N", "-R", "0:127.0.0.1:22"});
    EXPECT_NE(remote.exitCode, 0);
    EXPECT_NE(remote.err.find("remote port forwarding failed"), std::string::npos) << remote.err;

    // What runs for the session is the relay, as ferry-tunnel: a flaw in it
    // (or in sshd's session process) gives an attacker that uid, and that
    // uid opens nothing of the master's.
    const auto argv = sshArgs(*m_sshd, "ferry-tunnel", {});
    std::vector<std::string> shArgv{"/bin/sh", "-c", "sleep 8 | exec \"$@\"", "sh"};
    shArgv.insert(shArgv.end(), argv.begin(), argv.end());
    Process session(shArgv, {}, m_root / "session.log");
    // This test's relays: other tests may run relays of their own meanwhile.
    auto ours = [&] {
        auto all = processesStartingWith(tunnelRelayPath(), "exe");
        std::erase_if(all, [&](const std::string& pid) { return !descendsFrom(pid, m_sshd->pid()); });
        return all;
    };
    std::vector<std::string> relays;
    ASSERT_TRUE(waitUntil([&] { return !(relays = ours()).empty(); }, std::chrono::seconds(15)))
        << readFile(m_root / "session.log") << m_sshd->log();
    for (const auto& pid : relays) {
        if (const auto uid = realUidOf(pid)) {
            EXPECT_EQ(*uid, uidOf("ferry-tunnel")) << "relay " << pid;
        }
    }
    for (const auto& path : {masterDb, pullKey}) {
        const auto r = readAs("ferry-tunnel", path);
        EXPECT_NE(r.exitCode, 0) << path;
        EXPECT_NE(r.err.find("Permission denied"), std::string::npos) << path << ": " << r.err;
    }
    auto ls = asUser("ferry-tunnel");
    ls.insert(ls.end(), {"ls", m_state});
    const auto list = run(ls);
    EXPECT_NE(list.exitCode, 0);
    session.kill();
}

TEST_F(ATunnelLogin, BeforeTheTunnelUserTheSameLoginRanAsFerryWhichReadsMasterDb)
{
    // Today's master (before this change): nodes log in as ferry.
    auto beforeSshd = sshdBeforeTheTunnelUser();
    TestSshd& before = *beforeSshd;
    // The node's forward to the collector, held open.
    const auto argv = sshArgs(before, "ferry", {"-W", "127.0.0.1:" + std::to_string(m_collectorPort)});
    std::vector<std::string> shArgv{"/bin/sh", "-c", "sleep 8 | exec \"$@\"", "sh"};
    shArgv.insert(shArgv.end(), argv.begin(), argv.end());
    Process session(shArgv, {}, m_root / "session.log");
    // sshd's process for the authenticated session ("sshd: ferry", not the
    // root monitor "[priv]" nor the pre-authentication "[net]" child) runs
    // as the login user.
    std::optional<std::uint32_t> sessionUid;
    ASSERT_TRUE(waitUntil(
        [&] {
            for (const auto& pid : processesStartingWith("sshd: ferry")) {
                if (!descendsFrom(pid, before.pid()))
                    continue;
                const std::string title = readFile("/proc/" + pid + "/cmdline");
                if (title.find('[') != std::string::npos || title.rfind("sshd: ferry-tunnel", 0) == 0)
                    continue;
                if (auto uid = realUidOf(pid); uid && *uid != 0)
                    sessionUid = uid;
            }
            return sessionUid.has_value();
        },
        std::chrono::seconds(15)))
        << readFile(m_root / "session.log") << before.log();
    EXPECT_EQ(*sessionUid, uidOf("ferry"));
    // And that uid reads every node's key and the pull key.
    const auto db = readAs("ferry", m_state + "/master.db");
    EXPECT_EQ(db.exitCode, 0) << db.err;
    EXPECT_NE(db.out.find("SQLite format 3"), std::string::npos);
    const auto key = readAs("ferry", m_state + "/pull_id_ed25519");
    EXPECT_NE(key.out.find("PRIVATE KEY"), std::string::npos) << key.err;
    session.kill();
}

TEST_F(ATunnelLogin, StillPushesToAMasterBeforeTheRelayWithChannelForward)
{
    // A master of the previous release: tunnel user ferry, a direct-tcpip
    // forward to its collector's TCP port. The node says so in ferry.yml.
    auto beforeSshd = sshdBeforeTheTunnelUser();
    TestSshd& before = *beforeSshd;
    writeFile(m_nodeState + "/known_hosts", before.knownHostsLine() + "\n");
    // The collector checks the session binding against this sshd's host key.
    m_collector.reset();
    m_collector.emplace(std::vector<std::string>{buildPath("services/collectord/ferry-collectord"), "-v",
                                                 "--listen=127.0.0.1:" + std::to_string(m_collectorPort),
                                                 "--sshd-host-keys", before.hostKeyDir()},
                        std::map<std::string, std::string>{{"FERRY_STATE_DIR", m_state}}, m_root / "collectord2.log");
    ASSERT_TRUE(waitUntil([&] { return readFile(m_root / "collectord2.log").find("Accepting") != std::string::npos; }))
        << readFile(m_root / "collectord2.log");
    writeNodeConfig(before.port(), "push:\n  user: ferry\n  channel: forward\n  collector_port: " +
                                       std::to_string(m_collectorPort) + "\n");
    spoolRecords(4);
    const auto r = pushdCycle();
    EXPECT_EQ(r.exitCode, 0) << r.out << r.err;
    EXPECT_EQ(MasterStore(m_state + "/master.db").countRecords("tunnel-node"), 4u)
        << readFile(m_root / "collectord2.log");
    EXPECT_NE(before.log().find("Accepted publickey for ferry from 127.0.0.1"), std::string::npos) << before.log();
}

TEST_F(ATunnelLogin, TakesTheRelaySocketFromSystemdAndStoresTheAddressTheRelayNames)
{
    // collectord as ferry-collectord.socket starts it: both sockets passed in
    // (systemd-socket-activate speaks sd_listen_fds as PID 1 does).
    m_collector.reset();
    const std::string sock = *m_shared / "activated.sock";
    const int tcpPort = freePort();
    Process activated({"/usr/bin/systemd-socket-activate", "-l", sock, "-l", "127.0.0.1:" + std::to_string(tcpPort),
                       "-E", "FERRY_STATE_DIR=" + m_state, "-E", "DBUS_SYSTEM_BUS_ADDRESS=" + m_bus->address(),
                       buildPath("services/collectord/ferry-collectord"), "-v", "--sshd-host-keys",
                       m_sshd->hostKeyDir()},
                      {}, m_root / "activated.log");
    ASSERT_TRUE(waitUntil([&] { return std::filesystem::exists(sock); })) << readFile(m_root / "activated.log");
    // What SocketGroup=ferry-tunnel and SocketMode=0660 do in the shipped unit.
    ASSERT_EQ(run({"chgrp", "ferry-tunnel", sock}).exitCode, 0);
    ::chmod(sock.c_str(), 0660);

    // The relay as sshd runs it for a node that connected from
    // 192.0.2.44: as ferry-tunnel, its stdin and stdout the node's channel
    // (here a socket pair that the push cycle writes and reads).
    spoolRecords(3);
    int fds[2];
    ASSERT_EQ(::socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, fds), 0);
    auto argv = asUser("ferry-tunnel");
    argv.push_back(tunnelRelayPath());
    const pid_t pid = ::fork();
    if (pid == 0) {
        ::dup2(fds[1], 0);
        ::dup2(fds[1], 1);
        ::setenv("SSH_CONNECTION", "192.0.2.44 5555 127.0.0.1 22", 1);
        ::setenv("FERRY_RELAY_SOCKET", sock.c_str(), 1);
        std::vector<char*> raw;
        for (auto& a : argv)
            raw.push_back(a.data());
        raw.push_back(nullptr);
        ::execvp(raw[0], raw.data());
        ::_exit(127);
    }
    ::close(fds[1]);
    ASSERT_GT(pid, 0);
    {
        FdStream stream(fds[0], fds[0], "the relay", true);
        EXPECT_NO_THROW(pushOver(stream)) << readFile(m_root / "activated.log");
    }
    int status = -1;
    ::waitpid(pid, &status, 0);
    EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0) << status;

    MasterStore store(m_state + "/master.db");
    EXPECT_EQ(store.countRecords("tunnel-node"), 3u) << readFile(m_root / "activated.log");
    const auto epochs = store.epochs("tunnel-node");
    ASSERT_EQ(epochs.size(), 1u);
    EXPECT_EQ(epochs[0].fromAddress, "192.0.2.44:5555");
    EXPECT_NE(readFile(m_root / "activated.log").find("Using 2 listening socket(s) from systemd"), std::string::npos)
        << readFile(m_root / "activated.log");
}

class TheRelaySocket : public ATunnelLogin {
protected:
    // A connection to the relay socket as the tunnel user, the uid
    // collectord believes (the peer's credentials are taken at connect), as
    // its relay is.
    int connectAsTunnelUser()
    {
        const passwd* tunnel = ::getpwnam("ferry-tunnel");
        EXPECT_NE(tunnel, nullptr);
        const int fd = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
        sockaddr_un addr{};
        addr.sun_family = AF_UNIX;
        std::strncpy(addr.sun_path, m_relaySocket.c_str(), sizeof addr.sun_path - 1);
        EXPECT_EQ(::setegid(tunnel->pw_gid), 0) << std::strerror(errno);
        EXPECT_EQ(::seteuid(tunnel->pw_uid), 0) << std::strerror(errno);
        const int rc = ::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr);
        const int err = errno;
        EXPECT_EQ(::seteuid(0), 0);
        EXPECT_EQ(::setegid(0), 0);
        EXPECT_EQ(rc, 0) << std::strerror(err);
        return fd;
    }
    // The header in one message, with fds attached as the relay attaches
    // the channel's ends.
    static void sendWithFds(int sock, const std::string& header, const std::vector<int>& fds)
    {
        iovec iov{const_cast<char*>(header.data()), header.size()};
        std::vector<char> control(CMSG_SPACE(sizeof(int) * std::max<std::size_t>(fds.size(), 1)));
        msghdr msg{};
        msg.msg_iov = &iov;
        msg.msg_iovlen = 1;
        if (!fds.empty()) {
            msg.msg_control = control.data();
            msg.msg_controllen = CMSG_SPACE(sizeof(int) * fds.size());
            cmsghdr* c = CMSG_FIRSTHDR(&msg);
            c->cmsg_level = SOL_SOCKET;
            c->cmsg_type = SCM_RIGHTS;
            c->cmsg_len = CMSG_LEN(sizeof(int) * fds.size());
            std::memcpy(CMSG_DATA(c), fds.data(), sizeof(int) * fds.size());
        }
        ASSERT_EQ(::sendmsg(sock, &msg, MSG_NOSIGNAL), static_cast<ssize_t>(header.size())) << std::strerror(errno);
    }
    // Whether the collector closes sock within timeout, having sent nothing.
    static bool closedSilently(int sock, int timeoutSeconds = 10)
    {
        timeval tv{timeoutSeconds, 0};
        ::setsockopt(sock, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
        char byte;
        return ::recv(sock, &byte, 1, 0) == 0;
    }
    std::uint64_t storedRecords()
    {
        MasterStore store(m_state + "/master.db");
        return store.countRecords("tunnel-node");
    }

    // The relay itself, run by hand as user with a claimed address.
    RunResult relayAs(const std::string& user, const std::vector<std::string>& groups, const std::string& claimed)
    {
        auto argv = asUser(user, groups);
        argv.push_back(tunnelRelayPath());
        return run(argv, {{"SSH_CONNECTION", claimed + " 4242 127.0.0.1 22"}, {"FERRY_RELAY_SOCKET", m_relaySocket}},
                   {}, std::chrono::seconds(20));
    }
};

TEST_F(TheRelaySocket, BelievesANodeAddressOnlyFromTheTunnelUser)
{
    // Root connects (the socket lets it); its header is refused, one line.
    {
        const int fd = ::socket(AF_UNIX, SOCK_STREAM, 0);
        sockaddr_un addr{};
        addr.sun_family = AF_UNIX;
        std::strncpy(addr.sun_path, m_relaySocket.c_str(), sizeof addr.sun_path - 1);
        ASSERT_EQ(::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr), 0) << std::strerror(errno);
        const std::string header = "ferry-relay 1 192.0.2.66\x1b[2J 4242\n";
        ASSERT_EQ(::send(fd, header.data(), header.size(), MSG_NOSIGNAL), static_cast<ssize_t>(header.size()));
        char byte;
        timeval tv{10, 0};
        ::setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
        EXPECT_EQ(::recv(fd, &byte, 1, 0), 0) << "the collector closes the connection";
        ::close(fd);
    }
    ASSERT_TRUE(waitUntil([&] { return collectorLog().find("from uid 0:") != std::string::npos; })) << collectorLog();
    const std::string log = collectorLog();
    EXPECT_NE(log.find("192.0.2.66\\x1b[2J 4242"), std::string::npos) << log;
    EXPECT_EQ(log.find('\x1b'), std::string::npos) << "the claimed text is escaped";

    // User ferry put in the tunnel group by mistake gets through the socket's
    // mode, and still cannot name an address: the uid decides.
    const auto ferryInGroup = relayAs("ferry", {"ferry-tunnel"}, "192.0.2.67");
    EXPECT_TRUE(waitUntil([&] {
        return collectorLog().find("from uid " + std::to_string(uidOf("ferry")) + ":") != std::string::npos;
    })) << collectorLog()
        << ferryInGroup.err;
    // Without the group, the socket's mode keeps ferry out altogether.
    const auto ferry = relayAs("ferry", {}, "192.0.2.68");
    EXPECT_NE(ferry.exitCode, 0);
    EXPECT_NE(ferry.err.find("Permission denied"), std::string::npos) << ferry.err;

    // Nothing was stored under any claimed address; a genuine push after
    // them is stored under the node's own.
    writeNodeConfig(m_sshd->port(), "push:\n  source_address: 127.0.0.9\n");
    spoolRecords(3);
    const auto r = pushdCycle();
    EXPECT_EQ(r.exitCode, 0) << r.err;
    MasterStore store(m_state + "/master.db");
    const auto epochs = store.epochs("tunnel-node");
    ASSERT_EQ(epochs.size(), 1u) << collectorLog();
    EXPECT_EQ(epochs[0].fromAddress.rfind("127.0.0.9:", 0), 0u) << epochs[0].fromAddress;
    EXPECT_EQ(collectorLog().find("192.0.2.6", collectorLog().find("Stored")), std::string::npos);
}

TEST_F(TheRelaySocket, TakesAHeaderThatArrivesInPiecesAsOneThatArrivesWhole)
{
    // The header in the pieces given, the second 300 ms after the first;
    // then a push with `records` new records.
    auto pushWithHeader = [&](const std::vector<std::string>& pieces, int records) {
        spoolRecords(records);
        const int fd = connectAsTunnelUser();
        for (std::size_t i = 0; i < pieces.size(); ++i) {
            if (i > 0)
                std::this_thread::sleep_for(std::chrono::milliseconds(300));
            ASSERT_EQ(::send(fd, pieces[i].data(), pieces[i].size(), MSG_NOSIGNAL),
                      static_cast<ssize_t>(pieces[i].size()));
        }
        FdStream stream(fd, fd, "the relay socket", true);
        pushd::PushCycleResult r;
        ASSERT_NO_THROW(r = pushOver(stream)) << collectorLog();
        EXPECT_EQ(r.recordsNew, static_cast<std::uint64_t>(records));
    };
    auto fromAddress = [&] {
        MasterStore store(m_state + "/master.db");
        const auto epochs = store.epochs("tunnel-node");
        return epochs.size() == 1 ? epochs[0].fromAddress : std::string("epochs: ") + std::to_string(epochs.size());
    };

    pushWithHeader({"ferry-relay 1 192.0.2.45 6000\n"}, 2);
    EXPECT_EQ(fromAddress(), "192.0.2.45:6000");
    pushWithHeader({"ferry-relay 1 192.0.2.4", "6 6001\n"}, 3);
    EXPECT_EQ(fromAddress(), "192.0.2.46:6001");
    // Nothing at first, then the whole header: waited for, not read byte by
    // byte.
    pushWithHeader({"", "ferry-relay 1 192.0.2.48 6003\n"}, 1);
    EXPECT_EQ(fromAddress(), "192.0.2.48:6003");
    // Cut before its newline: refused, and nothing stored.
    {
        const int fd = connectAsTunnelUser();
        const std::string part = "ferry-relay 1 192.0.2.47 6002";
        ASSERT_EQ(::send(fd, part.data(), part.size(), MSG_NOSIGNAL), static_cast<ssize_t>(part.size()));
        ::shutdown(fd, SHUT_WR);
        char byte;
        timeval tv{10, 0};
        ::setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
        EXPECT_EQ(::recv(fd, &byte, 1, 0), 0) << "the collector closes the connection";
        ::close(fd);
    }
    EXPECT_TRUE(waitUntil([&] { return collectorLog().find("192.0.2.47") != std::string::npos; })) << collectorLog();
    EXPECT_EQ(fromAddress(), "192.0.2.48:6003");
    MasterStore store(m_state + "/master.db");
    EXPECT_EQ(store.countRecords("tunnel-node"), 6u) << collectorLog();
}

TEST_F(TheRelaySocket, ServesTheSessionOnTheChannelsEndsTheRelayHandsOver)
{
    // What sshd gives the relay: a pipe from the node (the relay's stdin) and
    // one toward it (its stdout). The relay hands both over with its header
    // and carries no byte of the session.
    int up[2], down[2];
    ASSERT_EQ(::pipe2(up, O_CLOEXEC), 0);
    ASSERT_EQ(::pipe2(down, O_CLOEXEC), 0);
    spoolRecords(4);
    const int sock = connectAsTunnelUser();
    sendWithFds(sock, "ferry-relay 2 192.0.2.51 7000\n", {up[0], down[1]});
    ::close(up[0]);
    ::close(down[1]);

    {
        FdStream channel(down[0], up[1], "the channel's pipes", true);
        pushd::PushCycleResult r;
        ASSERT_NO_THROW(r = pushOver(channel)) << collectorLog();
        EXPECT_EQ(r.recordsNew, 4u);
    }
    EXPECT_EQ(storedRecords(), 4u) << collectorLog();
    MasterStore store(m_state + "/master.db");
    const auto epochs = store.epochs("tunnel-node");
    ASSERT_EQ(epochs.size(), 1u);
    EXPECT_EQ(epochs[0].fromAddress, "192.0.2.51:7000");
    // Nothing of the session crossed the relay's socket, and the collector
    // closed it once the session was over: the relay's cue to exit.
    EXPECT_TRUE(closedSilently(sock)) << collectorLog();
    ::close(sock);
}

TEST_F(TheRelaySocket, EndsASessionOnTheChannelsEndsWhenTheRelayIsGone)
{
    int up[2], down[2];
    ASSERT_EQ(::pipe2(up, O_CLOEXEC), 0);
    ASSERT_EQ(::pipe2(down, O_CLOEXEC), 0);
    const int sock = connectAsTunnelUser();
    sendWithFds(sock, "ferry-relay 2 192.0.2.52 7001\n", {up[0], down[1]});
    ::close(up[0]);
    ::close(down[1]);
    // The collector greets the node on the pipe toward it.
    pollfd p{down[0], POLLIN, 0};
    ASSERT_EQ(::poll(&p, 1, 10000), 1) << collectorLog();
    // The relay goes (sshd's session, or the relay, killed): the node's pipe
    // stays open (sshd still holds it), and the collector ends the session
    // at once, not after its I/O timeout (30 s).
    ::close(sock);
    const auto start = std::chrono::steady_clock::now();
    char buf[4096];
    ssize_t n = 1;
    while (n > 0 && std::chrono::steady_clock::now() - start < std::chrono::seconds(20)) {
        ASSERT_GE(::poll(&p, 1, 20000), 0);
        n = ::read(down[0], buf, sizeof buf);
    }
    EXPECT_EQ(n, 0) << "the collector closed the pipe toward the node";
    EXPECT_LT(std::chrono::steady_clock::now() - start, std::chrono::seconds(5)) << collectorLog();
    ::close(up[1]);
    ::close(down[0]);
    EXPECT_EQ(storedRecords(), 0u);
}

TEST_F(TheRelaySocket, RefusesAHeaderWhoseDescriptorsAreNotTheChannelsTwoEnds)
{
    int up[2], down[2];
    ASSERT_EQ(::pipe2(up, O_CLOEXEC), 0);
    ASSERT_EQ(::pipe2(down, O_CLOEXEC), 0);
    const std::string file = m_root / "a-regular-file";
    writeFile(file, "not a channel");
    const int fileFd = ::open(file.c_str(), O_RDONLY | O_CLOEXEC);
    ASSERT_GE(fileFd, 0);
    struct Case {
        std::string header;
        std::vector<int> fds;
        std::string why;
    };
    const std::vector<Case> cases = {
        {"ferry-relay 2 192.0.2.61 7000\n", {}, "came with 0 descriptors, not 2"},
        {"ferry-relay 2 192.0.2.62 7000\n", {up[0]}, "came with 1 descriptors, not 2"},
        {"ferry-relay 1 192.0.2.63 7000\n", {up[0], down[1]}, "came with 2 descriptors, not 0"},
        {"ferry-relay 2 192.0.2.67 7000\n", {up[0], down[1], up[0]}, "came with more than 2 descriptors, not 2"},
        {"ferry-relay 2 192.0.2.64 7000\n", {fileFd, down[1]}, "its channel's input is neither a pipe nor a socket"},
        {"ferry-relay 2 192.0.2.65 7000\n", {up[1], down[1]}, "its channel's input is not open for reading"},
        {"ferry-relay 2 192.0.2.66 7000\n", {up[0], down[0]}, "its channel's output is not open for writing"},
    };
    for (const auto& c : cases) {
        const int sock = connectAsTunnelUser();
        sendWithFds(sock, c.header, c.fds);
        EXPECT_TRUE(closedSilently(sock)) << c.header;
        ::close(sock);
        const std::string address = c.header.substr(14, 10);
        EXPECT_TRUE(waitUntil([&] {
            const std::string log = collectorLog();
            const auto at = log.find("Refusing a relay connection for " + address);
            return at != std::string::npos && log.find(c.why, at) != std::string::npos;
        })) << c.header
            << collectorLog();
    }
    // Nothing came of them, and the collector still serves a genuine push.
    EXPECT_EQ(storedRecords(), 0u);
    writeNodeConfig(m_sshd->port(), "transport:\n  connect_timeout: 5\n  io_timeout: 10\n");
    spoolRecords(2);
    const auto r = pushdCycle();
    EXPECT_EQ(r.exitCode, 0) << r.err << collectorLog();
    EXPECT_EQ(storedRecords(), 2u);
    for (int fd : {up[0], up[1], down[0], down[1], fileFd})
        ::close(fd);
}

} // namespace
} // namespace ferry::test
