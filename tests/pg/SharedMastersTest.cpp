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
#include <thread>

#include <nlohmann/json.hpp>

#include "NodeSshd.h"
#include "Puller.h"
#include "RegistrationSupport.h"
#include "SshNodeConnector.h"
#include "ferry/Crypto.h"
#include "ferry/MasterQueries.h"
#include "ferry/PgSqlConnection.h"
#include "ferry/PgStore.h"
#include "ferry/RegistryStore.h"
#include "ferry/Spool.h"
#include "ferry/SshKeys.h"
#include "ferry/StoreConfig.h"
#include "support/PgCluster.h"
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
        return run(
            {buildPath("services/authorized-keys/ferry-authorized-keys"), "ferry", nodeKey.substr(0, space), key},
            env(dir));
    };
    const auto found = helper(b, nodeKey.substr(space + 1, nodeKey.find(' ', space + 1) - space - 1));
    EXPECT_EQ(found.exitCode, 0) << found.err;
    EXPECT_NE(found.out.find("restrict,port-forwarding,permitopen=\"127.0.0.1:50009\" " + nodeKey.substr(0, 20)),
              std::string::npos)
        << found.out << found.err;
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
    const MasterStoreOpener shared(StoreConfig{m_conninfo, {}}, m_root / "unused-master.db");
    pulld::SshNodeConnector sshA(config, shared), sshB(config, shared);
    std::atomic<int> inFlight{0}, most{0};
    CountingConnector connectorA(sshA, inFlight, most), connectorB(sshB, inFlight, most);
    pulld::Puller masterA(shared, config, connectorA);
    pulld::Puller masterB(shared, config, connectorB);

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
