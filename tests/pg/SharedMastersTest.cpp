// Two masters on one PostgreSQL store (store.yml), beyond the data session:
// the registry (two real registryds, each on its own bus: a node that
// registers at one is known to, and accepted by, the other), the pulls (two
// pullds' cores pulling one node through a real sshd and the real login
// shell: the lease keeps them from ever pulling it at the same moment, and
// every record is stored once), and the readers (ferryctl's master commands
// and ferry-metricsd serve what is in PostgreSQL, and no master.db appears).

#include <gtest/gtest.h>

#include <algorithm>
#include <atomic>
#include <filesystem>
#include <mutex>
#include <set>
#include <thread>

#include <nlohmann/json.hpp>

#include "NodeSshd.h"
#include "Puller.h"
#include "RegistrationSupport.h"
#include "SshNodeConnector.h"
#include "ferry/Crypto.h"
#include "ferry/MasterQueries.h"
#include "ferry/NodeCertificates.h"
#include "ferry/PgPool.h"
#include "ferry/PgSqlConnection.h"
#include "ferry/PgStore.h"
#include "ferry/RegistryStore.h"
#include "ferry/Spool.h"
#include "ferry/SshKeys.h"
#include "ferry/SshSession.h"
#include "ferry/StoreConfig.h"
#include "support/PgCluster.h"
#include "support/TestSshd.h"
#include "support/TestSupport.h"

using namespace ferry;
using namespace ferry::test;

namespace {

class SharedMasters : public ::testing::Test {
protected:
    void SetUp() override
    {
        if (!PgCluster::available())
            GTEST_SKIP() << "needs root and postgresql-15 (scripts/install-deps installs it)";
        ::chmod(m_root.path().c_str(), 0755);
        m_pg = std::make_unique<PgCluster>();
        m_conninfo = m_pg->conninfo();
    }

    // A master's configuration and state directories: store.yml names the
    // shared database; the state directory stays empty (no master.db).
    std::string masterDirs(const std::string& name)
    {
        const std::string dir = m_root / name;
        std::filesystem::create_directories(dir + "/etc");
        std::filesystem::create_directories(dir + "/state");
        writeFile(dir + "/etc/store.yml", "postgresql: \"" + m_conninfo + "\"\n");
        return dir;
    }

    std::map<std::string, std::string> env(const std::string& dir, const std::string& bus = "unix:path=/nonexistent")
    {
        return {
            {"FERRY_CONFIG_DIR", dir + "/etc"}, {"FERRY_STATE_DIR", dir + "/state"}, {"DBUS_SYSTEM_BUS_ADDRESS", bus}};
    }

    static bool hasMasterDb(const std::string& dir) { return std::filesystem::exists(dir + "/state/master.db"); }

    TempDir m_root;
    std::unique_ptr<PgCluster> m_pg;
    std::string m_conninfo;
};

nlohmann::json nodeIn(const nlohmann::json& nodes, const std::string& name)
{
    for (const auto& n : nodes)
        if (n.at("name") == name)
            return n;
    return nullptr;
}

// registryd holds one registry connection for its life. When the server
// drops it (a restart, a failover, an administrator's pg_terminate_backend),
// the request that finds it dead fails as "internal", and the store is
// opened again before the next one (for the request's outcome counter, or
// at the next request): registration works without restarting registryd.
TEST_F(SharedMasters, RegistrydConnectsAgainAfterTheServerDroppedItsConnection)
{
    const std::string a = masterDirs("a");
    ensureKeyPair(m_root / "host_key");
    ensureKeyPair(m_root / "node_key");
    const std::string nodeKey = publicKeyLine(m_root / "node_key");
    const std::string secret = generateSecret();
    const auto added = ferryctl({"master", "add-node", "web9"}, env(a), secret + "\n");
    ASSERT_EQ(added.exitCode, 0) << added.err;
    const int port = freePort();
    TestBus bus;
    Registryd registryd(a + "/state", m_root / "host_key.pub", port, a + "/registryd.log",
                        {"--unknown-nodes", "refuse", "--deadline", "1500", "--idle-timeout", "0"},
                        {"/usr/bin/env", "FERRY_CONFIG_DIR=" + a + "/etc", "DBUS_SYSTEM_BUS_ADDRESS=" + bus.address()});
    auto registerOnce = [&] {
        const Reply r = rawExchange(port, requestFrame("web9", nodeKey, secret));
        EXPECT_TRUE(r.frame) << r.closedWhy << registryd.log();
        return r.frame ? r.frame->type : MessageType::Error;
    };
    ASSERT_EQ(registerOnce(), MessageType::Response) << registryd.log();

    {
        PgConnection admin(m_conninfo);
        const auto ended = admin.exec("SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity WHERE datname ="
                                      " current_database() AND backend_type = 'client backend'"
                                      " AND pid <> pg_backend_pid()");
        ASSERT_GT(ended.int64(0, 0), 0) << "registryd keeps its connection between requests";
        ASSERT_TRUE(waitUntil([&] {
            return admin
                       .exec("SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() AND"
                             " backend_type = 'client backend' AND pid <> pg_backend_pid()")
                       .int64(0, 0) == 0;
        }));
    }
    // The request that meets the dead connection may fail (libpq learns of
    // the termination only then); the one after it must not.
    const MessageType first = registerOnce();
    if (first != MessageType::Response) {
        EXPECT_NE(registryd.log().find("Failed to handle the registration"), std::string::npos) << registryd.log();
    }
    EXPECT_EQ(registerOnce(), MessageType::Response) << registryd.log();
    EXPECT_EQ(registerOnce(), MessageType::Response) << registryd.log();
    if (first != MessageType::Response) {
        EXPECT_NE(registryd.log().find("Opened the registry's database again"), std::string::npos) << registryd.log();
    }
    std::cout << "after pg_terminate_backend, the first registration "
              << (first == MessageType::Response ? "succeeded" : "failed as internal") << "; the next two succeeded\n";
}

TEST_F(SharedMasters, ShareTheRegistryThroughTwoRegistryds)
{
    const std::string a = masterDirs("a"), b = masterDirs("b");
    ensureKeyPair(m_root / "host_key");
    ensureKeyPair(m_root / "node_key");
    const std::string nodeKey = publicKeyLine(m_root / "node_key");
    const std::string secret = generateSecret();
    const int portA = freePort(), portB = freePort();
    const std::vector<std::string> flags{"--unknown-nodes", "pending", "--deadline", "1500", "--idle-timeout", "0"};
    auto prefix = [&](const std::string& dir, const TestBus& bus) {
        return std::vector<std::string>{"/usr/bin/env", "FERRY_CONFIG_DIR=" + dir + "/etc",
                                        "DBUS_SYSTEM_BUS_ADDRESS=" + bus.address()};
    };
    TestBus busA;
    Registryd registrydA(a + "/state", m_root / "host_key.pub", portA, a + "/registryd.log", flags, prefix(a, busA));
    TestBus busB;
    Registryd registrydB(b + "/state", m_root / "host_key.pub", portB, b + "/registryd.log", flags, prefix(b, busB));

    // Unknown to the store: registering at master A leaves it pending there.
    const Reply first = rawExchange(portA, requestFrame("web7", nodeKey, secret));
    ASSERT_TRUE(first.frame) << first.closedWhy << registrydA.log();
    // Master B's operator sees it (ferryctl reads the store that store.yml names) …
    auto listed = ferryctl({"master", "nodes", "--json"}, env(b));
    ASSERT_EQ(listed.exitCode, 0) << listed.err;
    const auto pending = nodeIn(nlohmann::json::parse(listed.out), "web7");
    ASSERT_FALSE(pending.is_null()) << listed.out;
    EXPECT_EQ(pending.at("state"), "pending");
    EXPECT_EQ(pending.at("public_key"), nodeKey);
    // … and accepts it through registryd B on B's bus.
    const auto accepted =
        ferryctl({"master", "accept", "web7", "--with-secret"}, env(b, busB.address()), secret + "\n");
    ASSERT_EQ(accepted.exitCode, 0) << accepted.err << registrydB.log();
    EXPECT_EQ(accepted.err.find("not reachable"), std::string::npos) << "went through registryd B: " << accepted.err;
    // Master A now answers the node's signed registration with acceptance.
    const Reply second = rawExchange(portA, requestFrame("web7", nodeKey, secret));
    ASSERT_TRUE(second.frame) << second.closedWhy;
    EXPECT_EQ(second.frame->type, MessageType::Response) << second.errorMessage() << registrydA.log();
    // A replayed request is refused by the other master too: nonces are shared.
    const std::string frame = requestFrame("web7", nodeKey, secret);
    ASSERT_TRUE(rawExchange(portA, frame).frame);
    const Reply replay = rawExchange(portB, frame);
    ASSERT_TRUE(replay.frame) << replay.closedWhy;
    EXPECT_EQ(replay.frame->type, MessageType::Error) << "a nonce used at master A must be refused at master B";

    listed = ferryctl({"master", "nodes", "--json"}, env(a));
    ASSERT_EQ(listed.exitCode, 0) << listed.err;
    const auto now = nodeIn(nlohmann::json::parse(listed.out), "web7");
    ASSERT_FALSE(now.is_null());
    EXPECT_EQ(now.at("state"), "accepted");
    EXPECT_EQ(now.at("has_secret"), true);
    EXPECT_EQ(now.at("public_key"), nodeKey);
    // sshd's AuthorizedKeysCommand on either master finds the key there too.
    const auto space = nodeKey.find(' ');
    const auto helper = [&](const std::string& dir, const std::string& key) {
        return run({buildPath("services/authorized-keys/ferry-authorized-keys"), "ferry-tunnel",
                    nodeKey.substr(0, space), key},
                   env(dir));
    };
    const auto found = helper(b, nodeKey.substr(space + 1, nodeKey.find(' ', space + 1) - space - 1));
    EXPECT_EQ(found.exitCode, 0) << found.err;
    EXPECT_NE(found.out.find("restrict " + nodeKey.substr(0, 20)), std::string::npos) << found.out << found.err;
    const auto unknown = helper(a, "AAAAC3NzaC1lZDI1NTE5AAAAIUnknownKeyUnknownKeyUnknownKeyUnknown");
    EXPECT_EQ(unknown.exitCode, 0) << unknown.err;
    EXPECT_EQ(unknown.out, "");
    EXPECT_FALSE(hasMasterDb(a) || hasMasterDb(b)) << "neither registryd may fall back to master.db";
}

TEST_F(SharedMasters, TakeOneCertificateSerialOnceAndShareHostKeysAndPolicies)
{
    RegistryStore masterA(std::make_unique<PgSqlConnection>(m_conninfo));
    RegistryStore masterB(std::make_unique<PgSqlConnection>(m_conninfo));
    masterA.addNode("web1", generateSecret());
    masterB.addNode("web2", generateSecret());
    // Both masters pick the next free serial at once; the store takes one.
    const std::uint64_t serial = masterA.nextCertificateSerial();
    EXPECT_EQ(masterB.nextCertificateSerial(), serial);
    EXPECT_TRUE(masterA.storeCertificate("web1", {serial, "ssh-ed25519 AAAA1", "cert-a", 1}, 1000));
    EXPECT_FALSE(masterB.storeCertificate("web2", {serial, "ssh-ed25519 AAAA2", "cert-b", 1}, 1000));
    EXPECT_FALSE(masterB.certificate("web2"));
    EXPECT_TRUE(masterB.storeCertificate("web2", {masterB.nextCertificateSerial(), "ssh-ed25519 AAAA2", "c", 1}, 1000));
    // A revocation at one master is in the list every master writes its KRL from.
    EXPECT_TRUE(masterA.revokeCertificate("web2", 2000));
    const auto revoked = masterB.revokedCertificates();
    ASSERT_EQ(revoked.size(), 1u);
    EXPECT_EQ(revoked[0].second, "web2");

    const std::vector<std::string> keys{"ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIHostKeyOne"};
    EXPECT_EQ(masterA.checkHostKeys("web1", keys, 1000).outcome, HostKeyCheck::Outcome::Pinned);
    EXPECT_EQ(RegistryStore::pinnedHostKeys(masterB.connection(), "web1"), keys);
    EXPECT_EQ(masterB.checkHostKeys("web1", {"ssh-ed25519 AAAAOther"}, 2000).outcome, HostKeyCheck::Outcome::Changed);
    masterA.acceptHostKeys("web1");
    EXPECT_EQ(masterB.hostKeys("web1"), std::vector<std::string>{"ssh-ed25519 AAAAOther"});

    masterB.setPolicy("web1", 240, std::nullopt);
    EXPECT_EQ(masterA.node("web1")->minPushPeriodS, 240u);
    EXPECT_FALSE(masterA.node("web1")->minPullIntervalS);
    EXPECT_TRUE(masterA.rememberNonce("web1", std::string("n\0once", 6), 5000, 60000));
    EXPECT_FALSE(masterB.rememberNonce("web1", std::string("n\0once", 6), 5001, 60000));
}

TEST_F(SharedMasters, RefuseACertificateAtEveryMastersSshdSoonAfterOneRevokesIt)
{
    ensureUser("ferry", "/usr/sbin/nologin");
    const std::string a = masterDirs("a"), b = masterDirs("b"), c = masterDirs("c");
    const std::string ca = m_root / "ca";
    ASSERT_EQ(run({"ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", "ferry-ca", "-f", ca}).exitCode, 0);
    ensureKeyPair(m_root / "host_key");
    const std::string nodeKey = m_root / "node_key";
    ensureKeyPair(nodeKey);
    // Both registryds check the store for revocations at the default krl_refresh (5 s).
    const std::vector<std::string> flags{"--unknown-nodes", "refuse", "--idle-timeout", "0", "--ca-key", ca};
    auto prefix = [&](const std::string& dir, const TestBus& bus) {
        return std::vector<std::string>{"/usr/bin/env", "FERRY_CONFIG_DIR=" + dir + "/etc",
                                        "DBUS_SYSTEM_BUS_ADDRESS=" + bus.address()};
    };
    // Each registryd on its own bus (a TestBus becomes this process's bus as
    // it starts: each registryd is waited for on its own).
    TestBus busA;
    Registryd registrydA(a + "/state", m_root / "host_key.pub", freePort(), a + "/registryd.log", flags,
                         prefix(a, busA));
    TestBus busB;
    Registryd registrydB(b + "/state", m_root / "host_key.pub", freePort(), b + "/registryd.log", flags,
                         prefix(b, busB));
    const std::string krlB = b + "/state/revoked_keys.krl";
    ASSERT_TRUE(waitUntil([&] { return std::filesystem::exists(krlB); })) << registrydB.log();

    // Master B's sshd: trusts the CA, checks B's own KRL, looks no key up.
    SshdOptions so;
    so.globalLines = {"TrustedUserCAKeys " + ca + ".pub", "RevokedKeys " + krlB};
    so.tail = "Match User ferry\n\tAuthorizedKeysFile none\n\tAllowTcpForwarding local\n";
    TestSshd sshdB(so);

    // The node's certificate, issued from the shared registry as registryd
    // issues one (the next serial, stored with the node's key).
    RegistryStore store(std::make_unique<PgSqlConnection>(m_conninfo));
    store.addNode("web9", generateSecret());
    CertificateRequest request;
    request.caKeyFile = ca;
    request.publicKey = publicKeyLine(nodeKey);
    request.serial = store.nextCertificateSerial();
    request.keyId = "ferry-node:web9#" + std::to_string(request.serial);
    request.principals = {"ferry", "node:web9"};
    request.validity = "-5m:+1h";
    const std::string certificate = signUserCertificate(request);
    ASSERT_TRUE(
        store.storeCertificate("web9", {request.serial, request.publicKey, certificate, nowMs() + 3600'000}, nowMs()));
    writeFile(nodeKey + "-cert.pub", certificate + "\n", 0644);
    auto login = [&] {
        SshOptions options;
        options.privateKeyFile = nodeKey;
        options.knownHostsFile = m_root / "known_hosts";
        writeFile(options.knownHostsFile, sshdB.knownHostsLine() + "\n", 0644);
        options.connectTimeout = std::chrono::seconds(5);
        options.ioTimeout = std::chrono::seconds(5);
        SshSession session({"127.0.0.1", static_cast<std::uint16_t>(sshdB.port()), "ferry"}, options);
    };
    ASSERT_NO_THROW(login()) << sshdB.log();

    // Revoked at master A, through registryd A on A's bus.
    const auto revokedAt = std::chrono::steady_clock::now();
    const auto revoked = ferryctl({"master", "revoke", "web9", "stolen"}, env(a, busA.address()));
    ASSERT_EQ(revoked.exitCode, 0) << revoked.err << registrydA.log();
    const bool refused = waitUntil(
        [&] {
            try {
                login();
                return false;
            } catch (const AuthError&) {
                return true;
            }
        },
        std::chrono::seconds(30), std::chrono::milliseconds(200));
    const auto tookMs =
        std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now() - revokedAt).count();
    ASSERT_TRUE(refused) << "master B's sshd still admits the revoked certificate\n" << sshdB.log() << registrydB.log();
    EXPECT_TRUE(waitUntil([&] { return sshdB.log().find("revoked") != std::string::npos; })) << sshdB.log();
    EXPECT_NE(registrydB.log().find("Rewrote the revocation list"), std::string::npos) << registrydB.log();
    // krl_refresh, the rewrite and a login, with room for a loaded machine.
    EXPECT_LE(tookMs, 10'000) << "the stated time is about 5 s";
    std::cout << "a certificate revoked at master A was refused by master B's sshd " << tookMs
              << " ms later (registryd B checks the store every 5 s)\n";

    // A master whose registryd is not running: ferry-krl-sync.service
    // (--sync-krl) brings its KRL up to date once, and only when behind.
    const std::string krlC = c + "/state/revoked_keys.krl";
    auto sync = [&] {
        return run({buildPath("services/registryd/ferry-registryd"), "-v", "--sync-krl", "--ca-key", ca, "--state-dir",
                    c + "/state"},
                   env(c));
    };
    auto first = sync();
    ASSERT_EQ(first.exitCode, 0) << first.err;
    EXPECT_NE(first.err.find("Rewrote the revocation list"), std::string::npos) << first.err;
    const auto checked = run({"ssh-keygen", "-Q", "-f", krlC, nodeKey + "-cert.pub"});
    EXPECT_NE(checked.exitCode, 0);
    EXPECT_NE(checked.out.find("REVOKED"), std::string::npos) << checked.out << checked.err;
    auto second = sync();
    ASSERT_EQ(second.exitCode, 0) << second.err;
    EXPECT_EQ(second.err.find("Rewrote the revocation list"), std::string::npos) << "nothing new: " << second.err;
}

// Counts the pulls of a node in progress over every master's connector.
class CountingConnector : public pulld::NodeConnector {
public:
    CountingConnector(pulld::NodeConnector& inner, std::atomic<int>& inFlight, std::atomic<int>& most)
        : m_inner(inner), m_inFlight(inFlight), m_most(most)
    {}
    std::unique_ptr<pulld::NodeChannel> open(const NodeInfo& node, const std::string& command) override
    {
        const int now = ++m_inFlight;
        int seen = m_most.load();
        while (now > seen && !m_most.compare_exchange_weak(seen, now)) {
        }
        try {
            return std::make_unique<Channel>(m_inner.open(node, command), m_inFlight);
        } catch (...) {
            --m_inFlight;
            throw;
        }
    }

private:
    class Channel : public pulld::NodeChannel {
    public:
        Channel(std::unique_ptr<pulld::NodeChannel> inner, std::atomic<int>& inFlight)
            : m_inner(std::move(inner)), m_inFlight(inFlight)
        {}
        ~Channel() override { --m_inFlight; }
        ByteStream& stream() override { return m_inner->stream(); }

    private:
        std::unique_ptr<pulld::NodeChannel> m_inner;
        std::atomic<int>& m_inFlight;
    };
    pulld::NodeConnector& m_inner;
    std::atomic<int>& m_inFlight;
    std::atomic<int>& m_most;
};

TEST_F(SharedMasters, NeverPullOneNodeAtOnceAndStoreEachRecordOnce)
{
    pulltest::NodeSshd node;
    {
        PgStore store(m_conninfo);
        store.addNode(node.nodeName(), node.secret());
        store.connection().exec("UPDATE nodes SET mode = 'pull', ssh_host = '127.0.0.1', ssh_port = $1 WHERE name = $2",
                                {PgParam::integer(node.port()), PgParam::text(node.nodeName())});
    }
    pulld::PulldConfig config;
    config.user = node.user();
    config.keyFile = node.restrictedKey();
    config.knownHostsFile = node.knownHosts();
    config.ioTimeout = std::chrono::seconds(20);
    config.concurrency = 1;
    // store.yml's smallest pool (connections: 1), shared by both pullers:
    // each reserves what its pulls hold at once (its concurrency + 1), so
    // neither waits on the other's connection and fails after 10 s.
    StoreConfig smallest{m_conninfo};
    smallest.connections = 1;
    const MasterStoreOpener shared(smallest, m_root / "unused-master.db");
    pulld::SshNodeConnector sshA(config, shared), sshB(config, shared);
    std::atomic<int> inFlight{0}, most{0};
    CountingConnector connectorA(sshA, inFlight, most), connectorB(sshB, inFlight, most);
    pulld::Puller masterA(shared, config, connectorA);
    pulld::Puller masterB(shared, config, connectorB);
    EXPECT_EQ(shared.pool()->maxConnections(), 4u);

    // A backlog on the node (appended as root before any pull; the shell
    // runs as the node's user, so no file of the spool is root's meanwhile).
    std::uint64_t spooled = 0;
    {
        Spool spool(node.spoolPath(), SpoolLimits{1ull << 40, std::chrono::hours(24 * 365)});
        for (int round = 0; round < 6; ++round) {
            std::vector<Record> chunk;
            for (int i = 0; i < 500; ++i)
                chunk.push_back({0, nowMs() + i, "load", "sample " + std::to_string(round * 500 + i)});
            spool.appendAll(chunk);
            spooled += chunk.size();
        }
    }
    node.chownHome();
    std::atomic<std::uint64_t> stored{0};
    std::atomic<int> pulled{0}, leased{0}, failed{0};
    std::vector<std::string> failures;
    std::mutex failuresMutex;
    // Both masters pull the node as fast as they can.
    auto master = [&](pulld::Puller& puller) {
        for (int i = 0; i < 8; ++i) {
            const auto o = puller.pullNode(node.nodeName());
            stored += o.records;
            if (o.leasedElsewhere) {
                ++leased;
            } else if (o.success) {
                ++pulled;
            } else {
                ++failed;
                std::lock_guard lock(failuresMutex);
                failures.push_back(o.summary);
            }
        }
    };
    std::thread a(master, std::ref(masterA)), b(master, std::ref(masterB));
    a.join();
    b.join();

    EXPECT_EQ(most.load(), 1) << "two masters pulled the node at the same moment";
    EXPECT_EQ(failed.load(), 0) << (failures.empty() ? "" : failures.front());
    EXPECT_GT(pulled.load(), 2);
    PgStore check(m_conninfo);
    EXPECT_EQ(check.countRecords(node.nodeName()), spooled);
    EXPECT_EQ(stored.load(), spooled) << "each record is newly stored by exactly one pull";
    std::cout << "two pullds on PostgreSQL: " << pulled.load() << " pulls, " << leased.load()
              << " skipped while the other master held the lease, " << spooled << " records spooled, "
              << check.countRecords(node.nodeName()) << " stored, at most " << most.load()
              << " pull of the node at a time\n";
    // pulld's bookkeeping is in PostgreSQL too.
    PgSqlConnection tables(m_conninfo);
    const auto state = MasterQueries(tables).pullRecord(node.nodeName());
    ASSERT_TRUE(state);
    EXPECT_EQ(state->totalRecords, spooled);
    EXPECT_EQ(state->lastResult.rfind("success", 0), 0u) << state->lastResult;
}

// Watches the cluster's client backends (pg_stat_activity) from a
// connection of its own: every backend seen, and the most at once.
class BackendWatch {
public:
    explicit BackendWatch(const std::string& conninfo) : m_db(conninfo)
    {
        m_pid = m_db.exec("SELECT pg_backend_pid()").int64(0, 0);
        m_thread = std::thread([this] {
            while (!m_stop) {
                const auto r = m_db.exec("SELECT pid, backend_start::text FROM pg_stat_activity WHERE datname ="
                                         " current_database() AND backend_type = 'client backend'"
                                         " AND pid <> pg_backend_pid()");
                {
                    std::lock_guard lock(m_mutex);
                    m_most = std::max(m_most, r.rows());
                    for (int i = 0; i < r.rows(); ++i)
                        m_seen.insert(r.text(i, 0) + "@" + r.text(i, 1));
                }
                std::this_thread::sleep_for(std::chrono::milliseconds(2));
            }
        });
    }
    ~BackendWatch() { stop(); }
    void stop()
    {
        m_stop = true;
        if (m_thread.joinable())
            m_thread.join();
    }
    std::size_t seen()
    {
        std::lock_guard lock(m_mutex);
        return m_seen.size();
    }
    int most()
    {
        std::lock_guard lock(m_mutex);
        return m_most;
    }
    // Its own backend, which the watch does not count (nor may anyone end).
    std::int64_t pid() const { return m_pid; }

private:
    PgConnection m_db;
    std::int64_t m_pid = 0;
    std::mutex m_mutex;
    std::set<std::string> m_seen;
    int m_most = 0;
    std::atomic<bool> m_stop{false};
    std::thread m_thread;
};

TEST_F(SharedMasters, PullRoundsOverManyNodesOnABoundedSetOfConnections)
{
    // One real node with a backlog, and 24 whose sshd is not there (each
    // pull fails at connect, and is recorded as failed: store work all the same).
    pulltest::NodeSshd node;
    constexpr int kDeadNodes = 24;
    const int closedPort = freePort();
    {
        PgStore store(m_conninfo);
        store.addNode(node.nodeName(), node.secret());
        store.connection().exec("UPDATE nodes SET mode = 'pull', ssh_host = '127.0.0.1', ssh_port = $1 WHERE name = $2",
                                {PgParam::integer(node.port()), PgParam::text(node.nodeName())});
        for (int i = 0; i < kDeadNodes; ++i) {
            const std::string name = "gone" + std::to_string(i);
            store.addNode(name, generateSecret());
            store.connection().exec("UPDATE nodes SET mode = 'pull', ssh_host = '127.0.0.1', ssh_port = $1"
                                    " WHERE name = $2",
                                    {PgParam::integer(closedPort), PgParam::text(name)});
        }
        Spool spool(node.spoolPath(), SpoolLimits{1ull << 40, std::chrono::hours(24 * 365)});
        std::vector<Record> chunk;
        for (int i = 0; i < 300; ++i)
            chunk.push_back({0, nowMs() + i, "load", "sample " + std::to_string(i)});
        spool.appendAll(chunk);
    }
    node.chownHome();
    pulld::PulldConfig config;
    config.user = node.user();
    config.keyFile = node.restrictedKey();
    config.knownHostsFile = node.knownHosts();
    config.ioTimeout = std::chrono::seconds(20);
    config.concurrency = 4;
    // store.yml's smallest pool: the Puller sizes it as in pulld, one
    // connection per concurrent pull and one to spare (reserveConnections).
    StoreConfig storeConfig{m_conninfo};
    storeConfig.connections = 1;
    const MasterStoreOpener opener(storeConfig, m_root / "unused-master.db");
    pulld::SshNodeConnector ssh(config, opener);
    pulld::Puller puller(opener, config, ssh);
    const std::size_t bound = opener.pool()->maxConnections();
    EXPECT_EQ(bound, static_cast<std::size_t>(config.concurrency) + 1);

    BackendWatch watch(m_conninfo);
    unsigned pulls = 0;
    for (int round = 0; round < 3; ++round) {
        const auto r = puller.pullRound(true);
        EXPECT_EQ(r.pulled, 1u) << "round " << round;
        EXPECT_EQ(r.failed, static_cast<unsigned>(kDeadNodes)) << "round " << round;
        pulls += r.pulled + r.failed;
    }
    const std::size_t seenBefore = watch.seen();
    const int mostBefore = watch.most();
    // The server drops every connection (a restart, a cut): the pool finds
    // them dead and connects again, and the next round works.
    {
        PgConnection admin(m_conninfo);
        const auto ended = admin.exec("SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity WHERE datname ="
                                      " current_database() AND backend_type = 'client backend'"
                                      " AND pid NOT IN (pg_backend_pid(), $1)",
                                      {PgParam::integer(watch.pid())});
        EXPECT_GT(ended.int64(0, 0), 0) << "pulld's pool keeps its connections between rounds";
        // Gone for good, as after a server restart (termination is asynchronous).
        EXPECT_TRUE(waitUntil([&] {
            return admin
                       .exec("SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() AND"
                             " backend_type = 'client backend' AND pid NOT IN (pg_backend_pid(), $1)",
                             {PgParam::integer(watch.pid())})
                       .int64(0, 0) == 0;
        }));
    }
    const std::size_t madeBefore = opener.pool()->connectionsMade();
    const auto after = puller.pullRound(true);
    pulls += after.pulled + after.failed;
    EXPECT_EQ(after.pulled, 1u) << (after.outcomes.empty() ? "" : after.outcomes.front().summary);
    EXPECT_EQ(after.failed, static_cast<unsigned>(kDeadNodes));
    watch.stop();

    EXPECT_LE(seenBefore, bound) << "3 rounds over " << kDeadNodes + 1 << " nodes";
    EXPECT_LE(static_cast<std::size_t>(mostBefore), bound);
    EXPECT_LE(opener.pool()->connectionsMade() - madeBefore, bound) << "reconnected, within the bound";
    EXPECT_GT(opener.pool()->connectionsMade(), madeBefore) << "the dropped connections were replaced";
    PgStore check(m_conninfo);
    EXPECT_EQ(check.countRecords(node.nodeName()), 300u);
    std::cout << "pulld on PostgreSQL: " << pulls << " pulls in 4 rounds over " << kDeadNodes + 1
              << " nodes (concurrency " << config.concurrency << "): " << seenBefore
              << " connections in pg_stat_activity over the first 3 rounds, " << watch.seen()
              << " with the round after the server dropped them all (and the connection that dropped them), at most "
              << mostBefore << " at once (bound " << bound << ")\n";
}

TEST_F(SharedMasters, ServeFerryctlAndMetricsdFromPostgres)
{
    const std::string dir = masterDirs("reader");
    const Epoch epoch = Epoch::fromHex("0102030405060708090a0b0c0d0e0f00", "test epoch");
    {
        PgStore store(m_conninfo);
        store.addNode("web1", generateSecret());
        HealthReport report;
        report.spoolRecords = 17;
        report.spoolBytes = 4321;
        report.transportMode = "push";
        report.fwcheckVerdict = "reachable";
        EXPECT_FALSE(store.admitEpoch("web1", epoch, "192.0.2.7", &report).held);
        std::vector<Record> records;
        for (std::uint64_t s = 1; s <= 20; ++s)
            records.push_back({s, nowMs(), "load", "load1 0.5"});
        EXPECT_EQ(store.storeBatch("web1", epoch, records, "push").newlyStored, 20u);
        PgSqlConnection tables(m_conninfo);
        MasterQueries(tables).recordPullFailure("web1", 1234, "timeout", "timed out after 3000 ms");
    }

    auto nodes = ferryctl({"master", "nodes", "--json"}, env(dir));
    ASSERT_EQ(nodes.exitCode, 0) << nodes.err;
    const auto web1 = nodeIn(nlohmann::json::parse(nodes.out), "web1");
    ASSERT_FALSE(web1.is_null()) << nodes.out;
    EXPECT_EQ(web1.at("records_stored"), 20);
    EXPECT_EQ(web1.at("last_seq"), 20);
    EXPECT_EQ(web1.at("epoch"), epoch.hex());

    const auto show = ferryctl({"master", "show", "web1", "--json"}, env(dir));
    ASSERT_EQ(show.exitCode, 0) << show.err;
    const auto shown = nlohmann::json::parse(show.out);
    EXPECT_EQ(shown.at("records_stored"), 20);
    EXPECT_EQ(shown.at("report").at("spool_records"), 17);
    EXPECT_EQ(shown.at("report").at("diagnosis"), "reachable");
    EXPECT_EQ(shown.at("pull_failure").at("cause"), "timeout");

    const auto epochs = ferryctl({"master", "epochs", "web1", "--json"}, env(dir));
    ASSERT_EQ(epochs.exitCode, 0) << epochs.err;
    EXPECT_EQ(nlohmann::json::parse(epochs.out).at(0).at("state"), "active");
    const auto resolved = ferryctl({"master", "resolve", "web1", "--keep", epoch.hex().substr(0, 8)}, env(dir));
    ASSERT_EQ(resolved.exitCode, 0) << resolved.err;
    {
        PgStore store(m_conninfo);
        EXPECT_GT(store.epochs("web1").at(0).decidedMs, 0) << "the operator's decision is in PostgreSQL";
    }
    const auto policy = ferryctl({"master", "set-policy", "web1", "--min-push-period", "300"}, env(dir));
    ASSERT_EQ(policy.exitCode, 0) << policy.err;
    EXPECT_EQ(RegistryStore(std::make_unique<PgSqlConnection>(m_conninfo)).node("web1")->minPushPeriodS, 300u);

    // ferry-metricsd, with no --store: the store that store.yml names.
    const int port = freePort();
    auto metricsEnv = env(dir);
    Process metricsd({buildPath("services/metricsd/ferry-metricsd"), "-v", "--listen=127.0.0.1:" + std::to_string(port),
                      "--idle-timeout=0"},
                     metricsEnv, dir + "/metricsd.log");
    RunResult scrape;
    ASSERT_TRUE(waitUntil(
        [&] {
            scrape = run({"curl", "-sS", "--max-time", "10", "http://127.0.0.1:" + std::to_string(port) + "/metrics"});
            return scrape.exitCode == 0;
        },
        std::chrono::seconds(20), std::chrono::milliseconds(200)))
        << scrape.err << readFile(dir + "/metricsd.log");
    EXPECT_NE(scrape.out.find("ferry_records_stored_total{via=\"push\"} 20\n"), std::string::npos)
        << scrape.out.substr(0, 2000);
    EXPECT_NE(scrape.out.find("ferry_node_report_spool_records{node=\"web1\"} 17"), std::string::npos)
        << scrape.out.substr(0, 4000);
    EXPECT_FALSE(hasMasterDb(dir)) << "ferryctl and metricsd must not fall back to master.db";
}

} // namespace
