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

// Computed from the digest fetched once (not HMAC()): RFC 4231's cases with
// a short key, a key of exactly a block... and one longer than a block
// (hashed first).
TEST(HmacSha256, MatchesTheRfc4231TestCasesForEveryKeyLength)
{
    EXPECT_EQ(toHex(hmacSha256(std::string(20, '\x0b'), "Hi There")),
              "b0344c61d8db38535ca8afceaf0bf12b881dc200c9833da726e9376c2e32cff7");
    EXPECT_EQ(toHex(hmacSha256(std::string(131, '\xaa'), "Test Using Larger Than Block-Size Key - Hash Key First")),
              "60e431591ee0b67f0d8a26aacbf5b77f8e0bc6213728c5140546040f0ee37f54");
    EXPECT_EQ(toHex(hmacSha256(std::string(20, '\xaa'), std::string(50, '\xdd'))),
              "773ea91e36800e46854db8ebd09181a72959098b3ef8c122d9635514ced565fe");
    // Around the block size: a key of 64 bytes is used as it is, one of 65
    // hashed, so these three differ, and the 65-byte key equals its digest.
    const std::string k64(64, 'k'), k65(65, 'k');
    EXPECT_NE(hmacSha256(k64, "m"), hmacSha256(std::string(63, 'k'), "m"));
    EXPECT_NE(hmacSha256(k65, "m"), hmacSha256(k64, "m"));
    EXPECT_EQ(hmacSha256(k65, "m"), hmacSha256(sha256(k65), "m"));
    EXPECT_EQ(hmacSha256("", "").size(), 32u);
}

TEST(RandomBytes, AreAsManyAsAskedAndDifferEveryTime)
{
    EXPECT_EQ(randomBytes(0).size(), 0u);
    EXPECT_EQ(randomBytes(1000).size(), 1000u);
    EXPECT_NE(randomBytes(32), randomBytes(32));
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
