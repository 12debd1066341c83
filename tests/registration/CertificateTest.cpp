// OpenSSH certificates for nodes (issue 15), end to end: registryd signs
// the accepted node's key with the master's CA, keyregd stores the
// certificate next to the key, and a real sshd that trusts the CA
// (TrustedUserCAKeys, RevokedKeys) and has no AuthorizedKeysCommand admits
// the node's libssh login (pushd's SshSession) and refuses expired, revoked
// and wrong-principal certificates. Needs root (sshd in a mount namespace).

#include <sys/stat.h>
#include <unistd.h>

#include <filesystem>

#include <gtest/gtest.h>

#include "RegistrationSupport.h"
#include "ferry/Crypto.h"
#include "ferry/Error.h"
#include "ferry/NodeCertificates.h"
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
        m_master = m_root / "master";
        m_nodeState = m_root / "node-state";
        m_nodeConfig = m_root / "node-etc";
        for (const auto& d : {m_master, m_nodeState, m_nodeConfig})
            std::filesystem::create_directories(d);
        m_ca = m_root / "ca";
        ASSERT_EQ(run({"ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", "ferry-ca", "-f", m_ca}).exitCode, 0);
        ensureKeyPair(m_root / "master_host_key");
        m_registryPort = freePort();
        m_registryd.emplace(m_master, m_root / "master_host_key.pub", m_registryPort, m_root / "registryd.log",
                            std::vector<std::string>{"--unknown-nodes", "refuse", "--idle-timeout", "0", "--ca-key",
                                                     m_ca, "--cert-validity", "3600"});
        m_krl = m_master + "/revoked_keys.krl";
        ASSERT_TRUE(waitUntil([&] { return ::access(m_krl.c_str(), F_OK) == 0; })) << m_registryd->log();

        // The master's sshd: the CA and the KRL, and no key lookup at all for the tunnel user.
        SshdOptions so;
        so.globalLines = {"TrustedUserCAKeys " + m_ca + ".pub", "RevokedKeys " + m_krl};
        so.tail = "Match User ferry\n\tAuthorizedKeysFile none\n\tAllowTcpForwarding local\n\tPermitListen none\n"
                  "\tPermitOpen 127.0.0.1:50009\n\tPermitTTY no\n\tX11Forwarding no\n";
        m_sshd.emplace(so);
        EXPECT_EQ(m_sshd->log().find("AuthorizedKeysCommand"), std::string::npos);

        m_secret = generateSecret();
        writeFile(m_nodeState + "/secret", m_secret + "\n", 0600);
        writeFile(m_nodeConfig + "/ferry.yml",
                  "node:\n  name: cert-node\n  mode: push\nmasters:\n  - host: 127.0.0.1\n    ssh_port: " +
                      std::to_string(m_sshd->port()) + "\n    registry_port: " + std::to_string(m_registryPort) + "\n");
        const auto r = ferryctl({"master", "add-node", "cert-node"}, {{"FERRY_STATE_DIR", m_master}}, m_secret);
        ASSERT_EQ(r.exitCode, 0) << r.err;
        const std::map<std::string, std::string> node{{"FERRY_CONFIG_DIR", m_nodeConfig},
                                                      {"FERRY_STATE_DIR", m_nodeState}};
        m_keyregd.emplace(std::vector<std::string>{buildPath("services/keyregd/ferry-keyregd"), "-v", "--register",
                                                   "--retry-initial", "200", "--retry-max", "1000", "--idle-timeout",
                                                   "0", "--sshd-host-keys", m_root / "none"},
                          node, m_root / "keyregd.log");
        ASSERT_TRUE(waitUntil([&] { return ::access(certFile().c_str(), F_OK) == 0; }))
            << readFile(m_root / "keyregd.log") << m_registryd->log();
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
        SshSession session({"127.0.0.1", static_cast<std::uint16_t>(m_sshd->port()), "ferry"}, options);
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

TEST_F(ACertifiedNode, IsRefusedWithAnExpiredCertificate)
{
    const auto key = keyWithCertificate("expired", {"ferry"}, "20200101:20200102", 900);
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

} // namespace
} // namespace ferry::test
