// Two masters — each its own OpenSSH sshd and ferry-collectord, on
// 127.0.0.2 and 127.0.0.3 (ports chosen at run time) — share one PostgreSQL
// store (store.yml). A node pushes with the real push cycle over SSH,
// failing over to the other master when the one it pushes to is killed with
// SIGKILL in the middle of pushes; afterwards every record it spooled is in
// the shared store exactly once, byte for byte, and its spool is empty.

#include <gtest/gtest.h>

#include <signal.h>

#include <filesystem>
#include <random>
#include <thread>

#include "CollectorConnector.h"
#include "PushCycle.h"
#include "ferry/Bus.h"
#include "ferry/Crypto.h"
#include "ferry/PgStore.h"
#include "ferry/PullProtocol.h"
#include "ferry/Spool.h"
#include "ferry/SshSession.h"
#include "support/PgCluster.h"
#include "support/TestSshd.h"
#include "support/TestSupport.h"

using namespace ferry;
using namespace ferry::test;

namespace {

struct Master {
    std::string address; // where its collectord listens (TCP; pushes come through the relay socket)
    int port = 0;        // on address, chosen afresh at each start
    std::string dir;
    std::unique_ptr<TestSshd> sshd;
    std::unique_ptr<TestBus> bus;  // each master its own system bus
    std::optional<Process> collector;
    int starts = 0;

    void startCollector()
    {
        const std::string log = dir + "/collectord.log";
        const std::size_t before = readFile(log).size();
        // Nothing reaches the TCP port, but collectord binds it: one of this
        // run's own, so that another run's collectors never hold it.
        port = freePort(address);
        collector.emplace(std::vector<std::string>{buildPath("services/collectord/ferry-collectord"), "-v",
                                                   "--listen=" + address + ":" + std::to_string(port), "--relay-socket",
                                                   dir + "/collector.sock", "--idle-timeout=0"},
                          std::map<std::string, std::string>{{"FERRY_STATE_DIR", dir + "/state"},
                                                             {"FERRY_CONFIG_DIR", dir + "/etc"},
                                                             {"DBUS_SYSTEM_BUS_ADDRESS", bus->address()}},
                          log);
        ++starts;
        if (!waitUntil([&] { return readFile(log).find("Accepting", before) != std::string::npos; },
                       std::chrono::seconds(20)))
            throw std::runtime_error("collectord at " + address + " did not start: " + readFile(log).substr(before));
    }
};

class TwoMastersOnPostgres : public ::testing::Test {
protected:
    void SetUp() override
    {
        if (!PgCluster::available())
            GTEST_SKIP() << "needs root and postgresql-15";
        ::chmod(m_dir.path().c_str(), 0755);
        m_pg = std::make_unique<PgCluster>();
        const std::string conninfo = m_pg->conninfo();
        m_secret = generateSecret();
        PgStore(conninfo).addNode("web1", m_secret);
        ensureUser("ferry", "/usr/sbin/nologin");
        ensureTunnelUser();

        m_node.stateDir = m_dir / "node";
        m_node.configDir = m_dir / "node";
        std::filesystem::create_directories(m_node.stateDir);
        ensureKeyPair(m_node.privateKeyFile());
        const std::string pub = publicKeyLine(m_node.privateKeyFile());
        std::string knownHosts;
        for (const char* address : {"127.0.0.2", "127.0.0.3"}) {
            auto m = std::make_unique<Master>();
            m->address = address;
            m->bus = std::make_unique<TestBus>();
            m->dir = m_dir / (std::string("master-") + address);
            std::filesystem::create_directories(m->dir + "/state");
            std::filesystem::create_directories(m->dir + "/etc");
            writeFile(m->dir + "/etc/store.yml", "postgresql: \"" + conninfo + "\"\n");
            ::chmod(m->dir.c_str(), 0755); // the relay (ferry-tunnel) reaches the socket in it
            SshdOptions so;
            so.tail = shippedMasterDropIn(true, {}, m->dir + "/collector.sock");
            m->sshd = std::make_unique<TestSshd>(so);
            writeFile(m->sshd->authorizedKeysFile("ferry-tunnel"), tunnelKeyLine(pub) + "\n");
            knownHosts += m->sshd->knownHostsLine() + "\n";
            m->startCollector();
            m_masters.push_back(std::move(m));
        }
        writeFile(m_node.knownHostsFile(), knownHosts, 0600);
        m_conninfo = conninfo;
    }

    // The node's push to one master: pushd's cycle over pushd's SSH
    // connector (key auth, pinned host key, the relay to the collector).
    void pushTo(const Master& m, Spool& spool)
    {
        NodeConfig config;
        config.nodeName = "web1";
        config.connectTimeout = std::chrono::seconds(10);
        config.ioTimeout = std::chrono::seconds(10);
        pushd::SshCollectorConnector connector(config, m_node);
        auto link = connector.connect({"127.0.0.1", static_cast<std::uint16_t>(m.sshd->port()), 50010});
        pushd::PushCycleOptions o;
        o.nodeName = "web1";
        o.secret = m_secret;
        o.batchRecords = 10;  // ten batches per push, so kills land mid-push
        o.ioTimeout = std::chrono::seconds(10);
        pushd::runPushCycle(link->stream(), spool, o);
    }

    TempDir m_dir;
    std::unique_ptr<PgCluster> m_pg;
    std::string m_conninfo;
    std::string m_secret;
    Paths m_node;
    std::vector<std::unique_ptr<Master>> m_masters;
};

TEST_F(TwoMastersOnPostgres, StoreEveryRecordOnceWhileTheMasterBeingPushedToIsKilled)
{
    Spool spool(m_node.spoolFile(), {});
    PgStore watcher(m_conninfo);
    std::mt19937 rng(12345);
    std::vector<std::string> appended;  // payload by seq - 1
    const int kKills = 100;
    int kills = 0, failovers = 0, pushes = 0;
    std::size_t current = 0;
    while (kills < kKills) {
        // A backlog of ten batches per push, so that a kill can land between
        // any two of them.
        std::vector<Record> run;
        for (int i = 0; i < 100; ++i) {
            std::string payload = "sample " + std::to_string(appended.size() + run.size() + 1) + " " +
                                  std::to_string(rng());
            run.push_back({0, nowMs(), "load", payload});
        }
        for (const auto& r : run)
            appended.push_back(r.payload);
        spool.appendAll(run);

        Master& target = *m_masters[current];
        // Kill the master being pushed to once it has committed k of the ten
        // batches (k random; 0: during the SSH handshake), watched from the
        // shared store itself.
        const std::uint64_t before = watcher.countRecords("web1");
        const int k = std::uniform_int_distribution<int>(0, 9)(rng);
        std::thread killer([&, k, before] {
            waitUntil([&] { return watcher.countRecords("web1") >= before + static_cast<std::uint64_t>(k) * 10; },
                      std::chrono::seconds(20), std::chrono::milliseconds(1));
            target.collector->kill();
        });
        try {
            pushTo(target, spool);
            ++pushes;
        } catch (const std::exception&) {
            // The node's failover: the other master, as pushd tries its list.
            ++failovers;
        }
        killer.join();
        ++kills;
        const std::size_t other = 1 - current;
        ASSERT_NO_THROW(pushTo(*m_masters[other], spool)) << "the other master must take the push";
        ++pushes;
        target.startCollector();
        current = other;
    }
    // Drain whatever is left through either master.
    pushTo(*m_masters[0], spool);
    EXPECT_EQ(spool.stats().records, 0u) << "everything was acknowledged";

    PgStore store(m_conninfo);
    const Epoch epoch = spool.epoch();
    EXPECT_EQ(store.countRecords("web1"), appended.size()) << "no record lost, none stored twice";
    const auto rows = store.connection().exec(
        "SELECT seq::text AS seq_text, payload FROM records WHERE node = 'web1' AND epoch = $1 ORDER BY records.seq",
        {PgParam::text(epoch.hex())}, true);
    ASSERT_EQ(static_cast<std::size_t>(rows.rows()), appended.size());
    std::size_t mismatched = 0;
    std::string first;
    for (int i = 0; i < rows.rows(); ++i) {
        const std::string stored = rows.text(i, 1);
        if (rows.int64(i, 0) != i + 1 || stored != appended[static_cast<std::size_t>(i)]) {
            if (first.empty())
                first = "seq " + rows.text(i, 0) + ": stored '" + escapeForLog(stored) + "', spooled '" +
                        escapeForLog(appended[static_cast<std::size_t>(i)]) + "'";
            ++mismatched;
        }
    }
    EXPECT_EQ(mismatched, 0u) << "each (node, epoch, seq) holds what the node spooled under it; first difference: "
                              << first;
    EXPECT_GE(failovers, kKills / 2) << "most kills must interrupt a push";
    std::printf("two masters on PostgreSQL: %d kills of the master being pushed to, %d pushes, %d interrupted (failover), "
                "%zu records spooled, %llu stored, lost %zd, duplicated 0 (primary key)\n",
                kills, pushes, failovers, appended.size(),
                static_cast<unsigned long long>(store.countRecords("web1")),
                static_cast<std::ptrdiff_t>(appended.size()) - static_cast<std::ptrdiff_t>(store.countRecords("web1")));
}

} // namespace
