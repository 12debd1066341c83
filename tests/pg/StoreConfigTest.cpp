// store.yml's keys (StoreConfig) and the pool size of MasterStoreOpener,
// without a database: a pool shared by users who each hold one connection
// while they borrow another (pulld's pulls, two pullers on one opener) is
// sized to what they need at once, so that none waits 10 s and fails.

#include <gtest/gtest.h>

#include <spdlog/sinks/ostream_sink.h>
#include <spdlog/spdlog.h>

#include <sstream>

#include "ferry/PgPool.h"
#include "ferry/StoreConfig.h"

using namespace ferry;

namespace {

class AStoreConfig : public ::testing::Test {
protected:
    void SetUp() override
    {
        m_previous = spdlog::default_logger();
        auto sink = std::make_shared<spdlog::sinks::ostream_sink_mt>(m_log);
        sink->set_pattern("%l %v");
        spdlog::set_default_logger(std::make_shared<spdlog::logger>("test", sink));
    }
    void TearDown() override { spdlog::set_default_logger(m_previous); }

    std::string takeLog()
    {
        const std::string out = m_log.str();
        m_log.str({});
        return out;
    }

    static std::string refusal(const std::string& text)
    {
        try {
            parseStoreConfig("/etc/ferry/store.yml", text);
        } catch (const std::exception& e) {
            return e.what();
        }
        return "(accepted)";
    }

    std::ostringstream m_log;
    std::shared_ptr<spdlog::logger> m_previous;
};

TEST_F(AStoreConfig, GivesTheReadersTheirOwnConnectionAndWarnsOnceWithoutIt)
{
    const auto both = parseStoreConfig("/etc/ferry/store.yml", "postgresql: \"dbname=ferry user=ferry\"\n"
                                                               "readers_postgresql: \"dbname=ferry user=r\"\n");
    EXPECT_EQ(readerConnection(both, "ferry-metricsd"), "dbname=ferry user=r");
    EXPECT_EQ(takeLog(), "");

    const auto daemonsOnly = parseStoreConfig("/etc/ferry/store.yml", "postgresql: \"dbname=ferry user=ferry\"\n");
    EXPECT_EQ(readerConnection(daemonsOnly, "ferry-remote-write"), "dbname=ferry user=ferry");
    const std::string warning = takeLog();
    EXPECT_EQ(warning.rfind("warning ferry-remote-write reads the PostgreSQL store with the daemons' connection", 0),
              0u)
        << warning;
    EXPECT_NE(warning.find("/etc/ferry/store.yml"), std::string::npos) << warning;
    EXPECT_NE(warning.find("set readers_postgresql:"), std::string::npos) << warning;
    EXPECT_EQ(std::count(warning.begin(), warning.end(), '\n'), 1) << warning;

    EXPECT_EQ(readerConnection(parseStoreConfig("store.yml", ""), "ferry-metricsd"), "") << "master.db";
    EXPECT_EQ(takeLog(), "");
}

TEST_F(AStoreConfig, RefusesAReadersConnectionWithoutTheStoreOrWithAPassword)
{
    const auto alone = refusal("readers_postgresql: \"dbname=ferry user=r\"\n");
    EXPECT_NE(alone.find("/etc/ferry/store.yml"), std::string::npos) << alone;
    EXPECT_NE(alone.find("readers_postgresql"), std::string::npos) << alone;
    EXPECT_NE(alone.find("needs `postgresql:`"), std::string::npos) << alone;
    const auto password = refusal("postgresql: \"dbname=ferry\"\nreaders_postgresql: \"dbname=ferry password=x1\"\n");
    EXPECT_NE(password.find("readers_postgresql"), std::string::npos) << password;
    EXPECT_NE(password.find("must not contain a password"), std::string::npos) << password;
    EXPECT_EQ(password.find("x1"), std::string::npos) << password;
}

TEST_F(AStoreConfig, SizesASharedPoolToWhatItsUsersHoldAtOnceAndSaysSo)
{
    auto config = parseStoreConfig("/etc/ferry/store.yml", "postgresql: \"host=/nonexistent dbname=ferry\"\n"
                                                           "connections: 1\n");
    ASSERT_EQ(config.connections, 1u);
    const MasterStoreOpener opener(config, "/nonexistent/master.db");
    ASSERT_EQ(opener.pool()->maxConnections(), 1u);
    // One puller with two pulls at once holds up to three.
    opener.reserveConnections(3, "2 concurrent pulls and one to spare");
    EXPECT_EQ(opener.pool()->maxConnections(), 3u);
    const std::string warning = takeLog();
    EXPECT_EQ(warning.rfind("warning /etc/ferry/store.yml sets connections: 1, fewer than this daemon holds at once "
                            "(3, of which 3 for 2 concurrent pulls and one to spare)",
                            0),
              0u)
        << warning;
    EXPECT_NE(warning.find("set connections: 3 or more"), std::string::npos) << warning;
    // A second puller on a copy of the opener shares the pool, and adds its own.
    const MasterStoreOpener copy = opener;
    copy.reserveConnections(3, "2 concurrent pulls and one to spare");
    EXPECT_EQ(opener.pool()->maxConnections(), 6u);
    EXPECT_NE(takeLog().find("(6, of which 3 for"), std::string::npos);
    // Within the bound: nothing to say.
    auto roomy = config;
    roomy.connections = 8;
    const MasterStoreOpener enough(roomy, "/nonexistent/master.db");
    enough.reserveConnections(3, "2 concurrent pulls and one to spare");
    EXPECT_EQ(enough.pool()->maxConnections(), 8u);
    EXPECT_EQ(takeLog(), "");
}

TEST_F(AStoreConfig, RaisesTheDefaultPoolWithoutAWarningAndLeavesMasterDbAlone)
{
    const auto config = parseStoreConfig("/etc/ferry/store.yml", "postgresql: \"host=/nonexistent dbname=ferry\"\n");
    EXPECT_FALSE(config.connections.has_value());
    const MasterStoreOpener opener(config, "/nonexistent/master.db");
    opener.reserveConnections(9, "8 concurrent pulls and one to spare");
    EXPECT_EQ(opener.pool()->maxConnections(), 9u);
    const std::string line = takeLog();
    EXPECT_EQ(line.rfind("info Holding up to 9 PostgreSQL connections, not the default 8", 0), 0u) << line;

    const MasterStoreOpener sqlite(parseStoreConfig("store.yml", ""), "/nonexistent/master.db");
    sqlite.reserveConnections(9, "8 concurrent pulls and one to spare");
    EXPECT_EQ(sqlite.pool(), nullptr);
    EXPECT_EQ(takeLog(), "");
}

} // namespace
