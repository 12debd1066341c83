// The KRL the registry writes for sshd's RevokedKeys (issue 15): encoded
// here by serial (ranges, bitmaps of at most 16384 bits, a list), checked
// with OpenSSH's own reader (ssh-keygen -Q, the code sshd runs at each
// authentication) against certificates signed by a real CA; and registryd's
// core keeping it to the revocations that may not have expired yet, and
// current with revocations another master made in the shared store.

#include <gtest/gtest.h>

#include <filesystem>

#include "Manager.h"
#include "ferry/Clock.h"
#include "ferry/Crypto.h"
#include "ferry/Files.h"
#include "ferry/NodeCertificates.h"
#include "ferry/RegistryStore.h"
#include "support/TestSupport.h"

namespace ferry::test {
namespace {

class ARevocationList : public ::testing::Test {
protected:
    void SetUp() override
    {
        ASSERT_EQ(run({"ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", "ferry-ca", "-f", m_ca}).exitCode, 0);
        ASSERT_EQ(run({"ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", m_node}).exitCode, 0);
    }

    // A certificate of the CA with this serial, as the registry signs one.
    std::string certificateWithSerial(std::uint64_t serial)
    {
        CertificateRequest request;
        request.caKeyFile = m_ca;
        request.publicKey = readFile(m_node + ".pub");
        request.keyId = "ferry-node:n#" + std::to_string(serial);
        request.principals = {"ferry"};
        request.serial = serial;
        request.validity = "-5m:+1h";
        const std::string file = m_root / ("cert-" + std::to_string(serial) + ".pub");
        writeFile(file, signUserCertificate(request) + "\n", 0644);
        return file;
    }

    // What sshd's KRL code says of a certificate with this serial.
    bool revoked(const std::string& krl, std::uint64_t serial)
    {
        const auto r = run({"ssh-keygen", "-Q", "-f", krl, certificateWithSerial(serial)});
        EXPECT_TRUE(r.exitCode == 0 || r.out.find("REVOKED") != std::string::npos) << r.out << r.err;
        return r.exitCode != 0;
    }

    TempDir m_root;
    std::string m_ca = m_root / "ca";
    std::string m_node = m_root / "node";
};

TEST_F(ARevocationList, RevokesExactlyItsSerialsInEveryShape)
{
    std::vector<std::uint64_t> serials;
    for (std::uint64_t s = 1000; s < 2000; ++s) // a long run: one range
        serials.push_back(s);
    for (std::uint64_t s = 5000; s < 5100; ++s) // runs of four: 20 ranges
        if (s % 5 != 0)
            serials.push_back(s);
    for (std::uint64_t s = 200000; s < 240000; s += 2) // single serials, dense: bitmaps
        serials.push_back(s);
    for (std::uint64_t s : {300000, 370000, 1000000}) // single serials, sparse: listed
        serials.push_back(s);
    serials.push_back(5001); // a duplicate changes nothing
    const std::string krl = m_root / "revoked.krl";
    const auto shape = writeRevocationList(m_ca + ".pub", serials, krl, 7, nowMs());
    RecordProperty("shape", describe(shape));
    EXPECT_EQ(shape.serials, serials.size() - 1);
    EXPECT_EQ(shape.ranges, 21u);
    EXPECT_EQ(shape.bitmaps, 3u) << "40,000 serials span three bitmaps of 16384";
    EXPECT_EQ(shape.listed, 3u);
    EXPECT_LT(shape.bytes, 7000u) << describe(shape);
    EXPECT_EQ(std::filesystem::status(krl).permissions() & std::filesystem::perms::all,
              std::filesystem::perms::owner_read | std::filesystem::perms::owner_write |
                  std::filesystem::perms::group_read | std::filesystem::perms::others_read);

    for (std::uint64_t s : {1000, 1999, 5001, 5004, 5099, 200000, 216382, 216384, 239998, 300000, 370000, 1000000})
        EXPECT_TRUE(revoked(krl, s)) << s << " is revoked: " << describe(shape);
    for (std::uint64_t s : {999, 2000, 5000, 5005, 5100, 199999, 216383, 239999, 240000, 1000001})
        EXPECT_FALSE(revoked(krl, s)) << s << " is not revoked: " << describe(shape);
}

TEST_F(ARevocationList, HoldsAHundredThousandScatteredSerialsAsRangesSshdLoads)
{
    // 100,000 of 125,000 (bench/key-lookup's KRL): ssh-keygen -k wrote
    // this as one bitmap that sshd 9.2 refuses ("bignum is too large").
    std::vector<std::uint64_t> serials;
    for (std::uint64_t s = 1; serials.size() < 100000; ++s)
        if (s % 5 != 0)
            serials.push_back(s);
    const std::string krl = m_root / "revoked.krl";
    const auto shape = writeRevocationList(m_ca + ".pub", serials, krl, 1, nowMs());
    RecordProperty("shape", describe(shape));
    EXPECT_EQ(shape.ranges, 25000u) << "runs of four";
    EXPECT_EQ(shape.listed + shape.bitmaps, 0u);
    EXPECT_TRUE(revoked(krl, 124999));
    EXPECT_TRUE(revoked(krl, 16384));
    EXPECT_FALSE(revoked(krl, 16390)); // every fifth stays valid
    EXPECT_FALSE(revoked(krl, 125000));
}

TEST_F(ARevocationList, LoadsInSshdWithTheWidestBitmapAllowed)
{
    // Every other serial (and the last) over exactly kKrlBitmapBits: one bitmap of 2048
    // bytes whose top bit is set (an SSH mpint then needs a leading zero).
    std::vector<std::uint64_t> serials;
    for (std::uint64_t s = 0; s < kKrlBitmapBits - 2; s += 2)
        serials.push_back(5000 + s);
    serials.push_back(5000 + kKrlBitmapBits - 1);
    const std::string krl = m_root / "revoked.krl";
    const auto shape = writeRevocationList(m_ca + ".pub", serials, krl, 1, nowMs());
    EXPECT_EQ(shape.bitmaps, 1u) << describe(shape);
    EXPECT_TRUE(revoked(krl, 5000 + kKrlBitmapBits - 1));
    EXPECT_FALSE(revoked(krl, 5001));
}

TEST_F(ARevocationList, RevokesNothingWhenEmpty)
{
    const std::string krl = m_root / "revoked.krl";
    const auto shape = writeRevocationList(m_ca + ".pub", {}, krl, 0, nowMs());
    EXPECT_EQ(shape.serials, 0u);
    EXPECT_FALSE(revoked(krl, 1));
}

TEST_F(ARevocationList, NamesTheFileWhenTheCaKeyIsUnusable)
{
    writeFile(m_root / "bad.pub", "not a key\n", 0644);
    try {
        writeRevocationList(m_root / "bad.pub", {1}, m_root / "revoked.krl", 1, nowMs());
        FAIL() << "a CA key that is not one must be refused";
    } catch (const Error& e) {
        EXPECT_NE(std::string(e.what()).find(m_root / "bad.pub"), std::string::npos) << e.what();
    }
    EXPECT_FALSE(std::filesystem::exists(m_root / "revoked.krl"));
}

// registryd's core over one master.db that two Managers share, as two masters share PostgreSQL.
class ARegistryKrl : public ARevocationList {
protected:
    registryd::ManagerOptions options(const std::string& krl)
    {
        registryd::ManagerOptions o;
        o.caKeyFile = m_ca;
        o.certValidity = std::chrono::hours(1);
        o.maxClockSkew = std::chrono::minutes(5);
        o.krlFile = krl;
        return o;
    }

    void revokeAt(RegistryStore& store, const std::string& name, std::uint64_t serial, std::int64_t atMs)
    {
        store.addNode(name, generateSecret());
        ASSERT_TRUE(store.storeCertificate(name, {serial, "ssh-ed25519 AAAA" + name, "cert", atMs + 3600'000}, atMs));
        ASSERT_TRUE(store.revokeCertificate(name, atMs));
    }

    std::string m_db = m_root / "master.db";
    std::int64_t m_now = 1'800'000'000'000;
};

TEST_F(ARegistryKrl, KeepsOnlyRevocationsWhoseCertificatesMayStillBeValid)
{
    RegistryStore store(m_db);
    revokeAt(store, "old", 11, m_now - 3 * 3600'000);       // expired two hours ago
    revokeAt(store, "edge", 12, m_now - 3600'000 - 60'000); // inside the 5 min skew allowance
    revokeAt(store, "recent", 13, m_now - 60'000);
    const std::string krl = m_root / "a.krl";
    registryd::Manager manager(store, options(krl), [this] { return m_now; });
    manager.prepare();
    EXPECT_FALSE(revoked(krl, 11)) << "an expired certificate needs no KRL entry";
    EXPECT_TRUE(revoked(krl, 12));
    EXPECT_TRUE(revoked(krl, 13));
}

TEST_F(ARegistryKrl, FollowsARevocationAnotherMasterMadeInTheSharedStore)
{
    RegistryStore storeA(m_db), storeB(m_db);
    const std::string krlA = m_root / "a.krl", krlB = m_root / "b.krl";
    registryd::Manager masterA(storeA, options(krlA), [this] { return m_now; });
    registryd::Manager masterB(storeB, options(krlB), [this] { return m_now; });
    masterA.prepare();
    masterB.prepare();
    EXPECT_FALSE(masterB.refreshKrl()) << "nothing changed: no rewrite";

    storeA.addNode("web1", generateSecret());
    ASSERT_TRUE(storeA.storeCertificate("web1", {21, "ssh-ed25519 AAAAweb1", "cert", m_now + 3600'000}, m_now));
    masterA.revoke("web1", "stolen");
    EXPECT_TRUE(revoked(krlA, 21));
    EXPECT_FALSE(revoked(krlB, 21)) << "master B has not looked yet";
    EXPECT_TRUE(masterB.refreshKrl());
    EXPECT_TRUE(revoked(krlB, 21));
    EXPECT_FALSE(masterB.refreshKrl());

    // An hour on, the KRL is written again so that expired entries leave it.
    m_now += std::chrono::duration_cast<std::chrono::milliseconds>(registryd::kKrlMaxAge).count() + 1;
    EXPECT_TRUE(masterB.refreshKrl());
}

} // namespace
} // namespace ferry::test
