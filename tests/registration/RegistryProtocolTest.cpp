// The registration messages on their own: what the MACs cover and what the
// decoders refuse.

#include <gtest/gtest.h>

#include "ferry/Crypto.h"
#include "ferry/Error.h"
#include "ferry/RegistryProtocol.h"
#include "ferry/Wire.h"

namespace ferry {
namespace {

const std::string kKey = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIHcvOvN3ZMbPqg0zKXz6gYvXz5xC0mJ0W3pZrN2y8c4L";

RegistrationRequest sampleRequest()
{
    return {"node-1", kKey, "pull", 2222, 1700000000000, std::string(kNonceSize, 'n'), {}, true, true, "master-1"};
}

TEST(ARegistrationRequest, VerifiesOnlyWithTheSecretItWasSignedWith)
{
    const auto secret = generateSecret();
    const auto decoded = decodeRegistrationRequest(encodeRegistrationRequest(sampleRequest(), secret), "test");
    EXPECT_EQ(decoded.request.node, "node-1");
    EXPECT_EQ(decoded.request.publicKey, kKey);
    EXPECT_EQ(decoded.request.mode, "pull");
    EXPECT_EQ(decoded.request.sshPort, 2222);
    EXPECT_EQ(decoded.request.timeMs, 1700000000000);
    EXPECT_TRUE(verifyRegistrationRequest(decoded, secret));
    EXPECT_FALSE(verifyRegistrationRequest(decoded, generateSecret()));
    EXPECT_FALSE(verifyRegistrationRequest(decoded, ""));
}

TEST(ARegistrationRequest, FailsVerificationWhenAnySignedByteChanges)
{
    const auto secret = generateSecret();
    const auto payload = encodeRegistrationRequest(sampleRequest(), secret);
    auto decoded = decodeRegistrationRequest(payload, "test");
    // Flip the last byte of the timestamp inside the signed part.
    decoded.signedBytes[decoded.signedBytes.size() - kNonceSize - 4 - 1] ^= 1;
    EXPECT_FALSE(verifyRegistrationRequest(decoded, secret));
}

TEST(ARegistrationResponse, CannotBeForgedFromARequestMac)
{
    const auto secret = generateSecret();
    RegistrationResponse r{RegistrationState::Accepted, "", std::string(kNonceSize, 'n'), 1, {kKey}, false, 0, 0, "", ""};
    auto decoded = decodeRegistrationResponse(encodeRegistrationResponse(r, secret), "test");
    EXPECT_TRUE(verifyRegistrationResponse(decoded, secret));
    // The same bytes under the request label do not pass as a response.
    decoded.mac = registrationRequestMac(secret, decoded.signedBytes);
    EXPECT_FALSE(verifyRegistrationResponse(decoded, secret));
}

TEST(ARegistrationResponse, WithoutASecretCarriesNoMac)
{
    RegistrationResponse r{RegistrationState::Pending, "wait", std::string(kNonceSize, 'n'), 1, {}, false, 0, 0, "", ""};
    const auto decoded = decodeRegistrationResponse(encodeRegistrationResponse(r, ""), "test");
    EXPECT_TRUE(decoded.mac.empty());
    EXPECT_FALSE(verifyRegistrationResponse(decoded, generateSecret()));
    EXPECT_EQ(decoded.response.reason, "wait");
}

TEST(ARegistrationResponse, CarriesTheMasterPullKeyUnderItsMac)
{
    const auto secret = generateSecret();
    const std::string pullKey = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIPZk9P9QHhW2+1rFnk70b2G6W640JfQQYsbxRSD68P/g";
    RegistrationResponse r{RegistrationState::Accepted, "", std::string(kNonceSize, 'n'), 1, {kKey}, true, 0, 0, "", pullKey + " pull@m"};
    const auto decoded = decodeRegistrationResponse(encodeRegistrationResponse(r, secret), "test");
    EXPECT_TRUE(verifyRegistrationResponse(decoded, secret));
    EXPECT_EQ(decoded.response.pullKey, pullKey);  // normalised: the comment is dropped
    EXPECT_EQ(decoded.response.hostKeys, std::vector<std::string>{kKey});
}

TEST(ARegistrationResponse, WithoutAPullKeyDecodesFromAnOlderMaster)
{
    // An older master's signed part ends after the host keys.
    Encoder inner;
    inner.u8(1).bytes("").bytes(std::string(kNonceSize, 'n')).i64(1).u32(0);
    Encoder outer;
    outer.bytes(inner.take()).bytes("");
    const auto decoded = decodeRegistrationResponse(outer.take(), "test");
    EXPECT_TRUE(decoded.response.pullKey.empty());
}

TEST(ARegistrationResponse, RefusesAPullKeyThatIsNotAKeyLineNamingTheField)
{
    RegistrationResponse r{RegistrationState::Accepted, "", std::string(kNonceSize, 'n'), 1, {kKey}, true, 0, 0, "", "rm -rf /"};
    try {
        decodeRegistrationResponse(encodeRegistrationResponse(r, generateSecret()), "master 192.0.2.10:50010");
        FAIL() << "a bad pull key was accepted";
    } catch (const ProtocolError& e) {
        EXPECT_NE(std::string(e.what()).find("pull key"), std::string::npos) << e.what();
        EXPECT_NE(std::string(e.what()).find("192.0.2.10"), std::string::npos) << e.what();
    }
}

TEST(ARegistrationRequestDecoder, RefusesBadNamesKeysAndNoncesNamingTheField)
{
    const auto secret = generateSecret();
    auto bad = sampleRequest();
    bad.node = "../etc";
    EXPECT_THROW(decodeRegistrationRequest(encodeRegistrationRequest(bad, secret), "peer"), ProtocolError);
    bad = sampleRequest();
    bad.publicKey = "ssh-dss AAAAB3NzaC1kc3MAAACBAP";
    try {
        decodeRegistrationRequest(encodeRegistrationRequest(bad, secret), "192.0.2.7:4000");
        FAIL() << "accepted an unsupported key type";
    } catch (const ProtocolError& e) {
        EXPECT_NE(std::string(e.what()).find("unsupported key type 'ssh-dss'"), std::string::npos) << e.what();
        EXPECT_NE(std::string(e.what()).find("192.0.2.7:4000"), std::string::npos) << e.what();
    }
    bad = sampleRequest();
    bad.mode = "sometimes";
    EXPECT_THROW(decodeRegistrationRequest(encodeRegistrationRequest(bad, secret), "peer"), ProtocolError);
    bad = sampleRequest();
    bad.sshPort = 0;
    EXPECT_THROW(decodeRegistrationRequest(encodeRegistrationRequest(bad, secret), "peer"), ProtocolError);
    bad = sampleRequest();
    bad.nonce = "short";
    EXPECT_THROW(decodeRegistrationRequest(encodeRegistrationRequest(bad, secret), "peer"), ProtocolError);
    EXPECT_THROW(decodeRegistrationRequest(std::string(7, '\0'), "peer"), ProtocolError);
    EXPECT_THROW(decodeRegistrationRequest(encodeRegistrationRequest(sampleRequest(), secret) + "x", "peer"),
                 ProtocolError);
}

TEST(AKeyLine, IsNormalisedToTypeAndBase64)
{
    EXPECT_EQ(normalizeKeyLine(kKey + " root@node\n"), kKey);
    EXPECT_THROW(normalizeKeyLine("ssh-ed25519"), ProtocolError);
    EXPECT_THROW(normalizeKeyLine("ssh-ed25519 AAAA$(reboot)AAAAAAAAAAAAAAA"), ProtocolError);
}

} // namespace
} // namespace ferry
