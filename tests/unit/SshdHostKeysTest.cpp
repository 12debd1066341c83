// This host's sshd host keys and their fingerprints, read without libssh
// (ferry-login does not load it): they must be the ones libssh prints for
// the same keys, since a session's binding compares the two.

#include <gtest/gtest.h>

#include "ferry/SshKeys.h"
#include "ferry/SshdHostKeys.h"
#include "support/TestSupport.h"

namespace ferry::test {
namespace {

TEST(TheSshdHostKeyFingerprints, AreTheOnesLibsshPrintsForEveryHostKeyType)
{
    TempDir dir;
    for (const std::string type : {"ed25519", "ecdsa", "rsa"})
        ASSERT_EQ(run({"ssh-keygen", "-q", "-N", "", "-t", type, "-f", dir / ("ssh_host_" + type + "_key")}).exitCode,
                  0);
    // Not host keys: skipped.
    writeFile(dir / "ssh_config.pub", "ssh-ed25519 AAAA");
    writeFile(dir / "ssh_host_broken_key.pub", "ssh-ed25519 not-base64!");
    const auto lines = readSshdHostKeys(dir.path());
    const auto fingerprints = sshdHostKeyFingerprints(dir.path());
    ASSERT_EQ(lines.size(), 3u);
    ASSERT_EQ(fingerprints.size(), 3u);
    for (std::size_t i = 0; i < lines.size(); ++i) {
        EXPECT_EQ(fingerprints[i].rfind("SHA256:", 0), 0u) << fingerprints[i];
        EXPECT_EQ(fingerprints[i], fingerprintOf(lines[i])) << lines[i];
    }
}

} // namespace
} // namespace ferry::test
