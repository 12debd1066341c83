// Key text from the network on the master: the strict parser and its
// fingerprints (issue 12 item 6), the version-2 fields of the registration
// messages (host keys, period floor), and keyregd's period-floor file.

#include <filesystem>

#include <gtest/gtest.h>

#include "ferry/Crypto.h"
#include "ferry/Error.h"
#include "ferry/RegistryProtocol.h"
#include "ferry/Wire.h"
#include "support/TestSupport.h"

namespace ferry::test {
namespace {

std::string sshKeygenFingerprint(const std::string& pubFile)
{
    const auto r = run({"ssh-keygen", "-l", "-E", "sha256", "-f", pubFile});
    EXPECT_EQ(r.exitCode, 0) << r.err;
    // "256 SHA256:… comment (ED25519)"
    const auto start = r.out.find("SHA256:");
    return r.out.substr(start, r.out.find(' ', start) - start);
}

std::string base64Of(const std::string& bytes)
{
    // Through our own decoder's inverse is what we test; use openssl's CLI.
    const auto r = run({"openssl", "base64", "-A"}, {}, bytes);
    return r.out;
}

std::string sshString(const std::string& s)
{
    std::string out;
    const auto n = static_cast<std::uint32_t>(s.size());
    out.push_back(static_cast<char>(n >> 24));
    out.push_back(static_cast<char>(n >> 16));
    out.push_back(static_cast<char>(n >> 8));
    out.push_back(static_cast<char>(n));
    return out + s;
}

TEST(AKeyFingerprint, MatchesSshKeygenForEveryKeyTypeItGenerates)
{
    TempDir dir;
    const std::vector<std::vector<std::string>> kinds = {
        {"-t", "ed25519"}, {"-t", "ecdsa", "-b", "256"}, {"-t", "ecdsa", "-b", "384"},
        {"-t", "ecdsa", "-b", "521"}, {"-t", "rsa", "-b", "2048"}};
    int i = 0;
    for (const auto& kind : kinds) {
        const std::string key = dir / ("k" + std::to_string(i++));
        std::vector<std::string> argv = {"ssh-keygen", "-q", "-N", "", "-C", "a comment", "-f", key};
        argv.insert(argv.begin() + 1, kind.begin(), kind.end());
        ASSERT_EQ(run(argv).exitCode, 0);
        const std::string line = readFile(key + ".pub");
        EXPECT_EQ(keyFingerprint(line), sshKeygenFingerprint(key + ".pub")) << line;
    }
}

TEST(AKeyFingerprint, RefusesBlobsThatAreNotWellFormedKeysOfTheirType)
{
    const std::string ed = sshString("ssh-ed25519") + sshString(std::string(32, 'k'));
    EXPECT_NO_THROW(keyFingerprint("ssh-ed25519 " + base64Of(ed)));
    // The blob says another type than the line.
    EXPECT_THROW(keyFingerprint("ssh-rsa " + base64Of(ed)), ProtocolError);
    // Truncated, trailing bytes, a key of the wrong size.
    EXPECT_THROW(keyFingerprint("ssh-ed25519 " + base64Of(ed.substr(0, ed.size() - 3))), ProtocolError);
    EXPECT_THROW(keyFingerprint("ssh-ed25519 " + base64Of(ed + "xyz")), ProtocolError);
    EXPECT_THROW(keyFingerprint("ssh-ed25519 " + base64Of(sshString("ssh-ed25519") + sshString(std::string(31, 'k')))),
                 ProtocolError);
    // A length field far beyond the blob.
    std::string huge = sshString("ssh-ed25519") + std::string("\xff\xff\xff\xf0", 4) + std::string(32, 'k');
    EXPECT_THROW(keyFingerprint("ssh-ed25519 " + base64Of(huge)), ProtocolError);
    // RSA below 1024 bits; an ECDSA point of the wrong curve size.
    const std::string rsa = sshString("ssh-rsa") + sshString(std::string("\x01\x00\x01", 3)) +
                            sshString("\x7f" + std::string(63, '\x01'));
    EXPECT_THROW(keyFingerprint("ssh-rsa " + base64Of(rsa)), ProtocolError);
    const std::string ec = sshString("ecdsa-sha2-nistp256") + sshString("nistp256") + sshString("\x04" + std::string(96, 'p'));
    EXPECT_THROW(keyFingerprint("ecdsa-sha2-nistp256 " + base64Of(ec)), ProtocolError);
    // Base64 that OpenSSH would never write: stray bits in the padding, '=' inside.
    // A structurally valid ECDSA blob of 104 bytes: its base64 ends in one '='.
    const std::string ecOk =
        sshString("ecdsa-sha2-nistp256") + sshString("nistp256") + sshString("\x04" + std::string(64, 'p'));
    std::string b64 = base64Of(ecOk);
    ASSERT_EQ(b64.back(), '=');
    EXPECT_NO_THROW(keyFingerprint("ecdsa-sha2-nistp256 " + b64));
    std::string stray = b64;
    stray[stray.size() - 2] = stray[stray.size() - 2] == 'A' ? 'B' : 'A';
    EXPECT_THROW(keyFingerprint("ecdsa-sha2-nistp256 " + stray), ProtocolError);
    EXPECT_THROW(keyFingerprint("ecdsa-sha2-nistp256 " + b64.substr(0, 8) + "=" + b64.substr(9)), ProtocolError);
    // Longer than any key line may be.
    EXPECT_THROW(keyFingerprint("ssh-ed25519 " + std::string(kMaxKeyLine, 'A')), ProtocolError);
    EXPECT_EQ(keyFingerprintOrNote("ssh-ed25519 AAAA"), "(unparsable key)");
    EXPECT_EQ(keyFingerprintOrNote(""), "(none)");
}


TEST(AVersion2Request, CarriesTheNodesSshdHostKeysUnderTheMac)
{
    TempDir dir;
    ASSERT_EQ(run({"ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", dir / "h1"}).exitCode, 0);
    ASSERT_EQ(run({"ssh-keygen", "-q", "-t", "ecdsa", "-N", "", "-f", dir / "h2"}).exitCode, 0);
    RegistrationRequest r;
    r.node = "n1";
    r.publicKey = normalizeKeyLine(readFile(dir / "h1.pub"));
    r.timeMs = 1;
    r.nonce = std::string(kNonceSize, 'x');
    r.masterId = "master-1";
    r.hostKeys = {normalizeKeyLine(readFile(dir / "h1.pub")), normalizeKeyLine(readFile(dir / "h2.pub"))};
    const auto secret = generateSecret();
    const auto decoded = decodeRegistrationRequest(encodeRegistrationRequest(r, secret), "test");
    EXPECT_TRUE(decoded.request.version2);
    EXPECT_EQ(decoded.request.hostKeys, r.hostKeys);
    EXPECT_TRUE(verifyRegistrationRequest(decoded, secret));

    // An older node's request (kind 1) still decodes, without host keys.
    r.version2 = false;
    r.version3 = false;
    const auto old = decodeRegistrationRequest(encodeRegistrationRequest(r, secret), "test");
    EXPECT_FALSE(old.request.version2);
    EXPECT_TRUE(old.request.hostKeys.empty());

    // The same key twice, or a malformed one, is refused naming the key.
    r.version2 = true;
    r.hostKeys = {r.hostKeys[0], r.hostKeys[0]};
    EXPECT_THROW(decodeRegistrationRequest(encodeRegistrationRequest(r, secret), "test"), ProtocolError);
    r.hostKeys = {"ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIAAAAAAAAAAAAAAAAAAAAAAAAAAA"};
    try {
        decodeRegistrationRequest(encodeRegistrationRequest(r, secret), "test");
        ADD_FAILURE() << "a malformed host key was accepted";
    } catch (const ProtocolError& e) {
        EXPECT_NE(std::string(e.what()).find("sshd host key 1"), std::string::npos) << e.what();
    }
}

TEST(AVersion2Response, CarriesThePeriodFloorUnderTheMac)
{
    RegistrationResponse r;
    r.state = RegistrationState::Accepted;
    r.requestNonce = std::string(kNonceSize, 'n');
    r.version2 = true;
    r.minPushPeriodS = 240;
    r.minPullIntervalS = 600;
    const auto secret = generateSecret();
    auto decoded = decodeRegistrationResponse(encodeRegistrationResponse(r, secret), "test");
    EXPECT_TRUE(verifyRegistrationResponse(decoded, secret));
    EXPECT_EQ(decoded.response.minPushPeriodS, 240u);
    EXPECT_EQ(decoded.response.minPullIntervalS, 600u);
    // A kind-1 answer has no floor.
    r.version2 = false;
    decoded = decodeRegistrationResponse(encodeRegistrationResponse(r, secret), "test");
    EXPECT_EQ(decoded.response.minPushPeriodS, 0u);
}

TEST(APeriodFloorFile, RoundTripsAndRefusesUnknownKeysNamingTheLine)
{
    const PeriodFloor floor{240, 600, "192.0.2.1:50010"};
    EXPECT_EQ(parsePeriodFloor("f", formatPeriodFloor(floor)), floor);
    try {
        parsePeriodFloor("/var/lib/ferry/period-floor", "min_push_period=240\nbogus=1\n");
        ADD_FAILURE();
    } catch (const ConfigError& e) {
        EXPECT_NE(std::string(e.what()).find("period-floor:2"), std::string::npos) << e.what();
    }
    EXPECT_THROW(parsePeriodFloor("f", "min_push_period=99999999\n"), ConfigError);
}

} // namespace
} // namespace ferry::test
