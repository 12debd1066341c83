#include <gtest/gtest.h>

#include "ferry/Error.h"
#include "ferry/NodeConfig.h"

namespace ferry {
namespace {

std::string errorOf(const std::string& text, bool plugins = false)
{
    try {
        if (plugins)
            parsePluginsConfig("/etc/ferry/plugins.yml", text);
        else
            parseNodeConfig("/etc/ferry/ferry.yml", text);
    } catch (const ConfigError& e) {
        return e.what();
    }
    return "";
}

TEST(ANodeConfig, UsesDocumentedDefaultsForAnEmptyFile)
{
    const auto c = parseNodeConfig("ferry.yml", "");
    EXPECT_EQ(c.mode, TransportMode::Auto);
    EXPECT_TRUE(c.masters.empty());
    EXPECT_EQ(c.sshPort, 22);
    EXPECT_EQ(c.pullAbsence, std::chrono::minutes(15));
    EXPECT_EQ(c.collectorPort, 50009);
}

TEST(ANodeConfig, ReadsMastersInOrderInBothForms)
{
    const auto c = parseNodeConfig("ferry.yml",
                                   "node:\n  name: web1\n  mode: push\nmasters:\n  - 192.0.2.10\n  - 192.0.2.11:2222\n"
                                   "  - host: 192.0.2.12\n    ssh_port: 22\n    registry_port: 50010\n  - '[2001:db8::1]:22'\n");
    ASSERT_EQ(c.masters.size(), 4u);
    EXPECT_EQ(c.masters[0].host, "192.0.2.10");
    EXPECT_EQ(c.masters[1].sshPort, 2222);
    EXPECT_EQ(c.masters[2].host, "192.0.2.12");
    EXPECT_EQ(c.masters[3].host, "2001:db8::1");
    EXPECT_EQ(c.nodeName, "web1");
    EXPECT_EQ(c.mode, TransportMode::Push);
}

TEST(ANodeConfig, NamesFileLineAndKeyOfAnUnknownKey)
{
    EXPECT_EQ(errorOf("node:\n  name: web1\n  colour: blue\n"), "/etc/ferry/ferry.yml:3:3: key 'node.colour': unknown key");
}

TEST(ANodeConfig, NamesFileLineAndKeyOfAWrongType)
{
    EXPECT_EQ(errorOf("node:\n  ssh_port: twenty-two\n"),
              "/etc/ferry/ferry.yml:2:3: key 'node.ssh_port': expected an integer from 1 to 65535, got 'twenty-two'");
    EXPECT_EQ(errorOf("masters:\n  - host: 192.0.2.1\n    ssh_port: 70000\n"),
              "/etc/ferry/ferry.yml:3:5: key 'masters[0].ssh_port': expected an integer from 1 to 65535, got '70000'");
    EXPECT_EQ(errorOf("node: [1, 2]\n"), "/etc/ferry/ferry.yml:1:1: key 'node': expected a mapping of keys to values");
}

TEST(ANodeConfig, RefusesABadModeAndABadMasterAddress)
{
    EXPECT_NE(errorOf("node:\n  mode: sometimes\n").find("key 'node.mode': expected auto, push or pull"), std::string::npos);
    EXPECT_NE(errorOf("masters:\n  - 'bad host!'\n").find(":2:5: key 'masters[0]'"), std::string::npos);
    EXPECT_NE(errorOf("masters:\n  - 192.0.2.1:0\n").find("not a port"), std::string::npos);
}

TEST(ANodeConfig, RefusesInvalidYamlWithItsPosition)
{
    EXPECT_NE(errorOf("node:\n  name: [unclosed\n").find("/etc/ferry/ferry.yml:"), std::string::npos);
    EXPECT_NE(errorOf("node:\n  name: [unclosed\n").find("invalid YAML"), std::string::npos);
}

TEST(APluginsConfig, ReadsTheSendersPeriodAsInTheSeed)
{
    EXPECT_EQ(parsePluginsConfig("plugins.yml", "sender:\n  period: 60\n").period, std::chrono::seconds(60));
    EXPECT_EQ(parsePluginsConfig("plugins.yml", "").period, std::chrono::seconds(240));
    EXPECT_EQ(parsePluginsConfig("plugins.yml", "sender:\n  period: 5m\n").period, std::chrono::seconds(300));
}

TEST(APluginsConfig, RefusesTabsAsTheSeedWarns)
{
    EXPECT_EQ(errorOf("sender:\n\tperiod: 60\n", true),
              "/etc/ferry/plugins.yml:2: tab character: YAML indentation must use spaces");
}

TEST(APluginsConfig, RefusesAPeriodBelowTheFloor)
{
    EXPECT_NE(errorOf("sender:\n  period: 1\n", true).find("key 'sender.period': expected a duration from 10s"),
              std::string::npos);
}

} // namespace
} // namespace ferry

namespace ferry {
namespace {

TEST(ANodeConfig, ReadsSizesAndDurationsWithUnits)
{
    const auto c = parseNodeConfig("ferry.yml", "spool:\n  max_bytes: 64M\n  max_age: 2d\n");
    EXPECT_EQ(c.spoolMaxBytes, 64u * 1024 * 1024);
    EXPECT_EQ(c.spoolMaxAge, std::chrono::hours(48));
    EXPECT_NE(errorOf("spool:\n  max_bytes: 64X\n").find("key 'spool.max_bytes': expected a size"), std::string::npos);
    EXPECT_NE(errorOf("spool:\n  max_age: -5\n").find("key 'spool.max_age': expected a duration"), std::string::npos);
    EXPECT_NE(errorOf("spool:\n  max_bytes: 99999999999G\n").find("expected a size"), std::string::npos);
}

} // namespace
} // namespace ferry
