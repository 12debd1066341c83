// registryd against a stranger without any node's secret (issue 12 item 6)
// and the node's sshd host keys (issue 13) and period floor (issue 15),
// each carried out against the real daemon over TCP and the real bus.

#include <filesystem>
#include <set>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "RegistrationSupport.h"
#include "ferry/Bus.h"
#include "ferry/Crypto.h"
#include "ferry/RegistryStore.h"
#include "ferry/SshSession.h"

namespace ferry::test {
namespace {

class ARegistryUnderAttack : public ::testing::Test {
protected:
    void SetUp() override
    {
        m_state = m_root / "master";
        std::filesystem::create_directories(m_state);
        for (const char* k : {"host_key", "node_key", "other_key", "sshd_a", "sshd_b"})
            ensureKeyPair(m_root / k);
        m_nodeKey = publicKeyLine(m_root / "node_key");
        m_otherKey = publicKeyLine(m_root / "other_key");
        m_sshdA = publicKeyLine(m_root / "sshd_a");
        m_sshdB = publicKeyLine(m_root / "sshd_b");
        m_secret = generateSecret();
        m_port = freePort();
    }

    void start(std::vector<std::string> extra)
    {
        for (const char* a : {"--deadline", "1500", "--idle-timeout", "0"})
            extra.emplace_back(a);
        m_registryd.emplace(m_state, m_root / "host_key.pub", m_port, m_root / "registryd.log", extra);
    }

    RunResult master(const std::vector<std::string>& args, const std::string& input = {})
    {
        std::vector<std::string> all = {"master"};
        all.insert(all.end(), args.begin(), args.end());
        return ferryctl(all, {{"FERRY_STATE_DIR", m_state}}, input);
    }

    void enrol(const std::string& node, const std::string& secret)
    {
        const auto r = master({"add-node", node}, secret + "\n");
        ASSERT_EQ(r.exitCode, 0) << r.err;
        ASSERT_EQ(r.err.find("not reachable"), std::string::npos) << r.err;
    }

    RegistrationRequest request(const std::string& node, const std::string& key,
                                std::vector<std::string> hostKeys = {})
    {
        RegistrationRequest r;
        r.node = node;
        r.publicKey = key;
        r.mode = "pull";
        r.sshPort = 2222;
        r.timeMs = nowMs();
        r.nonce = randomBytes(kNonceSize);
        r.hostKeys = std::move(hostKeys);
        return r;
    }

    // The decoded answer, or an empty optional for an Error frame.
    std::optional<SignedResponse> answer(const Reply& reply)
    {
        if (!reply.frame || reply.frame->type != MessageType::Response)
            return std::nullopt;
        return decodeRegistrationResponse(reply.frame->payload, "test");
    }

    TempDir m_root;
    TestBus m_bus;
    std::string m_state, m_nodeKey, m_otherKey, m_sshdA, m_sshdB, m_secret;
    int m_port = 0;
    std::optional<Registryd> m_registryd;
};

TEST_F(ARegistryUnderAttack, CannotRewriteAPendingNodesKeyModeOrPortWithoutItsSecret)
{
    start({"--unknown-nodes", "pending"});
    ASSERT_TRUE(answer(rawExchange(m_port, requestFrame(request("newcomer", m_nodeKey), m_secret))));
    const auto before = registrySnapshot(m_state, false);
    const auto port = nodeColumn(m_state, "newcomer", "ssh_port");
    // A stranger sends its own key, mode and port under the same name.
    auto forged = request("newcomer", m_otherKey);
    forged.mode = "push";
    forged.sshPort = 22;
    const auto reply = answer(rawExchange(m_port, requestFrame(forged, generateSecret())));
    ASSERT_TRUE(reply);
    EXPECT_EQ(reply->response.state, RegistrationState::Pending);
    EXPECT_EQ(registrySnapshot(m_state, false), before);
    EXPECT_EQ(nodeColumn(m_state, "newcomer", "public_key"), m_nodeKey);
    EXPECT_EQ(nodeColumn(m_state, "newcomer", "mode"), "pull");
    EXPECT_EQ(nodeColumn(m_state, "newcomer", "ssh_port"), port);
}

TEST_F(ARegistryUnderAttack, RefusesAReplayOfAPendingNodesCapturedRequest)
{
    start({"--unknown-nodes", "pending"});
    const auto frame = requestFrame(request("newcomer", m_nodeKey), m_secret);
    ASSERT_TRUE(answer(rawExchange(m_port, frame)));
    const auto before = registrySnapshot(m_state);
    const auto replay = rawExchange(m_port, frame);
    EXPECT_TRUE(replay.isError("replay")) << replay.errorMessage();
    EXPECT_EQ(registrySnapshot(m_state), before);
}

TEST_F(ARegistryUnderAttack, LearnsNothingAboutANameOrADeclineReasonWithoutTheSecret)
{
    start({"--unknown-nodes", "pending"});
    enrol("enrolled", m_secret);
    enrol("declined", m_secret);
    ASSERT_EQ(master({"decline", "declined", "unpaid", "invoice", "4711"}).exitCode, 0);
    ASSERT_TRUE(answer(rawExchange(m_port, requestFrame(request("waiting", m_nodeKey), m_secret))));

    std::set<std::string> reasons;
    for (const char* name : {"enrolled", "declined", "waiting", "ghost"}) {
        const auto reply = rawExchange(m_port, requestFrame(request(name, m_otherKey), generateSecret()));
        const auto r = answer(reply);
        ASSERT_TRUE(r) << name << ": " << reply.errorMessage();
        EXPECT_EQ(r->response.state, RegistrationState::Pending) << name;
        EXPECT_TRUE(r->mac.empty()) << name;
        EXPECT_TRUE(r->response.hostKeys.empty()) << name;
        EXPECT_EQ(r->response.reason.find("invoice"), std::string::npos) << r->response.reason;
        reasons.insert(r->response.reason);
    }
    EXPECT_EQ(reasons.size(), 1u) << "the answers differ by name";

    // With enrolment closed: an unknown name and a wrong secret look the same.
    m_registryd.reset();
    start({"--unknown-nodes", "refuse"});
    const auto unknown = rawExchange(m_port, requestFrame(request("ghost2", m_otherKey), generateSecret()));
    const auto wrong = rawExchange(m_port, requestFrame(request("enrolled", m_otherKey), generateSecret()));
    EXPECT_TRUE(unknown.isError("not-accepted")) << unknown.errorMessage();
    EXPECT_TRUE(wrong.isError("not-accepted")) << wrong.errorMessage();
    EXPECT_EQ(unknown.errorMessage(), wrong.errorMessage());
}

TEST_F(ARegistryUnderAttack, SummarisesAFloodOfRefusalsInTheLog)
{
    // Fifty refusals from one source: the per-source rate limit (its own
    // flood tests in registry-flood-tests) is lifted so that each gets its
    // answer and the log is what is tested.
    start({"--unknown-nodes", "refuse", "--rate-per-source", "0"});
    for (int i = 0; i < 50; ++i)
        ASSERT_TRUE(rawExchange(m_port, requestFrame(request("ghost" + std::to_string(i), m_otherKey),
                                                     generateSecret()))
                        .isError("not-accepted"));
    const auto log = m_registryd->log();
    std::size_t lines = 0;
    for (std::size_t p = 0; (p = log.find("warning: Refused registration", p)) != std::string::npos; ++p)
        ++lines;
    EXPECT_LE(lines, 2u) << log;
}

TEST_F(ARegistryUnderAttack, PinsTheNodesSshdHostKeysAndRefusesAChangeNamingBothFingerprints)
{
    start({"--unknown-nodes", "refuse"});
    enrol("n1", m_secret);
    auto r = answer(rawExchange(m_port, requestFrame(request("n1", m_nodeKey, {m_sshdA}), m_secret)));
    ASSERT_TRUE(r);
    EXPECT_EQ(r->response.state, RegistrationState::Accepted);
    EXPECT_EQ(RegistryStore::pinnedHostKeys(m_state + "/master.db", "n1"), std::vector<std::string>{m_sshdA});

    // Same keys again: nothing changes. Another key: refused, and kept as a change.
    ASSERT_TRUE(answer(rawExchange(m_port, requestFrame(request("n1", m_nodeKey, {m_sshdA}), m_secret))));
    const auto changed = rawExchange(m_port, requestFrame(request("n1", m_nodeKey, {m_sshdB}), m_secret));
    ASSERT_TRUE(changed.isError("hostkey-changed")) << changed.errorMessage();
    EXPECT_NE(changed.errorMessage().find("node n1"), std::string::npos) << changed.errorMessage();
    EXPECT_NE(changed.errorMessage().find(keyFingerprint(m_sshdA)), std::string::npos) << changed.errorMessage();
    EXPECT_NE(changed.errorMessage().find(keyFingerprint(m_sshdB)), std::string::npos) << changed.errorMessage();
    EXPECT_TRUE(m_registryd->waitForLog("sshd host key of node n1 changed")) << m_registryd->log();
    EXPECT_EQ(RegistryStore::pinnedHostKeys(m_state + "/master.db", "n1"), std::vector<std::string>{m_sshdA});

    // A stranger cannot make a change pending: the unsigned path never touches pins.
    enrol("n2", m_secret);
    rawExchange(m_port, requestFrame(request("n2", m_nodeKey, {m_sshdB}), generateSecret()));
    EXPECT_TRUE(RegistryStore::pinnedHostKeys(m_state + "/master.db", "n2").empty());

    // The operator sees it...
    auto nodes = master({"nodes"});
    ASSERT_EQ(nodes.exitCode, 0) << nodes.err;
    EXPECT_NE(nodes.out.find("CHANGED"), std::string::npos) << nodes.out;
    EXPECT_NE(nodes.out.find("accept-hostkey n1"), std::string::npos) << nodes.out;
    EXPECT_NE(nodes.out.find(keyFingerprint(m_sshdB)), std::string::npos) << nodes.out;
    const auto json = nlohmann::json::parse(master({"--json", "nodes"}).out);
    bool seen = false;
    for (const auto& n : json)
        if (n["name"] == "n1") {
            seen = true;
            EXPECT_EQ(n["host_keys"], nlohmann::json::array({m_sshdA}));
            EXPECT_EQ(n["pending_host_keys"], nlohmann::json::array({m_sshdB}));
        }
    EXPECT_TRUE(seen);

    // ...and accepts it; the next registration with the new key is accepted.
    const auto accepted = master({"accept-hostkey", "n1"});
    ASSERT_EQ(accepted.exitCode, 0) << accepted.err;
    EXPECT_EQ(RegistryStore::pinnedHostKeys(m_state + "/master.db", "n1"), std::vector<std::string>{m_sshdB});
    r = answer(rawExchange(m_port, requestFrame(request("n1", m_nodeKey, {m_sshdB}), m_secret)));
    ASSERT_TRUE(r);
    EXPECT_EQ(r->response.state, RegistrationState::Accepted);
    const auto again = master({"accept-hostkey", "n1"});
    EXPECT_NE(again.exitCode, 0);
    EXPECT_NE(again.err.find("NoHostKeyChange"), std::string::npos) << again.err;
}

TEST_F(ARegistryUnderAttack, PinsTheHostKeysOfAPendingRequestOnlyWhenTheSecretVouchesForIt)
{
    start({"--unknown-nodes", "pending"});
    ASSERT_TRUE(answer(rawExchange(m_port, requestFrame(request("real", m_nodeKey, {m_sshdA}), m_secret))));
    ASSERT_TRUE(answer(rawExchange(m_port, requestFrame(request("squatted", m_otherKey, {m_sshdB}), generateSecret()))));
    EXPECT_TRUE(RegistryStore::pinnedHostKeys(m_state + "/master.db", "real").empty());
    ASSERT_EQ(master({"accept", "real", "--with-secret"}, m_secret).exitCode, 0);
    ASSERT_EQ(master({"accept", "squatted", "--with-secret"}, m_secret).exitCode, 0);
    EXPECT_EQ(RegistryStore::pinnedHostKeys(m_state + "/master.db", "real"), std::vector<std::string>{m_sshdA});
    EXPECT_TRUE(RegistryStore::pinnedHostKeys(m_state + "/master.db", "squatted").empty());
}

TEST_F(ARegistryUnderAttack, SendsThePeriodFloorInTheSignedAnswerWithPerNodeOverrides)
{
    start({"--unknown-nodes", "refuse", "--min-push-period", "240", "--min-pull-interval", "600"});
    enrol("n1", m_secret);
    enrol("n2", m_secret);
    const auto set = master({"set-policy", "n2", "--min-push-period", "900"});
    ASSERT_EQ(set.exitCode, 0) << set.err;
    auto r = answer(rawExchange(m_port, requestFrame(request("n1", m_nodeKey), m_secret)));
    ASSERT_TRUE(r);
    EXPECT_TRUE(verifyRegistrationResponse(*r, testMasterKey(m_secret)));
    EXPECT_EQ(r->response.minPushPeriodS, 240u);
    EXPECT_EQ(r->response.minPullIntervalS, 600u);
    r = answer(rawExchange(m_port, requestFrame(request("n2", m_otherKey), m_secret)));
    ASSERT_TRUE(r);
    EXPECT_EQ(r->response.minPushPeriodS, 900u);
    EXPECT_EQ(r->response.minPullIntervalS, 600u);
    // An older node (request kind 1, enrolled with its secret, which the
    // master keeps until a kind-3 request replaces it) gets an answer it can
    // parse: no floor fields.
    enrol("n3", m_secret);
    auto old = request("n3", m_sshdA);
    old.version2 = false;
    old.version3 = false;
    r = answer(rawExchange(m_port, requestFrame(old, m_secret)));
    ASSERT_TRUE(r);
    EXPECT_FALSE(r->response.version2);

    const auto bad = master({"set-policy", "n2", "--min-push-period", "soon"});
    EXPECT_EQ(bad.exitCode, 2);
    const auto json = nlohmann::json::parse(master({"--json", "nodes"}).out);
    for (const auto& n : json) {
        if (n["name"] == "n2") {
            EXPECT_EQ(n["min_push_period_s"], 900);
        }
    }
}

} // namespace
} // namespace ferry::test
