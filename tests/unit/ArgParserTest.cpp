// The one command-line parser of every daemon and tool (ferry/DaemonArgs.h).
#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "ferry/DaemonArgs.h"

namespace ferry {
namespace {

std::string errorOf(const ArgParser& p, const std::vector<std::string>& args)
{
    try {
        p.parse(args);
    } catch (const UsageError& e) {
        return e.what();
    }
    return "accepted";
}

TEST(AnArgParser, TakesOptionsWithOrWithoutEqualsAndRepeatedSwitches)
{
    DaemonArgs d;
    std::string listen;
    bool check = false;
    ArgParser p("ferry-test", "a test");
    p.daemonOptions(d)
        .option("--listen", "ADDR", "where", [&](const std::string& v) { listen = v; })
        .flag("--check", "check", [&] { check = true; });
    p.parse({"-v", "--verbose", "--idle-timeout=5", "--listen", "127.0.0.1:1", "--check"});
    EXPECT_EQ(d.verbosity, 2);
    EXPECT_EQ(d.idleTimeout, std::chrono::seconds(5));
    EXPECT_EQ(listen, "127.0.0.1:1");
    EXPECT_TRUE(check);
    p.parse({"--idle-timeout", "0", "--listen=[::1]:2"});
    EXPECT_EQ(d.idleTimeout, std::chrono::seconds(0));
    EXPECT_EQ(listen, "[::1]:2");
}

TEST(AnArgParser, RefusesWhatNobodyDeclaredQuotingItAndTheUsage)
{
    DaemonArgs d;
    ArgParser p("ferry-test", "a test");
    p.daemonOptions(d);
    EXPECT_EQ(errorOf(p, {"--idel-timeout=5"}),
              "Failed to parse the command line: unknown option '--idel-timeout=5' (Usage: ferry-test [OPTIONS]; see "
              "--help)");
    EXPECT_NE(errorOf(p, {"--idle-timeout"}).find("--idle-timeout needs a value (SECONDS)"), std::string::npos);
    EXPECT_NE(errorOf(p, {"--verbose=2"}).find("--verbose takes no value"), std::string::npos);
    EXPECT_NE(errorOf(p, {"stray"}).find("unexpected argument 'stray'"), std::string::npos);
    EXPECT_THROW(p.parse({"--idle-timeout=forever"}), ConfigError);
}

TEST(AnArgParser, CountsOperandsAndCanEndOptionsAtTheFirst)
{
    std::vector<std::string> got;
    bool json = false;
    ArgParser p("ferryctl", "a test");
    p.flag("--json", "json", [&] { json = true; })
        .operands("COMMAND [ARGS…]", 1, 3, [&](const std::vector<std::string>& o) { got = o; })
        .optionsEndAtFirstOperand();
    p.parse({"--json", "doctor", "--cached"});
    EXPECT_TRUE(json);
    EXPECT_EQ(got, (std::vector<std::string>{"doctor", "--cached"}));
    EXPECT_NE(errorOf(p, {}).find("expected 1 to 3 operands (COMMAND [ARGS…]), got 0"), std::string::npos);
    EXPECT_NE(errorOf(p, {"a", "b", "c", "d"}).find("got 4"), std::string::npos);
    p.parse({"--", "--json"});
    EXPECT_EQ(got, (std::vector<std::string>{"--json"}));
}

TEST(AnArgParserDeathTest, ExitsZeroAfterVersionOrHelp)
{
    ArgParser p("ferry-test", "a test");
    EXPECT_EXIT(p.parse({"--version"}), ::testing::ExitedWithCode(0), "");
    EXPECT_EXIT(p.parse({"-h"}), ::testing::ExitedWithCode(0), "");
}

TEST(AnArgParser, ListsEveryDeclaredOptionInItsHelp)
{
    DaemonArgs d;
    ArgParser p("ferry-test", "does a test");
    p.daemonOptions(d).option("--listen", "ADDR:PORT", "where to listen", [](const std::string&) {});
    const std::string help = p.help();
    EXPECT_EQ(help.rfind(std::string("ferry-test ") + ferryVersion() + ": does a test\n", 0), 0u) << help;
    for (const char* s : {"-h, --help", "--version", "-v, --verbose", "--idle-timeout SECONDS", "default 30)",
                          "--listen ADDR:PORT", "where to listen"})
        EXPECT_NE(help.find(s), std::string::npos) << s << " missing in:\n" << help;
}

} // namespace
} // namespace ferry
