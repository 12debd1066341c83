// Issue 12, item 2 on PostgreSQL: ferry-metricsd and ferry-remote-write read
// the shared store through a role of their own (store.yml
// `readers_postgresql:`, granted by `ferryctl master grant-readers`) that
// reads records, reports, counters and nodes' public columns, and no node
// key. The daemons' role is made unable to log in while they run, so a
// reader that still used it would serve nothing; the readers' role is then
// tried as an attacker holding its credentials would.

#include <gtest/gtest.h>

#include <filesystem>

#include <nlohmann/json.hpp>

#include "ferry/Clock.h"
#include "ferry/Crypto.h"
#include "ferry/PgConnection.h"
#include "ferry/PgSqlConnection.h"
#include "ferry/PgStore.h"
#include "support/PgCluster.h"
#include "support/TestSupport.h"

using namespace ferry;
using namespace ferry::test;

namespace {

std::string asUser(std::string conninfo, const std::string& user)
{
    conninfo.replace(conninfo.find("user=postgres"), 13, "user=" + user);
    return conninfo;
}

// A sample line of the exposition: the series, its value, then a timestamp or the line's end.
bool hasSample(const std::string& exposition, const std::string& series, const std::string& value)
{
    const std::string head = series + " " + value;
    for (auto at = exposition.find(head); at != std::string::npos; at = exposition.find(head, at + 1)) {
        const auto next = at + head.size();
        if ((at == 0 || exposition[at - 1] == '\n') &&
            (next == exposition.size() || exposition[next] == ' ' || exposition[next] == '\n'))
            return true;
    }
    return false;
}

class AReadersRole : public ::testing::Test {
protected:
    void SetUp() override
    {
        if (!PgCluster::available())
            GTEST_SKIP() << "needs root and postgresql-15 (scripts/install-deps installs it)";
        m_pg = std::make_unique<PgCluster>();
        m_admin = m_pg->conninfo();
        // As an operator would: the daemons' role owns the database (and so
        // the schema the first master creates); the readers' role only logs in.
        PgConnection(m_admin).execScript(R"SQL(
CREATE ROLE ferry LOGIN;
ALTER DATABASE ferry OWNER TO ferry;
CREATE ROLE "ferry-readers" LOGIN;
)SQL");
        m_daemons = asUser(m_admin, "ferry");
        m_readers = asUser(m_admin, "ferry-readers");
        std::filesystem::create_directories(m_dir / "etc");
        std::filesystem::create_directories(m_dir / "state");
    }

    void writeStoreYml(bool withReaders)
    {
        writeFile(m_dir / "etc/store.yml", "postgresql: \"" + m_daemons + "\"\n" +
                                               (withReaders ? "readers_postgresql: \"" + m_readers + "\"\n" : ""));
    }

    std::map<std::string, std::string> env() const
    {
        return {{"FERRY_CONFIG_DIR", m_dir / "etc"},
                {"FERRY_STATE_DIR", m_dir / "state"},
                {"DBUS_SYSTEM_BUS_ADDRESS", "unix:path=/nonexistent"}};
    }

    RunResult ferryctl(const std::vector<std::string>& args) const
    {
        std::vector<std::string> argv{buildPath("services/ferryctl/ferryctl")};
        argv.insert(argv.end(), args.begin(), args.end());
        return run(argv, env());
    }

    // ferry-metricsd without --store (the store that store.yml names), scraped once.
    RunResult scrape(const std::string& log)
    {
        const int port = freePort();
        Process metricsd({buildPath("services/metricsd/ferry-metricsd"), "-v",
                          "--listen=127.0.0.1:" + std::to_string(port), "--idle-timeout=0"},
                         env(), log);
        RunResult r;
        waitUntil(
            [&] {
                r = run({"curl", "-sS", "--fail", "--max-time", "10",
                         "http://127.0.0.1:" + std::to_string(port) + "/metrics"});
                return r.exitCode == 0 || !metricsd.running();
            },
            std::chrono::seconds(20), std::chrono::milliseconds(200));
        return r;
    }

    TempDir m_dir;
    std::unique_ptr<PgCluster> m_pg;
    std::string m_admin, m_daemons, m_readers;
};

TEST_F(AReadersRole, ServesMetricsdAndRemoteWriteButReadsNoNodeKey)
{
    const std::int64_t now = nowMs();
    {
        PgStore store(m_daemons);
        store.addNode("web1", generateSecret());
        store.storeBatch("web1", Epoch::fromHex("0102030405060708090a0b0c0d0e0f00", "test epoch"),
                         {{1, now - 1000, "load", "load1 0.75\nload5 0.5\nload15 0.25\n"},
                          {2, now, "load", "load1 0.5\nload5 0.25\nload15 0.125\n"}},
                         "push");
    }
    // A wider grant made by hand earlier: grant-readers takes it back.
    PgConnection admin(m_admin);
    admin.execScript(R"SQL(GRANT SELECT ON ALL TABLES IN SCHEMA public TO "ferry-readers";)SQL");
    writeStoreYml(true);
    const auto granted = ferryctl({"master", "grant-readers", "ferry-readers"});
    ASSERT_EQ(granted.exitCode, 0) << granted.out << granted.err;
    EXPECT_NE(granted.out.find("REVOKE ALL ON ALL TABLES IN SCHEMA public FROM \"ferry-readers\""), std::string::npos)
        << granted.out;
    // Roles that would read the keys whatever is granted are refused.
    const auto self = ferryctl({"master", "grant-readers", "ferry"});
    EXPECT_EQ(self.exitCode, 1) << self.out;
    EXPECT_NE(self.err.find("a role of their own"), std::string::npos) << self.err;
    const auto super = ferryctl({"master", "grant-readers", "postgres"});
    EXPECT_EQ(super.exitCode, 1) << super.out;
    EXPECT_NE(super.err.find("superuser"), std::string::npos) << super.err;

    // From here only the readers' role can log in.
    admin.exec("ALTER ROLE ferry NOLOGIN");

    const auto metrics = scrape(m_dir / "metricsd.log");
    ASSERT_EQ(metrics.exitCode, 0) << metrics.err << readFile(m_dir / "metricsd.log");
    EXPECT_TRUE(hasSample(metrics.out, "node_load1{node=\"web1\"}", "0.5")) << metrics.out.substr(0, 3000);
    EXPECT_TRUE(hasSample(metrics.out, "ferry_node_records_stored_total{node=\"web1\"}", "2"))
        << metrics.out.substr(0, 3000);
    EXPECT_TRUE(hasSample(metrics.out, "ferry_records_stored_total{via=\"push\"}", "2")) << metrics.out.substr(0, 3000);
    EXPECT_EQ(readFile(m_dir / "metricsd.log").find("readers_postgresql"), std::string::npos)
        << "no warning when the readers have their role: " << readFile(m_dir / "metricsd.log");

    // ferry-remote-write into a real Prometheus, through the same role.
    const int promPort = freePort();
    writeFile(m_dir / "prometheus.yml", "global:\n  scrape_interval: 1m\nstorage:\n  tsdb:\n"
                                        "    out_of_order_time_window: 7d\n");
    Process prometheus({"/usr/bin/prometheus", "--config.file=" + (m_dir / "prometheus.yml"),
                        "--storage.tsdb.path=" + (m_dir / "prom-data"),
                        "--web.listen-address=127.0.0.1:" + std::to_string(promPort),
                        "--web.enable-remote-write-receiver", "--log.level=warn"},
                       {}, m_dir / "prometheus.log");
    const std::string prom = "http://127.0.0.1:" + std::to_string(promPort);
    ASSERT_TRUE(waitUntil(
        [&] {
            return run({"curl", "-sf", "-o", "/dev/null", prom + "/-/ready"}).exitCode == 0;
        },
        std::chrono::seconds(60), std::chrono::milliseconds(200)))
        << readFile(m_dir / "prometheus.log");
    writeFile(m_dir / "etc/metrics.yml", "remote_write:\n  url: " + prom +
                                             "/api/v1/write\n  min_backoff: 0\n  max_backoff: 1s\n"
                                             "  retry_for: 5s\n  timeout: 10s\n");
    const auto written =
        run({buildPath("services/metricsd/ferry-remote-write"), "-v"}, env(), {}, std::chrono::seconds(120));
    ASSERT_EQ(written.exitCode, 0) << written.out << written.err;
    EXPECT_NE(written.err.find("Remote-write: 6 samples sent"), std::string::npos) << written.err;
    nlohmann::json series;
    EXPECT_TRUE(waitUntil(
        [&] {
            const auto q = run({"curl", "-sS", "--fail", "-G", prom + "/api/v1/query", "--data-urlencode",
                                "query=node_load5{node=\"web1\"}"});
            if (q.exitCode != 0)
                return false;
            series = nlohmann::json::parse(q.out)["data"]["result"];
            return !series.empty();
        },
        std::chrono::seconds(20), std::chrono::milliseconds(250)))
        << readFile(m_dir / "prometheus.log");
    ASSERT_EQ(series.size(), 1u) << series.dump();
    EXPECT_EQ(series[0]["value"][1], "0.25");

    // The role itself, as whoever holds its credentials.
    PgConnection reader(m_readers);
    EXPECT_EQ(reader.exec("SELECT count(*) FROM records").int64(0, 0), 2);
    for (const char* attack :
         {"SELECT * FROM node_keys", "SELECT secret FROM node_keys", "SELECT secret FROM nodes",
          "SELECT pending_request, pending_mac FROM nodes", "SELECT * FROM nodes", "SELECT * FROM pull_state",
          "DELETE FROM records", "UPDATE nodes SET state = 'accepted'",
          "INSERT INTO node_keys (node, secret) VALUES ('evil', 'k')", "UPDATE ferry_schema SET version = 0"}) {
        try {
            reader.exec(attack);
            ADD_FAILURE() << "the readers' role ran: " << attack;
        } catch (const Error& e) {
            EXPECT_NE(std::string(e.what()).find("permission denied"), std::string::npos) << attack << ": " << e.what();
        }
    }

    // Without readers_postgresql: the daemons' connection, after a warning.
    admin.exec("ALTER ROLE ferry LOGIN");
    writeStoreYml(false);
    const auto fallback = scrape(m_dir / "metricsd-fallback.log");
    ASSERT_EQ(fallback.exitCode, 0) << fallback.err << readFile(m_dir / "metricsd-fallback.log");
    EXPECT_TRUE(hasSample(fallback.out, "node_load1{node=\"web1\"}", "0.5")) << fallback.out.substr(0, 3000);
    const std::string log = readFile(m_dir / "metricsd-fallback.log");
    EXPECT_NE(log.find("set readers_postgresql:"), std::string::npos) << log;
    EXPECT_NE(log.find(m_dir / "etc/store.yml"), std::string::npos) << log;
}

TEST_F(AReadersRole, RefusesWithAClearErrorAStoreItMayNotOrCannotRead)
{
    // No master has created the schema: a reader does not create it.
    try {
        PgSqlConnection::openReader(m_daemons);
        ADD_FAILURE() << "a reader opened a store without a schema";
    } catch (const Error& e) {
        EXPECT_NE(std::string(e.what()).find("schema version 0"), std::string::npos) << e.what();
        EXPECT_NE(std::string(e.what()).find("readers never migrate"), std::string::npos) << e.what();
    }
    EXPECT_EQ(PgConnection(m_admin).exec("SELECT count(*) FROM pg_tables WHERE tablename = 'ferry_schema'").int64(0, 0),
              0);
    PgStore store(m_daemons);
    // The role without its grants: the error says what to run.
    try {
        PgSqlConnection::openReader(m_readers);
        ADD_FAILURE() << "a role without the readers' grants read the schema version";
    } catch (const Error& e) {
        EXPECT_NE(std::string(e.what()).find("permission denied"), std::string::npos) << e.what();
        EXPECT_NE(std::string(e.what()).find("ferryctl master grant-readers"), std::string::npos) << e.what();
    }
    PgStore::grantReaders(store.connection(), "ferry-readers");
    EXPECT_NO_THROW(PgSqlConnection::openReader(m_readers));
    // readers_postgresql: alone would split the daemons and the readers.
    writeFile(m_dir / "etc/store.yml", "readers_postgresql: \"" + m_readers + "\"\n");
    const auto refused = run({buildPath("services/metricsd/ferry-metricsd"), "--listen=127.0.0.1:1"}, env());
    EXPECT_EQ(refused.exitCode, 1);
    EXPECT_NE(refused.err.find("readers_postgresql"), std::string::npos) << refused.err;
    EXPECT_NE(refused.err.find("needs `postgresql:`"), std::string::npos) << refused.err;
}

} // namespace
