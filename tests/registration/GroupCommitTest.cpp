// registryd's group commit (issue 16): registrations that arrive together
// share one transaction and one synced COMMIT, each in a nested transaction
// of its own, and none is answered before its group committed. Over real TCP
// and a real master.db: the Manager and RegistryServer in this process (so
// that the COMMITs on the store's connection can be counted with SQLite's
// commit hook), and ferry-registryd itself killed with SIGKILL.
//
// To make a group deterministic, a second connection holds master.db's
// write lock (as collectord may) while the requests arrive: the group that
// waits for it takes every request queued by the time it gets the lock.

#include <sqlite3.h>

#include <atomic>
#include <csignal>
#include <cstdio>
#include <filesystem>
#include <functional>
#include <thread>

#include <gtest/gtest.h>

#include "Manager.h"
#include "RegistrationSupport.h"
#include "RegistryServer.h"
#include "ferry/Bus.h"
#include "ferry/Crypto.h"
#include "ferry/RegistryStore.h"
#include "ferry/SqlConnection.h"
#include "ferry/Sqlite.h"
#include "ferry/SshKeys.h"

namespace ferry::test {
namespace {

struct TestNode {
    std::string name, secret, key, hostKey;
};

TestNode makeNode(const std::string& dir, const std::string& name)
{
    const std::string keyFile = dir + "/key-" + name;
    const std::string hostKeyFile = dir + "/host-key-" + name;
    ensureKeyPair(keyFile);
    ensureKeyPair(hostKeyFile);
    return {name, generateSecret(), normalizeKeyLine(publicKeyLine(keyFile)),
            normalizeKeyLine(publicKeyLine(hostKeyFile))};
}

std::string registrationFrame(const TestNode& node, const std::vector<std::string>& hostKeys)
{
    RegistrationRequest r = newRequest(node.name, node.key);
    r.hostKeys = hostKeys;
    return requestFrame(r, node.secret);
}

// An answer "accepted", signed with the key the node holds for the test master.
bool acceptedFor(const Reply& reply, const TestNode& node)
{
    if (!reply.frame || reply.frame->type != MessageType::Response)
        return false;
    const auto response = decodeRegistrationResponse(reply.frame->payload, "registryd");
    return verifyRegistrationResponse(response, testMasterKey(node.secret)) &&
           response.response.state == RegistrationState::Accepted;
}

std::string describe(const Reply& reply)
{
    if (!reply.frame)
        return "no answer: " + reply.closedWhy;
    if (reply.frame->type == MessageType::Error)
        return "error: " + reply.errorMessage();
    return std::string("answer ") + toString(decodeRegistrationResponse(reply.frame->payload, "test").response.state);
}

class AGroupCommit : public ::testing::Test {
protected:
    void SetUp() override
    {
        m_db = m_root / "master.db";
        // With a way to open the store again, as registryd has (a request that
        // fails marks the store for reopening).
        m_store.emplace(std::function<std::unique_ptr<SqlConnection>()>(
            [path = m_db] { return std::make_unique<SqliteConnection>(path); }));
    }

    void TearDown() override
    {
        if (m_server)
            m_server->stop();
        m_server.reset();
        m_manager.reset();
    }

    void serve()
    {
        m_manager.emplace(*m_store, registryd::ManagerOptions{}, [] { return nowMs(); });
        m_port = freePort();
        bool fromSystemd = false;
        auto fds = registryd::listeningSockets("127.0.0.1:" + std::to_string(m_port), fromSystemd);
        registryd::ServerOptions options;
        // Every client of the test comes from 127.0.0.1.
        options.sourceRate = 0;
        options.maxPerSource = 128;
        m_server.emplace(
            std::move(fds), options,
            [this](const Frame& request, const std::string& peer) { return m_manager->handle(request, peer); }, [] {},
            [] {});
        m_server->start();
    }

    // Counts the COMMITs made on the store's connection from now on.
    void countCommits()
    {
        auto& sqlite = dynamic_cast<SqliteConnection&>(m_store->connection());
        sqlite3_commit_hook(
            sqlite.database().handle(),
            [](void* count) {
                ++*static_cast<std::atomic<int>*>(count);
                return 0;
            },
            &m_commits);
    }

    // Sends the frames while another connection holds the write lock, each
    // once the one before waits for a group (so they queue in this order),
    // and lets the lock go once every one waits.
    std::vector<Reply> sendAsOneGroup(const std::vector<std::string>& frames)
    {
        Database blocker(m_db);
        blocker.exec("BEGIN IMMEDIATE");
        std::vector<Reply> replies(frames.size());
        std::vector<std::thread> clients;
        bool queued = true;
        for (std::size_t i = 0; i < frames.size(); ++i) {
            clients.emplace_back(
                [&, i] { replies[i] = rawExchange(m_port, frames[i], false, std::chrono::seconds(20)); });
            queued = queued && waitUntil([&] { return m_manager->waiting() == i + 1; }, std::chrono::seconds(10),
                                         std::chrono::milliseconds(2));
        }
        blocker.exec("ROLLBACK");
        for (auto& c : clients)
            c.join();
        EXPECT_TRUE(queued) << "the requests did not queue one by one";
        return replies;
    }

    TempDir m_root;
    std::string m_db;
    std::optional<RegistryStore> m_store;
    std::optional<registryd::Manager> m_manager;
    std::optional<registryd::RegistryServer> m_server;
    int m_port = 0;
    std::atomic<int> m_commits{0};
};

} // namespace

TEST_F(AGroupCommit, StoresManyFirstRegistrationsAtOnceWithFewerCommitsThanRegistrations)
{
    constexpr std::size_t kNodes = 48;
    std::vector<TestNode> nodes;
    std::vector<std::string> frames;
    for (std::size_t i = 0; i < kNodes; ++i) {
        nodes.push_back(makeNode(m_root.path(), "n" + std::to_string(i)));
        m_store->addNode(nodes.back().name, nodes.back().secret);
        frames.push_back(registrationFrame(nodes.back(), {nodes.back().hostKey}));
    }
    serve();
    countCommits();
    const auto replies = sendAsOneGroup(frames);
    for (std::size_t i = 0; i < kNodes; ++i)
        EXPECT_TRUE(acceptedFor(replies[i], nodes[i])) << nodes[i].name << ": " << describe(replies[i]);
    std::printf("%zu first registrations at once: %d commits of master.db, %llu groups\n", kNodes, m_commits.load(),
                static_cast<unsigned long long>(m_manager->groupCommits()));
    EXPECT_LT(m_commits.load(), static_cast<int>(kNodes));
    EXPECT_GE(m_commits.load(), 1);

    // Every one durable, read through a connection of its own: its key,
    // its pinned host key, and the node secret replaced by the key for the
    // test master.
    RegistryStore check(m_db);
    for (const auto& n : nodes) {
        const auto node = check.node(n.name);
        ASSERT_TRUE(node) << n.name;
        EXPECT_EQ(node->publicKey, n.key) << n.name;
        EXPECT_EQ(node->hostKeys, std::vector<std::string>{n.hostKey}) << n.name;
        EXPECT_EQ(check.secret(n.name), formatNodeCredential(kTestMasterId, testMasterKey(n.secret))) << n.name;
    }
}

TEST_F(AGroupCommit, AnswersAFailureInsideAGroupAloneAndStoresTheOthers)
{
    std::vector<TestNode> good;
    for (int i = 0; i < 4; ++i)
        good.push_back(makeNode(m_root.path(), "good" + std::to_string(i)));
    const TestNode moved = makeNode(m_root.path(), "moved");   // offers another sshd host key than it pinned
    const TestNode twice = makeNode(m_root.path(), "twice");   // its one request arrives twice
    const TestNode broken = makeNode(m_root.path(), "broken"); // the database refuses its key
    for (const auto& n : good)
        m_store->addNode(n.name, n.secret);
    for (const TestNode* n : {&moved, &twice, &broken})
        m_store->addNode(n->name, n->secret);
    serve();
    ASSERT_TRUE(acceptedFor(rawExchange(m_port, registrationFrame(moved, {moved.hostKey})), moved));
    const std::string otherHostKey = makeNode(m_root.path(), "other").hostKey;
    {
        // A failure of the store in the middle of a registration, after its
        // nonce, its secret's replacement and its host-key pin were written.
        Database admin(m_db);
        admin.exec("CREATE TRIGGER test_refuse_broken BEFORE UPDATE OF public_key ON nodes"
                   " WHEN NEW.name = 'broken' BEGIN SELECT RAISE(ABORT, 'the test refuses node broken'); END");
    }

    // In this order: good0, twice, moved (refused), twice again (a replay
    // inside the group), good1, broken (fails), good2, good3.
    const std::string twiceFrame = registrationFrame(twice, {twice.hostKey});
    const std::vector<std::string> frames = {
        registrationFrame(good[0], {good[0].hostKey}), twiceFrame,
        registrationFrame(moved, {otherHostKey}),      twiceFrame,
        registrationFrame(good[1], {good[1].hostKey}), registrationFrame(broken, {broken.hostKey}),
        registrationFrame(good[2], {good[2].hostKey}), registrationFrame(good[3], {good[3].hostKey})};
    const auto groupsBefore = m_manager->groupCommits();
    const auto replies = sendAsOneGroup(frames);
    // The failure ends its group (the store is opened again for the next
    // one): the requests after it are the second group.
    const auto groups = m_manager->groupCommits() - groupsBefore;
    std::printf("%zu registrations queued at once, one refused, one replayed, one failing: %llu groups\n",
                frames.size(), static_cast<unsigned long long>(groups));
    EXPECT_EQ(groups, 2u);

    EXPECT_TRUE(acceptedFor(replies[0], good[0])) << describe(replies[0]);
    EXPECT_TRUE(acceptedFor(replies[1], twice)) << describe(replies[1]);
    EXPECT_TRUE(replies[2].isError("hostkey-changed")) << describe(replies[2]);
    EXPECT_TRUE(replies[3].isError("replay")) << describe(replies[3]);
    EXPECT_TRUE(acceptedFor(replies[4], good[1])) << describe(replies[4]);
    EXPECT_TRUE(replies[5].isError("internal")) << describe(replies[5]);
    EXPECT_TRUE(acceptedFor(replies[6], good[2])) << describe(replies[6]);
    EXPECT_TRUE(acceptedFor(replies[7], good[3])) << describe(replies[7]);

    RegistryStore check(m_db);
    for (const auto& n : good)
        EXPECT_EQ(check.node(n.name)->publicKey, n.key) << n.name;
    EXPECT_EQ(check.node("twice")->publicKey, twice.key);
    // The refused host-key change waits for the operator; the pin stays.
    const auto movedRow = check.node("moved");
    EXPECT_EQ(movedRow->hostKeys, std::vector<std::string>{moved.hostKey});
    EXPECT_EQ(movedRow->pendingHostKeys, std::vector<std::string>{otherHostKey});
    // Nothing of the failed registration is left: no key, no pin, no nonce,
    // and the node secret it would have replaced is still there.
    const auto brokenRow = check.node("broken");
    EXPECT_EQ(brokenRow->publicKey, "");
    EXPECT_TRUE(brokenRow->hostKeys.empty());
    EXPECT_EQ(check.secret("broken"), broken.secret);
    SqlStatement nonces(check.connection(), "SELECT COUNT(*) FROM registry_nonces WHERE node = 'broken'");
    ASSERT_TRUE(nonces.step());
    EXPECT_EQ(nonces.int64(0), 0);
}

TEST(ARegistrydKilledInAStorm, HasEveryAnsweredRegistrationInItsDatabase)
{
    TempDir root;
    TestBus bus;
    const std::string state = root / "master";
    std::filesystem::create_directories(state);
    constexpr std::size_t kNodes = 400;
    std::vector<TestNode> nodes;
    {
        RegistryStore store(state + "/master.db");
        for (std::size_t i = 0; i < kNodes; ++i) {
            nodes.push_back(makeNode(root.path(), "k" + std::to_string(i)));
            store.addNode(nodes.back().name, nodes.back().secret);
        }
    }
    ensureKeyPair(root / "host_key");
    const int port = freePort();
    Registryd registryd(
        state, root / "host_key.pub", port, root / "registryd.log",
        {"--unknown-nodes", "refuse", "--idle-timeout", "0", "--rate-per-source", "0", "--max-per-source", "128"});
    std::vector<std::atomic<bool>> answered(kNodes);
    std::atomic<std::size_t> next{0}, answeredCount{0};
    std::vector<std::thread> clients;
    for (int c = 0; c < 24; ++c)
        clients.emplace_back([&] {
            for (std::size_t i; (i = next.fetch_add(1)) < kNodes;) {
                try {
                    const Reply reply = rawExchange(port, registrationFrame(nodes[i], {nodes[i].hostKey}));
                    if (acceptedFor(reply, nodes[i])) {
                        answered[i] = true;
                        ++answeredCount;
                    }
                } catch (const std::exception&) {
                    // registryd is gone: not answered.
                }
            }
        });
    // Killed in the middle: some groups answered, one maybe executing or
    // committing, more requests queued.
    waitUntil([&] { return answeredCount.load() >= kNodes / 4; }, std::chrono::seconds(30),
              std::chrono::milliseconds(1));
    registryd.process().signal(SIGKILL);
    for (auto& c : clients)
        c.join();
    registryd.process().wait(std::chrono::seconds(5));

    RegistryStore check(state + "/master.db");
    std::size_t stored = 0, answeredButMissing = 0;
    for (std::size_t i = 0; i < kNodes; ++i) {
        const auto node = check.node(nodes[i].name);
        const bool isStored =
            node && node->publicKey == nodes[i].key && node->hostKeys == std::vector{nodes[i].hostKey};
        stored += isStored ? 1 : 0;
        if (answered[i] && !isStored) {
            ++answeredButMissing;
            ADD_FAILURE() << nodes[i].name << " was answered accepted but is not in master.db after the kill";
        }
    }
    std::printf(
        "registryd killed after %zu of %zu answers: %zu registrations in master.db, %zu answered ones missing\n",
        answeredCount.load(), kNodes, stored, answeredButMissing);
    EXPECT_GT(answeredCount.load(), 0u);
    EXPECT_GE(stored, answeredCount.load());
}

} // namespace ferry::test
