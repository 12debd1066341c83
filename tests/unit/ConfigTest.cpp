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
    EXPECT_EQ(c.tunnelUser, "ferry-tunnel");
    EXPECT_EQ(c.pushChannel, NodeConfig::PushChannel::Relay);
    EXPECT_EQ(c.sourceAddress, "");
}

TEST(ANodeConfig, ReadsThePushChannelAndSourceAddressAndRefusesOthers)
{
    const auto c =
        parseNodeConfig("ferry.yml", "push:\n  user: ferry\n  channel: forward\n  source_address: 2001:db8::5\n");
    EXPECT_EQ(c.pushChannel, NodeConfig::PushChannel::Forward);
    EXPECT_EQ(c.sourceAddress, "2001:db8::5");
    EXPECT_EQ(errorOf("push:\n  channel: tcp\n"),
              "/etc/ferry/ferry.yml:2:3: key 'push.channel': expected relay or forward");
    EXPECT_EQ(errorOf("push:\n  source_address: node.example\n"),
              "/etc/ferry/ferry.yml:2:3: key 'push.source_address': expected an IPv4 or IPv6 address");
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
              "/etc/ferry/plugins.yml:2: key 'sender.period': tab character in the indentation: YAML indentation "
              "must use spaces");
}

TEST(APluginsConfig, RefusesASectionGivenTwiceNamingBothLines)
{
    EXPECT_EQ(errorOf("sender:\n  period: 60\nsender:\n  period: 120\n", true),
              "/etc/ferry/plugins.yml:3:1: key 'sender' appears twice (lines 1 and 3); the second would be ignored");
}

TEST(ANodeConfig, RefusesASectionGivenTwiceNamingBothLines)
{
    // yaml-cpp would answer with the first block and drop the second.
    EXPECT_EQ(errorOf("node:\n  name: first\nmasters: [192.0.2.1]\nnode:\n  name: second\n"),
              "/etc/ferry/ferry.yml:4:1: key 'node' appears twice (lines 1 and 4); the second would be ignored");
    EXPECT_EQ(errorOf("node:\n  name: first\n  mode: push\n  name: second\n"),
              "/etc/ferry/ferry.yml:4:3: key 'node.name' appears twice (lines 2 and 4); the second would be ignored");
    EXPECT_NE(errorOf("masters:\n  - host: 192.0.2.1\n    host: 192.0.2.2\n").find("key 'masters.host' appears twice"),
              std::string::npos);
}

TEST(ANodeConfig, RefusesATabNamingLineAndKey)
{
    EXPECT_EQ(errorOf("node:\n  name: web1\n\tmode: push\n"),
              "/etc/ferry/ferry.yml:3: key 'node.mode': tab character in the indentation: YAML indentation must use "
              "spaces");
    EXPECT_EQ(errorOf("node:\n  name: web1\t# a comment\n"), "/etc/ferry/ferry.yml:2: key 'node.name': tab character: "
                                                             "use spaces");
}

TEST(ANodeConfig, ReadsTheSharedTransportKeysUnderTransport)
{
    const auto c =
        parseNodeConfig("ferry.yml", "transport:\n  connect_timeout: 5\n  io_timeout: 1m\n  batch_records: 100\n"
                                     "  batch_bytes: 64K\npush:\n  user: tunnel\n");
    EXPECT_EQ(c.connectTimeout, std::chrono::seconds(5));
    EXPECT_EQ(c.ioTimeout, std::chrono::seconds(60));
    EXPECT_EQ(c.batchRecords, 100u);
    EXPECT_EQ(c.batchBytes, 64u * 1024);
    EXPECT_EQ(c.tunnelUser, "tunnel");
    EXPECT_TRUE(c.deprecations.empty());
}

TEST(ANodeConfig, StillReadsTheSharedKeysUnderPushWithOneDeprecation)
{
    const auto c = parseNodeConfig("/etc/ferry/ferry.yml", "push:\n  connect_timeout: 5\n  io_timeout: 10\n");
    EXPECT_EQ(c.connectTimeout, std::chrono::seconds(5));
    EXPECT_EQ(c.ioTimeout, std::chrono::seconds(10));
    ASSERT_EQ(c.deprecations.size(), 1u);
    EXPECT_NE(c.deprecations[0].find("/etc/ferry/ferry.yml:2:3 push.connect_timeout"), std::string::npos)
        << c.deprecations[0];
    EXPECT_NE(c.deprecations[0].find("/etc/ferry/ferry.yml:3:3 push.io_timeout"), std::string::npos)
        << c.deprecations[0];
    EXPECT_NE(c.deprecations[0].find("move them under transport:"), std::string::npos) << c.deprecations[0];
}

TEST(ANodeConfig, RefusesASharedKeyUnderBothPushAndTransport)
{
    EXPECT_EQ(errorOf("transport:\n  io_timeout: 10\npush:\n  io_timeout: 20\n"),
              "/etc/ferry/ferry.yml:4:3: key 'push.io_timeout': also set as transport.io_timeout; keep only that one");
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
