// Registration end to end on one machine: a real sshd whose tunnel user's
// keys come from the registry through ferry-authorized-keys (the shipped
// drop-in), registryd running as user ferry, keyregd, and the real pushd and
// collectord moving records. Needs root (sshd in a mount namespace, user ferry).

#include <sys/stat.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>

#include <gtest/gtest.h>

#include "RegistrationSupport.h"
#include "ferry/Bus.h"
#include "ferry/Crypto.h"
#include "ferry/Error.h"
#include "ferry/MasterStore.h"
#include "ferry/Spool.h"
#include "ferry/SshSession.h"
#include "SshNodeConnector.h"
#include "ferry/RegistryStore.h"
#include "support/TestSshd.h"

namespace ferry::test {
namespace {

class ARegisteredNode : public ::testing::Test {
protected:
    void SetUp() override
    {
        if (!isRoot())
            GTEST_SKIP() << "needs root: runs a real sshd in a mount namespace and a system user 'ferry'";
        ensureUser("ferry", "/usr/sbin/nologin");
        ensureTunnelUser();
        m_root = std::make_unique<TempDir>();
        // The helper and registryd run as ferry: they must reach the master's state.
        ::chmod(m_root->path().c_str(), 0755);
        m_master = *m_root / "master";
        m_nodeState = *m_root / "node-state";
        m_nodeConfig = *m_root / "node-etc";
        m_services = *m_root / "services";
        for (const auto& d : {m_master, m_nodeState, m_nodeConfig, m_services})
            std::filesystem::create_directories(d);
        ASSERT_EQ(run({"chown", "ferry:ferry", m_master}).exitCode, 0);
        prepareMasterSideDirs(m_master);
        ::chmod(m_master.c_str(), 0700);

        // sshd refuses a command below a writable directory such as /tmp.
        m_helper = std::make_unique<RootOwnedCopy>(buildPath("services/authorized-keys/ferry-authorized-keys"));
        SshdOptions so;
        // Pushes run the relay as ferry-tunnel, to collectord's relay socket
        // (m_root is 0755: the tunnel user reaches it).
        so.tail = shippedMasterDropIn(false, m_helper->path() + " --state-dir " + m_master, *m_root / "collector.sock");
        m_sshd = std::make_unique<TestSshd>(so);

        m_secret = generateSecret();
        writeFile(m_nodeState + "/secret", m_secret + "\n", 0600);
        m_registryPort = freePort();
        writeFile(m_nodeConfig + "/ferry.yml",
                  "node:\n  name: test-node\n  mode: push\nmasters:\n  - host: 127.0.0.1\n    ssh_port: " +
                      std::to_string(m_sshd->port()) + "\n    registry_port: " + std::to_string(m_registryPort) +
                      "\npush:\n  connect_timeout: 5\n  io_timeout: 10\n");
        ::setenv("FERRY_CONFIG_DIR", m_nodeConfig.c_str(), 1);
        ::setenv("FERRY_STATE_DIR", m_nodeState.c_str(), 1);
        writeFile(m_services + "/org.ferry.Push1.service",
                  "[D-BUS Service]\nName=org.ferry.Push1\nExec=" + buildPath("services/pushd/ferry-pushd") +
                      " -v --idle-timeout=5\nUser=root\n");
        m_bus = std::make_unique<TestBus>(std::vector<std::string>{m_services});
        // registryd (user ferry) must reach the private bus socket.
        const auto socket = m_bus->address().substr(std::string("unix:path=").size());
        ::chmod(std::filesystem::path(socket).parent_path().c_str(), 0755);
    }

    void TearDown() override
    {
        m_keyregd.reset();
        m_collector.reset();
        m_registryd.reset();
        m_bus.reset();
        m_sshd.reset();
        ::unsetenv("FERRY_CONFIG_DIR");
        ::unsetenv("FERRY_STATE_DIR");
    }

    // The master side; hostKeyLine is what registryd hands to nodes as its
    // sshd's host key (normally the real one).
    void startMaster(const std::string& hostKeyLine)
    {
        writeFile(m_master + "/host_key.pub", hostKeyLine + "\n", 0644);
        m_registryd.emplace(m_master, m_master + "/host_key.pub", m_registryPort, *m_root / "registryd.log",
                            std::vector<std::string>{"--idle-timeout", "0", "--unknown-nodes", "refuse"},
                            std::vector<std::string>{"/usr/bin/setpriv", "--reuid=ferry", "--regid=ferry",
                                                     "--clear-groups"});
        // Pushes come through the relay socket; its TCP port is one of this
        // run's own, so that two runs of the suite never contend for it.
        m_collector.emplace(
            std::vector<std::string>{buildPath("services/collectord/ferry-collectord"), "-v",
                                     "--listen=127.0.0.1:" + std::to_string(freePort()), "--relay-socket",
                                     *m_root / "collector.sock", "--sshd-host-keys", m_sshd->hostKeyDir()},
            std::map<std::string, std::string>{{"FERRY_STATE_DIR", m_master}}, *m_root / "collectord.log");
        ASSERT_TRUE(waitUntil([&] {
            return readFile(*m_root / "collectord.log").find("Accepting") != std::string::npos || !m_collector->running();
        })) << readFile(*m_root / "collectord.log");
        ASSERT_TRUE(m_collector->running()) << readFile(*m_root / "collectord.log");
        const auto r = ferryctl({"master", "add-node", "test-node"}, {{"FERRY_STATE_DIR", m_master}}, m_secret);
        ASSERT_EQ(r.exitCode, 0) << r.err;
        ASSERT_EQ(r.err.find("not reachable"), std::string::npos) << r.err;
    }

    void startNode(std::vector<std::string> extra = {})
    {
        std::vector<std::string> argv{buildPath("services/keyregd/ferry-keyregd"), "-v", "--register", "--retry-initial", "200",
                                      "--retry-max", "1000", "--idle-timeout", "0"};
        argv.insert(argv.end(), extra.begin(), extra.end());
        m_keyregd.emplace(argv,
                          std::map<std::string, std::string>{}, *m_root / "keyregd.log");
        ASSERT_TRUE(waitUntil([&] {
            return busProperty("org.ferry.KeyReg1", "/org/ferry/KeyReg1", "org.ferry.KeyReg1", "State") == "accepted";
        })) << readFile(*m_root / "keyregd.log") << m_registryd->log();
    }

    void spool(int count)
    {
        Spool spool(m_nodeState + "/spool.db", {});
        std::vector<Record> batch;
        for (int i = 0; i < count; ++i)
            batch.push_back({0, nowMs(), "test", "sample " + std::to_string(i)});
        spool.appendAll(batch);
    }

    std::uint64_t storedAtMaster()
    {
        MasterStore store(m_master + "/master.db");
        return store.countRecords("test-node");
    }

    RunResult push() { return ferryctl({"push"}); }

    std::unique_ptr<TempDir> m_root;
    std::string m_master, m_nodeState, m_nodeConfig, m_services, m_secret;
    int m_registryPort = 0;
    std::unique_ptr<RootOwnedCopy> m_helper;
    std::unique_ptr<TestSshd> m_sshd;
    std::unique_ptr<TestBus> m_bus;
    std::optional<Registryd> m_registryd;
    std::optional<Process> m_collector;
    std::optional<Process> m_keyregd;
};

TEST_F(ARegisteredNode, PushesThroughTheRegistryHelperUntilRevoked)
{
    startMaster(m_sshd->hostKeyLine());
    spool(5);
    // Not registered yet: pushd refuses to push at all.
    auto r = push();
    EXPECT_NE(r.exitCode, 0);
    EXPECT_NE((r.out + r.err).find("not registered"), std::string::npos) << r.out << r.err;

    startNode();
    EXPECT_EQ(readFile(m_nodeState + "/known_hosts"), m_sshd->knownHostsLine() + "\n");
    r = push();
    ASSERT_EQ(r.exitCode, 0) << r.out << r.err << m_sshd->log();
    EXPECT_EQ(storedAtMaster(), 5u);

    // Registering the same key again changes nothing and pushing goes on.
    const auto key = nodeColumn(m_master, "test-node", "public_key");
    r = ferryctl({"register"});
    ASSERT_EQ(r.exitCode, 0) << r.out << r.err;
    EXPECT_EQ(nodeColumn(m_master, "test-node", "public_key"), key);
    spool(3);
    ASSERT_EQ(push().exitCode, 0) << m_sshd->log();
    EXPECT_EQ(storedAtMaster(), 8u);

    // Revoked: the very next connection is refused by sshd, no file rewritten.
    ASSERT_EQ(ferryctl({"master", "revoke", "test-node", "stolen"}, {{"FERRY_STATE_DIR", m_master}}).exitCode, 0);
    spool(2);
    r = push();
    EXPECT_NE(r.exitCode, 0) << r.out;
    EXPECT_EQ(storedAtMaster(), 8u);
    EXPECT_NE(m_sshd->log().find("Failed publickey for ferry"), std::string::npos) << m_sshd->log();
}

TEST_F(ARegisteredNode, InstallsTheMasterPullKeyFromTheSignedAnswerIntoRootsKeysFile)
{
    // The master's pull key, as ferry-master's postinst makes it.
    const std::string pullKey = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIPZk9P9QHhW2+1rFnk70b2G6W640JfQQYsbxRSD68P/g";
    writeFile(m_master + "/pull_id_ed25519.pub", pullKey + " ferry-pull@master\n", 0644);
    ASSERT_EQ(run({"chown", "ferry:ferry", m_master + "/pull_id_ed25519.pub"}).exitCode, 0);
    startMaster(m_sshd->hostKeyLine());
    // Before any registration: a keys file with no key at all.
    auto r = ferryctl({"node", "trust-master"});
    ASSERT_EQ(r.exitCode, 0) << r.out << r.err;
    EXPECT_EQ(readFile(m_nodeConfig + "/pull_authorized_keys").find("ssh-ed25519"), std::string::npos);

    startNode();
    EXPECT_NE(readFile(m_nodeState + "/registration.json").find(pullKey), std::string::npos);
    r = ferryctl({"node", "trust-master"});
    ASSERT_EQ(r.exitCode, 0) << r.out << r.err;
    const auto keys = readFile(m_nodeConfig + "/pull_authorized_keys");
    EXPECT_NE(keys.find("restrict,command=\"/usr/sbin/ferry-login\",from=\"127.0.0.1\" " + pullKey + " ferry-pull@127.0.0.1:"),
              std::string::npos)
        << keys;
    struct stat st{};
    ASSERT_EQ(::stat((m_nodeConfig + "/pull_authorized_keys").c_str(), &st), 0);
    EXPECT_EQ(st.st_uid, 0u);
    EXPECT_EQ(st.st_mode & 0777, 0644u);

    // A second run with nothing new leaves the file alone.
    r = ferryctl({"node", "trust-master"});
    EXPECT_NE(r.out.find("Unchanged"), std::string::npos) << r.out;
}

TEST_F(ARegisteredNode, LogsInWithARotatedKeyWhileTheOldKeyIsRefused)
{
    startMaster(m_sshd->hostKeyLine());
    startNode();
    std::filesystem::copy_file(m_nodeState + "/id_ed25519", *m_root / "old_key");
    const auto r = ferryctl({"register", "--new-key"});
    ASSERT_EQ(r.exitCode, 0) << r.out << r.err;
    EXPECT_EQ(nodeColumn(m_master, "test-node", "public_key"), publicKeyLine(m_nodeState + "/id_ed25519"));

    spool(4);
    ASSERT_EQ(push().exitCode, 0) << m_sshd->log();
    EXPECT_EQ(storedAtMaster(), 4u);

    SshOptions options;
    options.privateKeyFile = *m_root / "old_key";
    options.knownHostsFile = m_nodeState + "/known_hosts";
    options.connectTimeout = std::chrono::seconds(5);
    EXPECT_THROW(SshSession({"127.0.0.1", static_cast<std::uint16_t>(m_sshd->port()), "ferry-tunnel"}, options),
                 AuthError);
}

TEST_F(ARegisteredNode, PushdRefusesAMasterWhoseHostKeyDiffersFromTheRegisteredOne)
{
    // The registry vouches for one host key; the sshd answering port 22 has another.
    ensureKeyPair(*m_root / "other_host_key");
    startMaster(publicKeyLine(*m_root / "other_host_key.pub"));
    startNode();
    spool(2);
    const auto r = push();
    EXPECT_NE(r.exitCode, 0);
    EXPECT_NE(r.err.find("host key differs from the pinned one"), std::string::npos) << r.out << r.err;
    EXPECT_EQ(storedAtMaster(), 0u);
}

TEST_F(ARegisteredNode, PullsOnlyThroughTheSshdHostKeysTheNodeRegistered)
{
    // The test sshd plays the node's sshd for the pull: the node sends its
    // host key (as keyregd reads /etc/ssh/ssh_host_*_key.pub) when it registers.
    const std::string sshdKeys = *m_root / "node-etc-ssh";
    std::filesystem::create_directories(sshdKeys);
    writeFile(sshdKeys + "/ssh_host_ed25519_key.pub", m_sshd->hostKeyLine() + " root@node\n", 0644);
    startMaster(m_sshd->hostKeyLine());
    startNode({"--sshd-host-keys", sshdKeys});
    const std::string db = m_master + "/master.db";
    EXPECT_EQ(RegistryStore::pinnedHostKeys(db, "test-node"), std::vector<std::string>{m_sshd->hostKeyLine()});

    // pulld's connector: no hand-made known_hosts exists, the registry's pin is all it has.
    pulld::PulldConfig config;
    // A key this sshd lets log in (through the registry helper, as the
    // tunnel user): only the host key check matters here.
    config.user = "ferry-tunnel";
    config.keyFile = m_nodeState + "/id_ed25519";
    config.knownHostsFile = *m_root / "pull_known_hosts";
    config.connectTimeout = std::chrono::seconds(5);
    config.ioTimeout = std::chrono::seconds(5);
    NodeInfo node;
    node.name = "test-node";
    node.sshHost = "127.0.0.1";
    node.sshPort = static_cast<std::uint16_t>(m_sshd->port());
    {
        pulld::SshNodeConnector connector(config, db);
        EXPECT_NO_THROW(connector.open(node, "status")) << m_sshd->log();
        EXPECT_EQ(readFile(config.knownHostsFile + ".d/test-node"), m_sshd->knownHostsLine() + "\n");
    }
    // Without the registry there is nothing to trust: no first-use pinning.
    EXPECT_THROW(pulld::SshNodeConnector(config).open(node, "status"), Error);

    // The node's sshd gets a new host key: the signed registration that
    // brings it is refused, naming the node and both fingerprints.
    ensureKeyPair(*m_root / "new_sshd_key");
    const std::string newKey = publicKeyLine(*m_root / "new_sshd_key.pub");
    writeFile(sshdKeys + "/ssh_host_ed25519_key.pub", newKey + "\n", 0644);
    const auto r = ferryctl({"register"});
    // The node stays registered (its last accepted answer holds); the refusal is its last error.
    const std::string said = r.out + r.err;
    EXPECT_NE(said.find("hostkey-changed"), std::string::npos) << said;
    EXPECT_NE(said.find("test-node"), std::string::npos) << said;
    EXPECT_NE(said.find(keyFingerprint(m_sshd->hostKeyLine())), std::string::npos) << said;
    EXPECT_NE(said.find(keyFingerprint(newKey)), std::string::npos) << said;
    const auto nodes = ferryctl({"master", "nodes"}, {{"FERRY_STATE_DIR", m_master}});
    EXPECT_NE(nodes.out.find("CHANGED"), std::string::npos) << nodes.out;
    // The pin did not move: pulls still verify against the registered key.
    {
        pulld::SshNodeConnector connector(config, db);
        EXPECT_NO_THROW(connector.open(node, "status"));
    }
    // The operator accepts the change; the running sshd still has the old
    // key, so the pull is now refused as a host key mismatch.
    ASSERT_EQ(ferryctl({"master", "accept-hostkey", "test-node"}, {{"FERRY_STATE_DIR", m_master}}).exitCode, 0);
    pulld::SshNodeConnector connector(config, db);
    try {
        connector.open(node, "status");
        ADD_FAILURE() << "a pull went to an sshd whose host key is not the registered one";
    } catch (const AuthError& e) {
        EXPECT_NE(std::string(e.what()).find("differs"), std::string::npos) << e.what();
    }
}

} // namespace
} // namespace ferry::test
