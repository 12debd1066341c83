// Issue 12, item 12: the private key is written atomically (temp file,
// fsync, rename): never through whatever sits at its path, never half.

#include <sys/stat.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include "ferry/SshSession.h"
#include "support/TestSupport.h"

namespace ferry::test {
namespace {

TEST(APrivateKey, IsWrittenWholeAndReadableByOpenSsh)
{
    TempDir dir;
    ASSERT_TRUE(ensureKeyPair(dir / "id_ed25519"));
    struct stat st{};
    ASSERT_EQ(::lstat((dir / "id_ed25519").c_str(), &st), 0);
    EXPECT_TRUE(S_ISREG(st.st_mode));
    EXPECT_EQ(st.st_mode & 0777, 0600u);
    const auto r = run({"ssh-keygen", "-y", "-f", dir / "id_ed25519"});
    ASSERT_EQ(r.exitCode, 0) << r.err;
    EXPECT_EQ(r.out.substr(0, r.out.find(' ', 12)), readFile(dir / "id_ed25519.pub").substr(0, r.out.find(' ', 12)));
    EXPECT_FALSE(ensureKeyPair(dir / "id_ed25519"));  // it exists: kept
}

TEST(APrivateKey, ReplacesADanglingSymlinkAtItsPathInsteadOfWritingThroughIt)
{
    TempDir dir;
    // Before: stat() saw no key, libssh opened the path and followed the
    // link, creating the key wherever it pointed.
    ASSERT_EQ(::symlink((dir / "elsewhere").c_str(), (dir / "id_ed25519").c_str()), 0);
    ASSERT_TRUE(ensureKeyPair(dir / "id_ed25519"));
    EXPECT_NE(::access((dir / "elsewhere").c_str(), F_OK), 0) << "the key was written through the symlink";
    struct stat st{};
    ASSERT_EQ(::lstat((dir / "id_ed25519").c_str(), &st), 0);
    EXPECT_TRUE(S_ISREG(st.st_mode));
}

} // namespace
} // namespace ferry::test
