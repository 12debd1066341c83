// The ferry-pulld binary on a private bus, called through the generated
// proxy, pulling a real node through real sshd and the real login shell.
#include <filesystem>

#include <gtest/gtest.h>
#include <sdbus-c++/sdbus-c++.h>

#include "NodeSshd.h"
#include "ferry/Bus.h"
#include "ferry/MasterStore.h"
#include "ferry/Spool.h"
#include "org.ferry.Pull1-proxy.h"

using namespace ferry::test;
using pulltest::NodeSshd;

namespace {

class Pull1Proxy final : public sdbus::ProxyInterfaces<org::ferry::Pull1_proxy> {
public:
    explicit Pull1Proxy(sdbus::IConnection& bus) : ProxyInterfaces(bus, "org.ferry.Pull1", "/org/ferry/Pull1")
    {
        registerProxy();
    }
    ~Pull1Proxy() { unregisterProxy(); }
};

} // namespace

TEST(ThePullDaemon, PullsANodeOnRequestAndReportsItInItsProperties)
{
    if (!isRoot())
        GTEST_SKIP() << "needs root to create a system user and run sshd";
    NodeSshd node;
    TempDir master;
    const std::string config = master / "etc";
    const std::string state = master / "state";
    std::filesystem::create_directories(config);
    std::filesystem::create_directories(state);
    {
        ferry::MasterStore store(ferry::masterStorePath(state));
        store.addNode(node.nodeName(), node.secret());
        ferry::Statement(store.database(),
                         "UPDATE nodes SET mode = 'auto', ssh_host = '127.0.0.1', ssh_port = ?1 WHERE name = ?2")
            .bind(1, static_cast<std::int64_t>(node.port()))
            .bind(2, node.nodeName())
            .run();
        ferry::Spool spool(node.spoolPath(), ferry::SpoolLimits{});
        for (int i = 0; i < 42; ++i)
            spool.append("load", "0.42", ferry::nowMs());
        node.chownHome();
    }
    writeFile(config + "/pulld.yml", "user: " + node.user() + "\nkey: " + node.restrictedKey() +
                                         "\nknown_hosts: " + node.knownHosts() + "\nconcurrency: 4\n");
    TestBus bus;
    Process pulld({buildPath("services/pulld/ferry-pulld"), "-v", "--no-round", "--idle-timeout=60"},
                  {{"FERRY_CONFIG_DIR", config}, {"FERRY_STATE_DIR", state}}, master / "pulld.log");

    auto connection = sdbus::createSystemBusConnection();
    std::unique_ptr<Pull1Proxy> proxy;
    ASSERT_TRUE(waitUntil(
        [&] {
            try {
                proxy = std::make_unique<Pull1Proxy>(*connection);
                return proxy->Concurrency() == 4;
            } catch (const sdbus::Error&) {
                return false;
            }
        },
        std::chrono::seconds(10)))
        << readFile(master / "pulld.log");

    const auto [records, summary] = proxy->PullNow(node.nodeName());
    EXPECT_EQ(records, 42u) << summary;
    EXPECT_NE(summary.find("pulled 42 records"), std::string::npos) << summary;

    const auto nodes = proxy->Nodes();
    ASSERT_EQ(nodes.size(), 1u);
    EXPECT_EQ(nodes[0].get<0>(), node.nodeName());
    EXPECT_GT(nodes[0].get<1>(), 0u);                   // last attempt
    EXPECT_EQ(nodes[0].get<1>(), nodes[0].get<2>());    // = last success
    EXPECT_EQ(nodes[0].get<3>().rfind("success: ", 0), 0u);
    EXPECT_EQ(nodes[0].get<4>(), 42u);
    EXPECT_EQ(nodes[0].get<6>(), 42u);  // cursor

    try {
        proxy->PullNow("no-such-node");
        ADD_FAILURE() << "PullNow of an unknown node succeeded";
    } catch (const sdbus::Error& e) {
        EXPECT_EQ(e.getName(), "org.ferry.Pull1.Error.UnknownNode");
    }

    // A forced round over the bus pulls the (auto-mode) node again.
    const auto [pulled, failed] = proxy->PullAll();
    EXPECT_EQ(pulled, 1u);
    EXPECT_EQ(failed, 0u);
}
