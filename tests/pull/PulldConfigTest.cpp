// pulld.yml: defaults, every key, and refusals that name file, line and key.
#include <gtest/gtest.h>

#include "PulldConfig.h"
#include "ferry/Error.h"

using pulld::parsePulldConfig;

namespace {
ferry::Paths paths()
{
    ferry::Paths p;
    p.stateDir = "/var/lib/ferry";
    return p;
}
} // namespace

TEST(APulldConfig, HasDocumentedDefaults)
{
    const auto c = parsePulldConfig(paths(), "pulld.yml", "");
    EXPECT_EQ(c.concurrency, 8u);
    EXPECT_EQ(c.minInterval, std::chrono::seconds(240));
    EXPECT_EQ(c.user, "ferry");
    EXPECT_EQ(c.keyFile, "/var/lib/ferry/pull_id_ed25519");
    EXPECT_EQ(c.knownHostsFile, "/var/lib/ferry/pull_known_hosts");
}

TEST(APulldConfig, ReadsEveryKey)
{
    const auto c = parsePulldConfig(paths(), "pulld.yml",
                                    "concurrency: 16\nmin_interval: 2m\nconnect_timeout: 5s\nio_timeout: 1m\n"
                                    "user: puller\nkey: /etc/ferry/pull_key\nknown_hosts: /etc/ferry/nodes_known_hosts\n");
    EXPECT_EQ(c.concurrency, 16u);
    EXPECT_EQ(c.minInterval, std::chrono::seconds(120));
    EXPECT_EQ(c.connectTimeout, std::chrono::seconds(5));
    EXPECT_EQ(c.ioTimeout, std::chrono::seconds(60));
    EXPECT_EQ(c.user, "puller");
    EXPECT_EQ(c.keyFile, "/etc/ferry/pull_key");
    EXPECT_EQ(c.knownHostsFile, "/etc/ferry/nodes_known_hosts");
}

TEST(APulldConfig, RefusesUnknownKeysAndBadValuesNamingTheKey)
{
    for (const auto& [text, key] : std::vector<std::pair<std::string, std::string>>{
             {"concurency: 4\n", "concurency"},
             {"concurrency: 0\n", "concurrency"},
             {"concurrency: many\n", "concurrency"},
             {"user: \"a b\"\n", "user"},
             {"key: relative/path\n", "key"},
             {"io_timeout: forever\n", "io_timeout"}}) {
        try {
            parsePulldConfig(paths(), "pulld.yml", text);
            ADD_FAILURE() << "accepted: " << text;
        } catch (const ferry::ConfigError& e) {
            const std::string what = e.what();
            EXPECT_NE(what.find("pulld.yml"), std::string::npos) << what;
            EXPECT_NE(what.find(key), std::string::npos) << what;
        }
    }
}

TEST(APulldConfig, RefusesAKeyGivenTwiceAndATabNamingLinesAndKey)
{
    auto errorOf = [](const std::string& text) -> std::string {
        try {
            parsePulldConfig(paths(), "/etc/ferry/pulld.yml", text);
        } catch (const ferry::ConfigError& e) {
            return e.what();
        }
        return "accepted";
    };
    EXPECT_EQ(errorOf("concurrency: 4\nuser: puller\nconcurrency: 8\n"),
              "/etc/ferry/pulld.yml:3:1: key 'concurrency' appears twice (lines 1 and 3); the second would be ignored");
    EXPECT_EQ(errorOf("concurrency: 4\n\tuser: puller\n"),
              "/etc/ferry/pulld.yml:2: key 'user': tab character in the indentation: YAML indentation must use spaces");
}
