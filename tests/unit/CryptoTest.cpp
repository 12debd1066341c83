#include <sys/stat.h>

#include <gtest/gtest.h>

#include "ferry/Crypto.h"
#include "ferry/Error.h"
#include "support/TestSupport.h"

namespace ferry {
namespace {

TEST(HmacSha256, MatchesTheRfc4231TestCase2)
{
    EXPECT_EQ(toHex(hmacSha256("Jefe", "what do ya want for nothing?")),
              "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843");
}

TEST(ASessionProof, DependsOnEveryInputAndTheDirection)
{
    const std::string s = generateSecret(), c = randomBytes(32), n = randomBytes(32);
    const auto base = sessionProof(s, "node", "push", c, n, "web1");
    EXPECT_EQ(base, sessionProof(s, "node", "push", c, n, "web1"));
    EXPECT_NE(base, sessionProof(s, "server", "push", c, n, "web1"));
    EXPECT_NE(base, sessionProof(s, "node", "pull", c, n, "web1"));
    EXPECT_NE(base, sessionProof(s, "node", "push", n, c, "web1"));
    EXPECT_NE(base, sessionProof(s, "node", "push", c, n, "web2"));
    EXPECT_NE(base, sessionProof(generateSecret(), "node", "push", c, n, "web1"));
}

TEST(ANodeSecret, IsCreatedOnceAndNeverOverwritten)
{
    test::TempDir d;
    EXPECT_TRUE(ensureSecret(d / "secret"));
    const auto first = loadSecret(d / "secret");
    EXPECT_EQ(first.size(), 64u);
    EXPECT_FALSE(ensureSecret(d / "secret"));
    EXPECT_EQ(loadSecret(d / "secret"), first);
    struct stat st{};
    ASSERT_EQ(::stat((d / "secret").c_str(), &st), 0);
    EXPECT_EQ(st.st_mode & 0777, 0600u);
}

TEST(ANodeSecret, IsRefusedWhenOthersCanReadIt)
{
    test::TempDir d;
    test::writeFile(d / "secret", generateSecret() + "\n", 0644);
    try {
        loadSecret(d / "secret");
        FAIL();
    } catch (const Error& e) {
        EXPECT_NE(std::string(e.what()).find("readable by others"), std::string::npos) << e.what();
    }
}

TEST(ANodeSecret, IsRefusedWhenItIsNotHex)
{
    test::TempDir d;
    test::writeFile(d / "secret", std::string(64, 'g') + "\n", 0600);
    EXPECT_THROW(loadSecret(d / "secret"), Error);
}

} // namespace
} // namespace ferry
