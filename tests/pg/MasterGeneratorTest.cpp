// ferry-master-generator (issue 15): with store.yml naming PostgreSQL across
// the network, the master units that are shipped without network access get
// drop-ins opening it, and systemd reads them so (systemd-analyze security
// --offline on the shipped units plus the generated drop-ins); with master.db
// or PostgreSQL on a Unix socket nothing is generated and the sandboxes stay
// strict. A CA key in registry.yml enables ferry-krl-sync.timer.

#include <gtest/gtest.h>

#include <filesystem>

#include "support/TestSupport.h"

namespace ferry::test {
namespace {

class TheMasterGenerator : public ::testing::Test {
protected:
    void SetUp() override { std::filesystem::create_directories(m_etc); }

    RunResult generate(const std::string& storeYml, const std::string& registryYml = {})
    {
        if (!storeYml.empty())
            writeFile(m_etc + "/store.yml", storeYml, 0644);
        if (!registryYml.empty())
            writeFile(m_etc + "/registry.yml", registryYml, 0644);
        std::filesystem::create_directories(m_out);
        return run(
            {buildPath("services/master-generator/ferry-master-generator"), m_out, m_out + "-early", m_out + "-late"},
            {{"FERRY_CONFIG_DIR", m_etc}});
    }

    std::vector<std::string> generated() const
    {
        std::vector<std::string> out;
        for (const auto& e : std::filesystem::recursive_directory_iterator(m_out))
            if (!e.is_directory())
                out.push_back(std::filesystem::relative(e.path(), m_out).string());
        std::sort(out.begin(), out.end());
        return out;
    }

    // What systemd makes of the shipped unit with what was generated.
    std::string security(const std::string& unit)
    {
        const std::string units = m_root / "units";
        std::filesystem::create_directories(units);
        std::filesystem::copy_file(sourcePath("units/" + unit), units + "/" + unit,
                                   std::filesystem::copy_options::overwrite_existing);
        if (std::filesystem::exists(m_out + "/" + unit + ".d"))
            std::filesystem::copy(m_out + "/" + unit + ".d", units + "/" + unit + ".d",
                                  std::filesystem::copy_options::recursive |
                                      std::filesystem::copy_options::overwrite_existing);
        const auto r = run({"systemd-analyze", "security", "--offline=true", units + "/" + unit},
                           {{"SYSTEMD_UNIT_PATH", units + ":"}});
        return r.out + r.err;
    }

    static bool mayUseInternetSockets(const std::string& report)
    {
        return report.find("Service may allocate Internet sockets") != std::string::npos;
    }

    static constexpr const char* kDropIns[] = {
        "ferry-collectord.service.d/50-ferry-store-network.conf",
        "ferry-krl-sync.service.d/50-ferry-store-network.conf",
        "ferry-registryd.service.d/50-ferry-store-network.conf",
    };

    TempDir m_root;
    std::string m_etc = m_root / "etc";
    std::string m_out = m_root / "generator";
};

TEST_F(TheMasterGenerator, LeavesTheSandboxesAloneForMasterDb)
{
    const auto r = generate("");
    EXPECT_EQ(r.exitCode, 0) << r.err;
    EXPECT_EQ(r.err, "");
    EXPECT_TRUE(generated().empty());
    const auto registryd = security("ferry-registryd.service");
    EXPECT_FALSE(mayUseInternetSockets(registryd)) << registryd;
    EXPECT_NE(registryd.find("Service has no access to the host's network"), std::string::npos) << registryd;
}

TEST_F(TheMasterGenerator, LeavesTheSandboxesAloneForADatabaseOnAUnixSocket)
{
    for (const std::string conninfo : {"host=/run/postgresql dbname=ferry user=ferry", "dbname=ferry",
                                       "postgresql:///ferry?host=/var/run/postgresql"}) {
        std::filesystem::remove_all(m_out);
        const auto r = generate("postgresql: \"" + conninfo + "\"\n");
        EXPECT_EQ(r.exitCode, 0) << r.err;
        EXPECT_TRUE(generated().empty()) << conninfo;
    }
}

TEST_F(TheMasterGenerator, OpensTheNetworkForADatabaseAcrossIt)
{
    const auto r = generate("postgresql: \"host=db.example port=5432 dbname=ferry passfile=/etc/ferry/pgpass\"\n");
    ASSERT_EQ(r.exitCode, 0) << r.err;
    EXPECT_EQ(generated(), std::vector<std::string>(std::begin(kDropIns), std::end(kDropIns)));
    const auto dropIn = readFile(m_out + "/" + kDropIns[2]);
    RecordProperty("registryd drop-in", dropIn);
    EXPECT_NE(dropIn.find("the store is PostgreSQL at db.example"), std::string::npos) << dropIn;
    EXPECT_NE(dropIn.find(m_etc + "/store.yml"), std::string::npos) << dropIn;

    for (const auto* unit : {"ferry-registryd.service", "ferry-krl-sync.service"}) {
        const auto report = security(unit);
        EXPECT_TRUE(mayUseInternetSockets(report)) << unit << "\n" << report;
        EXPECT_NE(report.find("Service has access to the host's network"), std::string::npos) << unit << report;
        // The rest of the sandbox is the shipped one.
        EXPECT_NE(report.find("Service cannot allocate netlink sockets"), std::string::npos) << unit << report;
        EXPECT_NE(report.find("Service runs under a static non-root user identity"), std::string::npos)
            << unit << report;
    }
    const auto collectord = readFile(m_out + "/" + kDropIns[0]);
    EXPECT_NE(collectord.find("RestrictAddressFamilies=AF_UNIX AF_INET AF_INET6 AF_NETLINK\n"), std::string::npos)
        << collectord;
    const auto report = security("ferry-collectord.service");
    EXPECT_TRUE(mayUseInternetSockets(report)) << report;
}

TEST_F(TheMasterGenerator, FindsTheHostInEveryFormLibpqTakes)
{
    for (const std::string conninfo :
         {"postgresql://ferry@db.example:5432/ferry", "hostaddr=192.0.2.10 dbname=ferry",
          "host=/run/postgresql,db2.example dbname=ferry", "host=127.0.0.1 dbname=ferry"}) {
        std::filesystem::remove_all(m_out);
        const auto r = generate("postgresql: \"" + conninfo + "\"\n");
        EXPECT_EQ(r.exitCode, 0) << r.err;
        EXPECT_EQ(generated().size(), 3u) << conninfo << ": TCP, even to loopback, needs the host's network";
    }
    EXPECT_NE(readFile(m_out + "/" + kDropIns[2]).find("at 127.0.0.1,"), std::string::npos);
}

TEST_F(TheMasterGenerator, SaysWhyAndWritesNothingForABadStoreYml)
{
    const auto r = generate("postgresql: \"host=db.example password=secret\"\n");
    EXPECT_EQ(r.exitCode, 0) << "a generator failing would not make the unit work either";
    EXPECT_NE(r.err.find("leaving the master units' network closed"), std::string::npos) << r.err;
    EXPECT_NE(r.err.find("store.yml"), std::string::npos) << r.err;
    EXPECT_EQ(r.err.find("secret"), std::string::npos) << "never echo a password: " << r.err;
    EXPECT_TRUE(generated().empty());
}

TEST_F(TheMasterGenerator, EnablesTheKrlSyncTimerWhenACaIsConfigured)
{
    auto r = generate("", "registry:\n  unknown_nodes: refuse\n");
    ASSERT_EQ(r.exitCode, 0) << r.err;
    EXPECT_TRUE(generated().empty());
    r = generate("", "registry:\n  ca_key: /etc/ferry/ca\n");
    ASSERT_EQ(r.exitCode, 0) << r.err;
    EXPECT_EQ(generated(), std::vector<std::string>{"timers.target.wants/ferry-krl-sync.timer"});
    EXPECT_EQ(std::filesystem::read_symlink(m_out + "/timers.target.wants/ferry-krl-sync.timer"),
              "/usr/lib/systemd/system/ferry-krl-sync.timer");
    // A second run (daemon-reload) finds its own link.
    r = generate("", "registry:\n  ca_key: /etc/ferry/ca\n");
    EXPECT_EQ(r.exitCode, 0) << r.err;
}

} // namespace
} // namespace ferry::test
