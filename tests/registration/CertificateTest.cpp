// OpenSSH certificates for nodes (issue 15), end to end: registryd signs
// the accepted node's key with the master's CA, keyregd stores the
// certificate next to the key, and a real sshd that trusts the CA
// (TrustedUserCAKeys, RevokedKeys) and has no AuthorizedKeysCommand admits
// the node's libssh login (pushd's SshSession) and refuses expired, revoked
// and wrong-principal certificates. The renewal that ferry-cert-renew.timer
// runs (`ferryctl register --renew-certificate`, keyregd's RenewCertificate)
// renews a certificate near its expiry and names the node when an expired
// one cannot be renewed. Needs root (sshd in a mount namespace).

#include <signal.h>
#include <sys/stat.h>
#include <unistd.h>

#include <filesystem>

#include <gtest/gtest.h>

#include "RegistrationSupport.h"
#include "ferry/Clock.h"
#include "ferry/Crypto.h"
#include "ferry/Error.h"
#include "ferry/MasterStore.h"
#include "ferry/NodeCertificates.h"
#include "ferry/Spool.h"
#include "ferry/Sqlite.h"
#include "ferry/SshSession.h"
#include "support/TestSshd.h"

namespace ferry::test {
namespace {

class ACertifiedNode : public ::testing::Test {
protected:
    void SetUp() override
    {
        if (!isRoot())
            GTEST_SKIP() << "needs root: runs a real sshd in a mount namespace and a system user 'ferry'";
        ensureUser("ferry", "/usr/sbin/nologin");
        ensureTunnelUser();
        m_master = m_root / "master";
        m_nodeState = m_root / "node-state";
        m_nodeConfig = m_root / "node-etc";
        for (const auto& d : {m_master, m_nodeState, m_nodeConfig})
            std::filesystem::create_directories(d);
        m_ca = m_root / "ca";
        std::vector<std::string> keygen = {"ssh-keygen", "-q"};
        for (const auto& a : caKeyType())
            keygen.push_back(a);
        for (const auto& a : {"-N", "", "-C", "ferry-ca", "-f"})
            keygen.emplace_back(a);
        keygen.push_back(m_ca);
        ASSERT_EQ(run(keygen).exitCode, 0);
        m_krl = m_master + "/revoked_keys.krl";
        // The master's sshd: the CA and the KRL (registryd writes it before
        // any node logs in), and no key lookup at all for the tunnel user,
        // whose sessions run the relay (to the socket of the collector that
        // a test starts, if any).
        SshdOptions so;
        so.globalLines = {"TrustedUserCAKeys " + m_ca + ".pub", "RevokedKeys " + m_krl};
        so.tail = "Match User ferry-tunnel\n\tAuthorizedKeysFile none\n\tDisableForwarding yes\n\tForceCommand " +
                  tunnelRelayPath() + "\n\tSetEnv FERRY_RELAY_SOCKET=" + (m_root / "collector-relay.sock") +
                  "\n\tPermitTTY no\n\tX11Forwarding no\n";
        m_sshd.emplace(so);
        EXPECT_EQ(m_sshd->log().find("AuthorizedKeysCommand"), std::string::npos);
        // registryd hands nodes that sshd's host key, which pushd then pins.
        writeFile(m_root / "master_host_key.pub", m_sshd->hostKeyLine() + "\n", 0644);
        m_registryPort = freePort();
        m_registryd.emplace(m_master, m_root / "master_host_key.pub", m_registryPort, m_root / "registryd.log",
                            std::vector<std::string>{"--unknown-nodes", "refuse", "--idle-timeout", "0", "--ca-key",
                                                     m_ca, "--cert-validity", "3600"});
        ASSERT_TRUE(waitUntil([&] { return ::access(m_krl.c_str(), F_OK) == 0; })) << m_registryd->log();

        m_secret = generateSecret();
        writeFile(m_nodeState + "/secret", m_secret + "\n", 0600);
        writeFile(m_nodeConfig + "/ferry.yml",
                  "node:\n  name: cert-node\n  mode: push\nmasters:\n  - host: 127.0.0.1\n    ssh_port: " +
                      std::to_string(m_sshd->port()) + "\n    registry_port: " + std::to_string(m_registryPort) + "\n");
        const auto r = ferryctl({"master", "add-node", "cert-node"}, {{"FERRY_STATE_DIR", m_master}}, m_secret);
        ASSERT_EQ(r.exitCode, 0) << r.err;
        startKeyregd(true);
        ASSERT_TRUE(waitUntil([&] { return ::access(certFile().c_str(), F_OK) == 0; }))
            << readFile(m_root / "keyregd.log") << m_registryd->log();
    }

    // ssh-keygen's arguments for the CA's key.
    virtual std::vector<std::string> caKeyType() const { return {"-t", "ed25519"}; }

    std::map<std::string, std::string> nodeEnv() const
    {
        return {{"FERRY_CONFIG_DIR", m_nodeConfig}, {"FERRY_STATE_DIR", m_nodeState}};
    }

    void startKeyregd(bool registerNow)
    {
        std::vector<std::string> argv{buildPath("services/keyregd/ferry-keyregd"),
                                      "-v",
                                      "--retry-initial",
                                      "200",
                                      "--retry-max",
                                      "1000",
                                      "--idle-timeout",
                                      "0",
                                      "--sshd-host-keys",
                                      m_root / "none"};
        if (registerNow)
            argv.emplace_back("--register");
        m_keyregd.emplace(argv, nodeEnv(), m_root / "keyregd.log");
        // ferryctl finds keyregd by its bus name: a call before keyregd owns
        // it gets ServiceUnknown (the test bus activates nothing).
        ASSERT_TRUE(waitUntil([] { return busNameOwned("org.ferry.KeyReg1"); })) << readFile(m_root / "keyregd.log");
    }

    // What ferry-cert-renew.service runs.
    RunResult renew() { return ferryctl({"register", "--renew-certificate"}, nodeEnv()); }

    // The node's certificate replaced by one the CA signs here (as if time had passed).
    std::string signForNode(const std::string& validity, std::uint64_t serial, const std::string& keyId)
    {
        CertificateRequest request;
        request.caKeyFile = m_ca;
        request.publicKey = publicKeyLine(keyFile());
        request.keyId = keyId;
        request.principals = {"ferry-tunnel", "node:cert-node"};
        request.serial = serial;
        request.validity = validity;
        return signUserCertificate(request);
    }

    std::string keyFile() const { return m_nodeState + "/id_ed25519"; }
    std::string certFile() const { return keyFile() + "-cert.pub"; }

    // pushd's login: libssh with the node key (and its certificate, when one lies next to it).
    void login(const std::string& key)
    {
        SshOptions options;
        options.privateKeyFile = key;
        options.knownHostsFile = m_root / "known_hosts";
        writeFile(options.knownHostsFile, m_sshd->knownHostsLine() + "\n", 0644);
        options.connectTimeout = std::chrono::seconds(5);
        options.ioTimeout = std::chrono::seconds(5);
        SshSession session({"127.0.0.1", static_cast<std::uint16_t>(m_sshd->port()), "ferry-tunnel"}, options);
    }

    // A copy of the node's key with a certificate signed here by the CA.
    std::string keyWithCertificate(const std::string& name, std::vector<std::string> principals,
                                   const std::string& validity, std::uint64_t serial)
    {
        const std::string key = m_root / name;
        std::filesystem::copy_file(keyFile(), key);
        ::chmod(key.c_str(), 0600);
        CertificateRequest request;
        request.caKeyFile = m_ca;
        request.publicKey = publicKeyLine(keyFile());
        request.keyId = "test:" + name;
        request.principals = std::move(principals);
        request.serial = serial;
        request.validity = validity;
        writeFile(key + "-cert.pub", signUserCertificate(request) + "\n", 0644);
        return key;
    }

    TempDir m_root;
    TestBus m_bus;
    std::string m_master, m_nodeState, m_nodeConfig, m_ca, m_krl, m_secret;
    int m_registryPort = 0;
    std::optional<Registryd> m_registryd;
    std::optional<TestSshd> m_sshd;
    std::optional<Process> m_keyregd;
};

TEST_F(ACertifiedNode, LogsInWithItsCertificateAndNoKeyLookup)
{
    const auto cert = readFile(certFile());
    EXPECT_EQ(cert.rfind("ssh-ed25519-cert-v01@openssh.com ", 0), 0u) << cert;
    EXPECT_NO_THROW(login(keyFile())) << m_sshd->log();
    EXPECT_NE(m_sshd->log().find("ID ferry-node:cert-node#1 (serial 1)"), std::string::npos) << m_sshd->log();
    // Without the certificate the same key is a stranger to this sshd.
    const std::string bare = m_root / "bare_key";
    std::filesystem::copy_file(keyFile(), bare);
    EXPECT_THROW(login(bare), AuthError);
}

TEST_F(ACertifiedNode, RunsTheRelayWithTheRegistrysCertificateAndNothingElse)
{
    // The certificate registryd issued (principal ferry-tunnel, options
    // clear and force-command of the relay) admits the login, and what runs
    // is the relay, whatever is asked: here it finds no collector and says so.
    SshOptions options;
    options.privateKeyFile = keyFile();
    options.knownHostsFile = m_root / "known_hosts";
    writeFile(options.knownHostsFile, m_sshd->knownHostsLine() + "\n", 0644);
    options.connectTimeout = std::chrono::seconds(5);
    options.ioTimeout = std::chrono::seconds(10);
    SshSession session({"127.0.0.1", static_cast<std::uint16_t>(m_sshd->port()), "ferry-tunnel"}, options);
    EXPECT_NE(m_sshd->log().find("Accepted publickey for ferry-tunnel"), std::string::npos) << m_sshd->log();
    EXPECT_NE(m_sshd->log().find("ED25519-CERT"), std::string::npos) << m_sshd->log();
    auto channel = session.exec("id");
    std::string out;
    char buf[512];
    for (std::size_t n; (n = channel->readSome(buf, sizeof buf, deadlineIn(std::chrono::seconds(10)))) > 0;)
        out.append(buf, n);
    EXPECT_EQ(out.find("uid="), std::string::npos) << out;
    EXPECT_NE(channel->stderrText().find("ferry-tunnel-relay: Failed to connect to the collector"), std::string::npos)
        << channel->stderrText();
    EXPECT_THROW(session.openForward("127.0.0.1", 50009, 50011), Error);
}

TEST_F(ACertifiedNode, IsRefusedWithAnExpiredCertificate)
{
    const auto key = keyWithCertificate("expired", {"ferry-tunnel"}, "20200101:20200102", 900);
    EXPECT_THROW(login(key), AuthError);
    EXPECT_TRUE(waitUntil([&] { return m_sshd->log().find("expired") != std::string::npos; })) << m_sshd->log();
}

TEST_F(ACertifiedNode, IsRefusedWithACertificateForAnotherPrincipal)
{
    const auto key = keyWithCertificate("other-principal", {"root", "node:cert-node"}, "-5m:+1h", 901);
    EXPECT_THROW(login(key), AuthError);
    EXPECT_TRUE(waitUntil([&] { return m_sshd->log().find("not in the list of valid principals") != std::string::npos ||
                                       m_sshd->log().find("principal") != std::string::npos; }))
        << m_sshd->log();
}

TEST_F(ACertifiedNode, IsRefusedOnceTheOperatorRevokesIt)
{
    ASSERT_NO_THROW(login(keyFile())) << m_sshd->log();
    const auto krlBefore = readFile(m_krl);
    const auto r = ferryctl({"master", "revoke", "cert-node", "stolen"}, {{"FERRY_STATE_DIR", m_master}});
    ASSERT_EQ(r.exitCode, 0) << r.err;
    EXPECT_NE(readFile(m_krl), krlBefore);
    // sshd reads RevokedKeys at every authentication: no restart.
    EXPECT_THROW(login(keyFile()), AuthError);
    EXPECT_TRUE(waitUntil([&] { return m_sshd->log().find("revoked") != std::string::npos; })) << m_sshd->log();
}

// The CA that services/registryd/README.md advises for a large fleet: RSA,
// the cheapest for sshd to check at every login (docs/master-sizing.md).
class ACertifiedNodeOfAnRsaCa : public ACertifiedNode {
protected:
    std::vector<std::string> caKeyType() const override { return {"-t", "rsa", "-b", "3072"}; }
};

TEST_F(ACertifiedNodeOfAnRsaCa, LogsInWithItsCertificateUntilTheOperatorRevokesIt)
{
    const auto ca = readFile(m_ca + ".pub");
    ASSERT_EQ(ca.rfind("ssh-rsa ", 0), 0u) << ca;
    ASSERT_NO_THROW(login(keyFile())) << m_sshd->log();
    EXPECT_NE(m_sshd->log().find("ID ferry-node:cert-node#1 (serial 1) CA RSA"), std::string::npos) << m_sshd->log();
    const auto r = ferryctl({"master", "revoke", "cert-node", "stolen"}, {{"FERRY_STATE_DIR", m_master}});
    ASSERT_EQ(r.exitCode, 0) << r.err;
    EXPECT_THROW(login(keyFile()), AuthError);
    EXPECT_TRUE(waitUntil([&] { return m_sshd->log().find("revoked") != std::string::npos; })) << m_sshd->log();
}

TEST_F(ACertifiedNode, RenewsItsCertificateNearItsExpiry)
{
    ASSERT_EQ(readCertificate(readFile(certFile())).serial, 1u);
    // Both copies near their end, as after most of the validity has passed:
    // the registry's record of what it issued, and the node's file.
    const std::int64_t soon = nowMs() + 60'000;
    {
        Database db(m_master + "/master.db");
        db.exec("UPDATE node_certificates SET valid_to_ms = " + std::to_string(soon) + " WHERE node = 'cert-node'");
    }
    writeFile(certFile(), signForNode("-50m:+60s", 1, "ferry-node:cert-node#1") + "\n", 0644);

    const auto r = renew();
    ASSERT_EQ(r.exitCode, 0) << r.err << readFile(m_root / "keyregd.log") << m_registryd->log();
    RecordProperty("summary", r.out);
    EXPECT_NE(r.out.find("renewed the certificate of node 'cert-node': serial 2, valid until"), std::string::npos)
        << r.out;
    const auto renewed = readCertificate(readFile(certFile()));
    EXPECT_EQ(renewed.serial, 2u);
    EXPECT_GE(renewed.validBeforeMs, nowMs() + 3500'000);
    EXPECT_EQ(renewed.principals, (std::vector<std::string>{"ferry-tunnel", "node:cert-node"}));
    // The new certificate logs in at once, with no key lookup on the master.
    EXPECT_NO_THROW(login(keyFile())) << m_sshd->log();
    EXPECT_TRUE(waitUntil([&] {
        return m_sshd->log().find("ID ferry-node:cert-node#2 (serial 2)") != std::string::npos;
    })) << m_sshd->log();
    EXPECT_NE(readFile(m_root / "keyregd.log").find("renewed the certificate of node 'cert-node'"), std::string::npos);
}

TEST_F(ACertifiedNode, PushesThroughARenewalOfItsCertificateAndThenWithTheNewOne)
{
    // The master's collector, and the node's pushd: a full push through
    // sshd (certificate, no key lookup) and the relay to collectord.
    // Its TCP port is one of this run's own (pushes take the relay socket).
    Process collectord({buildPath("services/collectord/ferry-collectord"), "-v",
                        "--listen=127.0.0.1:" + std::to_string(freePort()), "--relay-socket",
                        m_root / "collector-relay.sock", "--idle-timeout=0", "--sshd-host-keys", m_sshd->hostKeyDir()},
                       {{"FERRY_STATE_DIR", m_master}}, m_root / "collectord.log");
    ASSERT_TRUE(waitUntil([&] {
        return readFile(m_root / "collectord.log").find("Accepting") != std::string::npos || !collectord.running();
    })) << readFile(m_root / "collectord.log");
    Process pushd({buildPath("services/pushd/ferry-pushd"), "-v", "--idle-timeout=0"}, nodeEnv(), m_root / "pushd.log");
    ASSERT_TRUE(waitUntil([&] { return busNameOwned("org.ferry.Push1"); })) << readFile(m_root / "pushd.log");
    auto spool = [&](int count) {
        Spool s(m_nodeState + "/spool.db", {});
        std::vector<Record> batch;
        for (int i = 0; i < count; ++i)
            batch.push_back({0, nowMs(), "test", "sample " + std::to_string(i)});
        s.appendAll(batch);
    };
    auto stored = [&] { return MasterStore(m_master + "/master.db").countRecords("cert-node"); };

    // Serial 1 is near its end: the next renewal replaces it.
    {
        Database db(m_master + "/master.db");
        db.exec("UPDATE node_certificates SET valid_to_ms = " + std::to_string(nowMs() + 120'000) +
                " WHERE node = 'cert-node'");
    }
    writeFile(certFile(), signForNode("-50m:+120s", 1, "ferry-node:cert-node#1") + "\n", 0644);
    spool(50);
    // The collector stopped: the push logs in, opens its forward, and waits
    // there for the collector, its session open across the renewal.
    collectord.signal(SIGSTOP);
    Process push({buildPath("services/ferryctl/ferryctl"), "push"}, nodeEnv(), m_root / "push.log");
    ASSERT_TRUE(waitUntil([&] {
        return m_sshd->log().find("ID ferry-node:cert-node#1 (serial 1)") != std::string::npos;
    })) << m_sshd->log()
        << readFile(m_root / "pushd.log");
    const auto renewal = renew();
    EXPECT_TRUE(push.running()) << "the push was still open during the renewal";
    collectord.signal(SIGCONT);
    ASSERT_EQ(renewal.exitCode, 0) << renewal.err << m_registryd->log();
    EXPECT_NE(renewal.out.find("renewed the certificate of node 'cert-node': serial 2"), std::string::npos)
        << renewal.out;
    const auto pushed = push.wait(std::chrono::seconds(60));
    ASSERT_TRUE(pushed) << "the push did not end";
    EXPECT_EQ(*pushed, 0) << readFile(m_root / "push.log") << readFile(m_root / "pushd.log");
    EXPECT_EQ(stored(), 50u) << readFile(m_root / "collectord.log");

    // The next push logs in with the new certificate.
    spool(5);
    const auto next = ferryctl({"push"}, nodeEnv());
    EXPECT_EQ(next.exitCode, 0) << next.out << next.err << readFile(m_root / "pushd.log");
    EXPECT_EQ(stored(), 55u);
    EXPECT_TRUE(waitUntil([&] {
        return m_sshd->log().find("ID ferry-node:cert-node#2 (serial 2)") != std::string::npos;
    })) << m_sshd->log();
    EXPECT_EQ(readCertificate(readFile(certFile())).serial, 2u);
    // One login each: the first push was not retried with the new certificate.
    const auto log = m_sshd->log();
    auto count = [&](const std::string& what) {
        std::size_t n = 0;
        for (auto at = log.find(what); at != std::string::npos; at = log.find(what, at + 1))
            ++n;
        return n;
    };
    EXPECT_EQ(count("Accepted publickey for ferry"), 2u) << log;
    EXPECT_EQ(count("ID ferry-node:cert-node#2 (serial 2)"), 1u) << log;
}

TEST_F(ACertifiedNode, LeavesACertificateWithMostOfItsTimeLeftAlone)
{
    const auto before = readFile(certFile());
    const auto r = renew();
    ASSERT_EQ(r.exitCode, 0) << r.err;
    EXPECT_NE(r.out.find("the certificate of node 'cert-node' (serial 1) is valid until"), std::string::npos) << r.out;
    EXPECT_NE(r.out.find("renewal is due from"), std::string::npos) << r.out;
    EXPECT_EQ(readFile(certFile()), before);
}

TEST_F(ACertifiedNode, NamesTheNodeWhenItsExpiredCertificateCannotBeRenewed)
{
    // The node was off past its certificate's end and its master is away now.
    m_keyregd.reset();
    m_registryd.reset();
    const std::string current = readFile(certFile());
    const std::string expired = signForNode("20200101:20200102", 900, "ferry-node:cert-node#900");
    std::string state = readFile(m_nodeState + "/registration.json");
    const auto at = state.find(current.substr(0, current.size() - 1));
    ASSERT_NE(at, std::string::npos) << state;
    state.replace(at, current.size() - 1, expired);
    writeFile(m_nodeState + "/registration.json", state, 0644);
    writeFile(certFile(), expired + "\n", 0644);
    startKeyregd(false);

    const auto r = renew();
    EXPECT_EQ(r.exitCode, 1) << r.out;
    RecordProperty("error", r.err);
    EXPECT_NE(r.err.find("The certificate of node 'cert-node' (serial 900, key ID ferry-node:cert-node#900) "
                         "expired at " +
                         formatTime(readCertificate(expired).validBeforeMs) + " and could not be renewed: "),
              std::string::npos)
        << r.err;
    EXPECT_NE(r.err.find("127.0.0.1:" + std::to_string(m_registryPort)), std::string::npos)
        << "the cause names the master that did not answer: " << r.err;
    EXPECT_NE(r.err.find("refuse its pushes until it is renewed"), std::string::npos) << r.err;
    const auto log = readFile(m_root / "keyregd.log");
    EXPECT_NE(log.find("The certificate of node 'cert-node' (serial 900"), std::string::npos) << log;
    EXPECT_EQ(readCertificate(readFile(certFile())).serial, 900u);
}

} // namespace
} // namespace ferry::test
