// The login shell's grammar and its reading of argv/SSH_ORIGINAL_COMMAND.
#include <gtest/gtest.h>

#include "Invocation.h"
#include "ferry/PullProtocol.h"
#include "support/TestSupport.h"

using namespace ferry;
using pullshell::Invocation;
using pullshell::resolveRequest;

TEST(APullCommand, AcceptsFetchWithACursorAndStatus)
{
    auto p = parsePullCommand("fetch 0");
    ASSERT_TRUE(p.command);
    EXPECT_EQ(p.command->verb, PullVerb::Fetch);
    EXPECT_EQ(p.command->cursor, 0u);
    p = parsePullCommand("fetch 9223372036854775807");
    ASSERT_TRUE(p.command);
    EXPECT_EQ(p.command->cursor, 9223372036854775807ull);
    p = parsePullCommand("status");
    ASSERT_TRUE(p.command);
    EXPECT_EQ(p.command->verb, PullVerb::Status);
}

TEST(APullCommand, RefusesEverythingElseWithAReason)
{
    for (const char* text : {"", "fetch", "fetch ", "fetch 01", "fetch -1", "fetch 9223372036854775808", "fetch 1 2",
                             "status 1", "Status", "fetch\t1", "fetch  1", " status", "status ", "ls", "fetch 1;ls",
                             "fetch $(id)", "fetch `id`", "fetch '1'", "fetch *", "fetch /etc/passwd", "fetch 1\nls",
                             "fetch \xff", "ack 1", "hello"}) {
        const auto p = parsePullCommand(text);
        EXPECT_FALSE(p.command) << escapeForLog(text);
        EXPECT_FALSE(p.reason.empty()) << escapeForLog(text);
    }
    EXPECT_FALSE(parsePullCommand(std::string(kMaxPullCommand + 1, 'a')).command);
}

TEST(APullCommand, FormatsWhatItParses)
{
    for (const char* text : {"fetch 0", "fetch 123456", "status"}) {
        const auto p = parsePullCommand(text);
        ASSERT_TRUE(p.command);
        EXPECT_EQ(formatPullCommand(*p.command), text);
    }
}

TEST(AnEscapedLogField, KeepsPrintableAsciiAndHexesTheRest)
{
    EXPECT_EQ(escapeForLog("fetch 1"), "fetch 1");
    EXPECT_EQ(escapeForLog(std::string("a\nb\xff\\", 5)), "a\\x0ab\\xff\\x5c");
    const std::string longText(500, 'x');
    const std::string e = escapeForLog(longText, 10);
    EXPECT_EQ(e.substr(0, 10), std::string(10, 'x'));
    EXPECT_NE(e.find("500 bytes"), std::string::npos);
}

TEST(AShellInvocation, TakesTheCommandFromDashC)
{
    const auto r = resolveRequest(Invocation{{"-c", "status"}, std::nullopt, "/build/ferry-login"});
    ASSERT_TRUE(r.command);
    EXPECT_EQ(*r.command, "status");
}

TEST(AShellInvocation, TakesTheCommandFromSshOriginalCommandUnderTheForcedCommand)
{
    auto r = resolveRequest(Invocation{{"-c", "/usr/sbin/ferry-login"}, std::string("fetch 3"), "/x"});
    ASSERT_TRUE(r.command);
    EXPECT_EQ(*r.command, "fetch 3");
    r = resolveRequest(Invocation{{"-c", "/build/ferry-login"}, std::string("status"), "/build/ferry-login"});
    ASSERT_TRUE(r.command);
    EXPECT_EQ(*r.command, "status");
    // Run by another shell as the forced command: no arguments at all.
    r = resolveRequest(Invocation{{}, std::string("status"), "/x"});
    ASSERT_TRUE(r.command);
}

TEST(AShellInvocation, RefusesInteractiveLoginsAndOtherArguments)
{
    EXPECT_FALSE(resolveRequest(Invocation{{}, std::nullopt, "/x"}).command);
    EXPECT_FALSE(resolveRequest(Invocation{{"-c", "/usr/sbin/ferry-login"}, std::nullopt, "/x"}).command);
    EXPECT_FALSE(resolveRequest(Invocation{{"-i"}, std::nullopt, "/x"}).command);
    EXPECT_FALSE(resolveRequest(Invocation{{"-c"}, std::nullopt, "/x"}).command);
    EXPECT_FALSE(resolveRequest(Invocation{{"-c", "status", "extra"}, std::nullopt, "/x"}).command);
    EXPECT_FALSE(resolveRequest(Invocation{{"--", "status"}, std::nullopt, "/x"}).command);
    // SSH_ORIGINAL_COMMAND never replaces an explicit -c command.
    const auto r = resolveRequest(Invocation{{"-c", "status"}, std::string("fetch 1"), "/x"});
    ASSERT_TRUE(r.command);
    EXPECT_EQ(*r.command, "status");
}

TEST(TheLoginShellBinary, LoadsNeitherLibsshNorTheKerberosLibraries)
{
    // sshd starts ferry-login at every pull: each shared library it names is
    // loaded and relocated first. It calls nothing of libssh (its host key
    // fingerprints are read without it), which brings GSSAPI and Kerberos.
    const auto r = ferry::test::run({"readelf", "-d", ferry::test::buildPath("services/login-shell/ferry-login")});
    ASSERT_EQ(r.exitCode, 0) << r.err;
    EXPECT_NE(r.out.find("libsqlite3"), std::string::npos) << r.out;
    EXPECT_EQ(r.out.find("libssh"), std::string::npos) << r.out;
    EXPECT_EQ(r.out.find("krb5"), std::string::npos) << r.out;
}
