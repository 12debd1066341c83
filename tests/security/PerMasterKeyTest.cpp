// Issue 12 item 8: one master, or anyone holding its database, must not be
// able to stand in for the node at another master, for a master at the
// node, or for another master's registration answers. Each attack below
// takes what master A's database holds for the node (the nodes.secret
// column, read from the SQLite file) and tries it against master B. Before
// per-master keys that column held the node secret itself, and every one
// of these attacks succeeded.

#include <sys/socket.h>

#include <thread>

#include <gtest/gtest.h>

#include "CollectorSession.h"
#include "PushCycle.h"
#include "ferry/Crypto.h"
#include "ferry/Error.h"
#include "ferry/MasterStore.h"
#include "ferry/PullClient.h"
#include "ferry/PullServer.h"
#include "ferry/RegistryProtocol.h"
#include "ferry/RegistryStore.h"
#include "ferry/Session.h"
#include "ferry/Sqlite.h"
#include "support/TestSupport.h"

namespace ferry {
namespace {

struct StreamPair {
    StreamPair()
    {
        int sv[2];
        if (::socketpair(AF_UNIX, SOCK_STREAM, 0, sv) != 0)
            throw std::runtime_error("socketpair");
        node = std::make_unique<FdStream>(sv[0], sv[0], "collector", true);
        master = std::make_unique<FdStream>(sv[1], sv[1], "node", true);
    }
    std::unique_ptr<FdStream> node, master;
};

// What master A keeps for the node, read as an attacker with the file would
// read it (node-keys.db beside master.db, MasterStore.h).
std::string storedColumn(const std::string& db, const std::string& node)
{
    Database d(nodeKeysPath(db));
    Statement s(d, "SELECT secret FROM node_keys WHERE node = ?1");
    s.bind(1, node);
    if (!s.step())
        throw std::runtime_error("no row for " + node);
    return s.text(0);
}

class TwoMasters : public ::testing::Test {
protected:
    void SetUp() override
    {
        secret = generateSecret();
        RegistryStore(dbA()).addNode("web1", formatNodeCredential("master-a", deriveMasterKey(secret, "master-a")));
        RegistryStore(dbB()).addNode("web1", formatNodeCredential("master-b", deriveMasterKey(secret, "master-b")));
        Spool spool(dir / "spool.db", {});
        for (int i = 0; i < 10; ++i)
            spool.append("k", "v" + std::to_string(i), nowMs());
        stolen = storedColumn(dbA(), "web1");
    }
    std::string dbA() const { return dir / "a.db"; }
    std::string dbB() const { return dir / "b.db"; }

    // A push into master B's collector session by a client that proves with
    // key for masterId (the attacker's forged Auth, built by hand). Returns
    // collectord's refusal ("" when it answered AuthOk).
    std::string pushToB(const std::string& key, const std::string& masterId)
    {
        StreamPair p;
        std::string refused;
        bool accepted = false;
        std::thread server([&] {
            MasterStore store(dbB());
            try {
                collectord::serveSession(*p.master, store, {});
            } catch (const AuthError& e) {
                refused = e.what();
            } catch (const std::exception& e) {
                refused = std::string("other: ") + e.what();
            }
        });
        try {
            const auto hello = decodeHello(readFrame(*p.node, deadlineIn(std::chrono::seconds(5))).payload, "b");
            Spool spool(dir / "spool.db", {});
            AuthMessage auth;
            auth.node = "web1";
            auth.nonce = randomBytes(kNonceSize);
            auth.version = kSessionVersion;
            auth.epoch = spool.epoch().bytes();
            auth.masterId = masterId;
            auth.mac = sessionProofV3(key, "node", "push", auth.version, 0, hello.challenge, auth.nonce, "web1",
                                      auth.epoch, masterId, "");
            writeFrame(*p.node, MessageType::Auth, encode(auth), deadlineIn(std::chrono::seconds(5)));
            accepted = readFrame(*p.node, deadlineIn(std::chrono::seconds(5))).type == MessageType::AuthOk;
            p.node->closeWrite();
        } catch (const std::exception&) {
        }
        server.join();
        // Past AuthOk the forged client just hangs up; only the verdict counts.
        return accepted ? std::string() : refused.empty() ? "refused" : refused;
    }

    test::TempDir dir;
    std::string secret;
    std::string stolen;
};

TEST_F(TwoMasters, HoldOnlyTheirOwnDerivedKeyNeverTheNodeSecret)
{
    EXPECT_EQ(stolen.find(secret), std::string::npos);
    EXPECT_EQ(storedColumn(dbB(), "web1").find(secret), std::string::npos);
    EXPECT_EQ(stolen.rfind("k1:master-a:", 0), 0u) << stolen;
}

TEST_F(TwoMasters, AStolenDatabaseCannotPushAsTheNodeToTheOtherMaster)
{
    const NodeCredential a = parseNodeCredential(stolen);
    // Every way to use what A holds: as A's key under A's id, under B's id,
    // and as if it were the node secret (deriving B's key from it).
    EXPECT_NE(pushToB(a.key, "master-a"), "");
    EXPECT_NE(pushToB(a.key, "master-b"), "");
    EXPECT_NE(pushToB(deriveMasterKey(a.key, "master-b"), "master-b"), "");
    EXPECT_NE(pushToB(deriveMasterKey(stolen, "master-b"), "master-b"), "");
    EXPECT_EQ(MasterStore(dbB()).countRecords("web1"), 0u);
    // The node itself, with its secret, gets in: the refusals are the keys'.
    EXPECT_EQ(pushToB(deriveMasterKey(secret, "master-b"), "master-b"), "");
}

TEST_F(TwoMasters, AStolenDatabaseCannotRegisterAsTheNodeAtTheOtherMaster)
{
    const NodeCredential a = parseNodeCredential(stolen);
    for (const auto& [key, id] : std::vector<std::pair<std::string, std::string>>{
             {a.key, "master-a"}, {a.key, "master-b"}, {deriveMasterKey(a.key, "master-b"), "master-b"}}) {
        RegistrationRequest r;
        r.node = "web1";
        r.publicKey = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOMqqnkVzrm0SdG6UOoqKLsabgH5C9okWi0dh2l9GKJl";
        r.timeMs = nowMs();
        r.nonce = randomBytes(kNonceSize);
        r.masterId = id;
        const auto signedRequest = decodeRegistrationRequest(encodeRegistrationRequest(r, key), "attacker");
        const auto keyAtB = registrationKey(storedColumn(dbB(), "web1"), signedRequest.request);
        EXPECT_FALSE(keyAtB && verifyRegistrationRequest(signedRequest, *keyAtB)) << id;
    }
}

TEST_F(TwoMasters, AStolenDatabaseCannotSignRegistrationAnswersForTheOtherMaster)
{
    // Master A (or whoever holds its database) answers a registration that
    // the node sent to master B's address: it must not pin A's host keys
    // as B's.
    const NodeCredential a = parseNodeCredential(stolen);
    RegistrationResponse answer;
    answer.state = RegistrationState::Accepted;
    answer.requestNonce = randomBytes(kNonceSize);
    answer.hostKeys = {"ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOMqqnkVzrm0SdG6UOoqKLsabgH5C9okWi0dh2l9GKJl"};
    answer.version2 = true;
    const std::string nodeKeyForB = deriveMasterKey(secret, "master-b");
    for (const std::string& key : {a.key, deriveMasterKey(a.key, "master-b")}) {
        const auto decoded = decodeRegistrationResponse(encodeRegistrationResponse(answer, key), "attacker");
        EXPECT_FALSE(verifyRegistrationResponse(decoded, nodeKeyForB));
    }
    // B itself can.
    EXPECT_TRUE(verifyRegistrationResponse(
        decodeRegistrationResponse(
            encodeRegistrationResponse(answer, parseNodeCredential(storedColumn(dbB(), "web1")).key), "b"),
        nodeKeyForB));
}

TEST_F(TwoMasters, AStolenDatabaseCannotPullFromTheNodeAsTheOtherMaster)
{
    // Pull: the master proves first and names its id; the node derives the
    // key for that id from its secret. A's key relabelled as B's fails.
    const NodeCredential a = parseNodeCredential(stolen);
    auto pullAs = [&](const std::string& credential) {
        StreamPair p;
        std::string nodeSide;
        std::thread nodeThread([&] {
            Spool spool(dir / "spool.db", {});
            PullServerOptions o;
            o.nodeName = "web1";
            o.secret = secret;
            o.ioTimeout = std::chrono::seconds(5);
            try {
                PullServer(*p.node, spool, o).run({PullVerb::Status, 0});
            } catch (const std::exception& e) {
                nodeSide = e.what();
            }
        });
        bool ok = true;
        try {
            MasterStore store(dbB());
            PullClient(*p.master, {"web1", credential, std::chrono::seconds(5), "node", "any-id"}).status(store);
        } catch (const std::exception&) {
            ok = false;
        }
        nodeThread.join();
        return ok ? std::string() : nodeSide;
    };
    EXPECT_NE(pullAs(formatNodeCredential("master-b", a.key)), "");
    EXPECT_NE(pullAs(formatNodeCredential("master-b", deriveMasterKey(a.key, "master-b"))), "");
    EXPECT_EQ(pullAs(storedColumn(dbB(), "web1")), "");
}

TEST(ASessionBinding, RefusesAProofRelayedFromASessionWithAnotherSshd)
{
    // The node binds its proof to the host key of the sshd it verified; a
    // collector behind another sshd (a relay) refuses it, its own accepts.
    test::TempDir dir;
    const std::string secret = generateSecret();
    MasterStore(dir / "m.db").addNode("web1", formatNodeCredential("m", deriveMasterKey(secret, "m")));
    {
        Spool spool(dir / "spool.db", {});
        spool.append("k", "v", nowMs());
    }
    auto push = [&](const std::string& binding) {
        StreamPair p;
        std::string refused;
        std::thread server([&] {
            MasterStore store(dir / "m.db");
            collectord::SessionOptions so;
            so.sshdHostKeys = {"SHA256:this-masters-sshd"};
            try {
                collectord::serveSession(*p.master, store, so);
            } catch (const std::exception& e) {
                refused = e.what();
            }
        });
        pushd::PushCycleOptions o;
        o.nodeName = "web1";
        o.secret = secret;
        o.masterId = "m";
        o.binding = binding;
        o.ioTimeout = std::chrono::seconds(5);
        Spool spool(dir / "spool.db", {});
        try {
            pushd::runPushCycle(*p.node, spool, o);
        } catch (const std::exception&) {
        }
        server.join();
        return refused;
    };
    EXPECT_NE(push("SHA256:another-sshd").find("not this master's"), std::string::npos);
    EXPECT_EQ(push("SHA256:this-masters-sshd"), "");
    EXPECT_EQ(MasterStore(dir / "m.db").countRecords("web1"), 1u);
}

TEST(ALegacyCredential, IsReplacedByTheDerivedKeyAtTheFirstRegistrationOfKind3)
{
    // The registry's own logic (what registryd calls): a node secret given
    // before per-master keys proves kind-3 requests for any id, and the
    // pending request an operator accepts with it leaves only the derived key.
    test::TempDir dir;
    const std::string secret = generateSecret();
    RegistryStore store(dir / "m.db");
    RegistrationRequest r;
    r.node = "web1";
    r.publicKey = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOMqqnkVzrm0SdG6UOoqKLsabgH5C9okWi0dh2l9GKJl";
    r.timeMs = nowMs();
    r.nonce = randomBytes(kNonceSize);
    r.masterId = "m.example";
    const auto signedRequest =
        decodeRegistrationRequest(encodeRegistrationRequest(r, deriveMasterKey(secret, "m.example")), "node");
    ASSERT_TRUE(store.addPending("web1", r.publicKey, r.mode, r.sshPort, signedRequest.signedBytes, signedRequest.mac,
                                 "127.0.0.1", nowMs()));
    store.accept("web1", secret);
    const std::string column = storedColumn(dir / "m.db", "web1");
    EXPECT_EQ(column, formatNodeCredential("m.example", deriveMasterKey(secret, "m.example")));
    EXPECT_EQ(store.node("web1")->publicKey, r.publicKey);
}

} // namespace
} // namespace ferry
