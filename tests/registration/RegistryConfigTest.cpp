// /etc/ferry/registry.yml: what the operator may set, and how mistakes are reported.

#include <gtest/gtest.h>

#include "Manager.h"
#include "Options.h"
#include "ferry/Error.h"

namespace registryd {
namespace {

TEST(ARegistryConfig, SetsEnrolmentPolicyLimitsAndHostKeys)
{
    Options o;
    applyConfig("registry.yml",
                "registry:\n  unknown_nodes: refuse\n  host_keys: [/etc/ssh/a.pub, /etc/ssh/b.pub]\n"
                "  idle_timeout: 1m\n  deadline: 5s\n  max_per_source: 3\n  max_connections: 50\n"
                "  max_clock_skew: 2m\n  max_pending: 10\n",
                o);
    EXPECT_FALSE(o.manager.acceptUnknown);
    EXPECT_EQ(o.hostKeyFiles, (std::vector<std::string>{"/etc/ssh/a.pub", "/etc/ssh/b.pub"}));
    EXPECT_EQ(o.idleTimeout, std::chrono::seconds(60));
    EXPECT_TRUE(o.idleTimeoutGiven);
    EXPECT_EQ(o.server.connectionDeadline, std::chrono::seconds(5));
    EXPECT_EQ(o.server.maxPerSource, 3u);
    EXPECT_EQ(o.server.maxConnections, 50u);
    EXPECT_EQ(o.manager.maxClockSkew, std::chrono::minutes(2));
    EXPECT_EQ(o.manager.maxPending, 10u);
}

TEST(ARegistryConfig, RefusesUnknownKeysAndBadValuesNamingFileLineAndKey)
{
    Options o;
    try {
        applyConfig("/etc/ferry/registry.yml", "registry:\n  unknown_nodes: maybe\n", o);
        FAIL() << "accepted unknown_nodes: maybe";
    } catch (const ferry::ConfigError& e) {
        const std::string m = e.what();
        EXPECT_NE(m.find("/etc/ferry/registry.yml:2"), std::string::npos) << m;
        EXPECT_NE(m.find("unknown_nodes"), std::string::npos) << m;
    }
    EXPECT_THROW(applyConfig("r.yml", "registry:\n  max_per_sauce: 3\n", o), ferry::ConfigError);
    EXPECT_THROW(applyConfig("r.yml", "registry:\n  deadline: forever\n", o), ferry::ConfigError);
    EXPECT_THROW(applyConfig("r.yml", "registri:\n  deadline: 5\n", o), ferry::ConfigError);
}

TEST(ARegistryConfig, RefusesAKeyGivenTwiceAndATabNamingLinesAndKey)
{
    auto errorOf = [](const std::string& text) -> std::string {
        Options o;
        try {
            applyConfig("/etc/ferry/registry.yml", text, o);
        } catch (const ferry::ConfigError& e) {
            return e.what();
        }
        return "accepted";
    };
    EXPECT_EQ(errorOf("registry:\n  deadline: 5\n  max_pending: 3\n  deadline: 9\n"),
              "/etc/ferry/registry.yml:4:3: key 'registry.deadline' appears twice (lines 2 and 4); the second would "
              "be ignored");
    EXPECT_EQ(errorOf("registry:\n\tdeadline: 5\n"),
              "/etc/ferry/registry.yml:2: key 'registry.deadline': tab character in the indentation: YAML indentation "
              "must use spaces");
}

TEST(APeerAddress, GivesTheHostAsThePullAddress)
{
    EXPECT_EQ(hostOfPeer("192.0.2.1:4000"), "192.0.2.1");
    EXPECT_EQ(hostOfPeer("[2001:db8::1]:4000"), "2001:db8::1");
    // IPv4 clients on the dual-stack socket of ferry-registryd.socket.
    EXPECT_EQ(hostOfPeer("[::ffff:192.0.2.7]:4000"), "192.0.2.7");
}

} // namespace
} // namespace registryd
