// registryd's authorized keys view when its Manager writes it (a deferred
// view, as registryd runs it): a registration is answered only once its key
// is in the view, and one rewrite covers every change made before it.

#include <sqlite3.h>

#include <atomic>
#include <cstdio>
#include <filesystem>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include <gtest/gtest.h>

#include "Manager.h"
#include "RegistrationSupport.h"
#include "ferry/AuthorizedKeysView.h"
#include "ferry/Clock.h"
#include "ferry/Crypto.h"
#include "ferry/RegistryProtocol.h"
#include "ferry/RegistryStore.h"
#include "ferry/SshKeys.h"
#include "support/TestSupport.h"

using namespace ferry;
using namespace ferry::test;

namespace {

// The node the view maps publicKey to, as the helper reads it ("" when the
// key is not in the view).
std::string nodeInView(const std::string& viewPath, const std::string& publicKey)
{
    sqlite3* db = nullptr;
    const std::string uri = "file:" + viewPath + "?immutable=1";
    std::string node;
    if (sqlite3_open_v2(uri.c_str(), &db, SQLITE_OPEN_READONLY | SQLITE_OPEN_URI, nullptr) == SQLITE_OK) {
        sqlite3_stmt* s = nullptr;
        if (sqlite3_prepare_v2(db, "SELECT node FROM authorized_keys WHERE public_key = ?1", -1, &s, nullptr) ==
            SQLITE_OK) {
            sqlite3_bind_text(s, 1, publicKey.data(), static_cast<int>(publicKey.size()), SQLITE_STATIC);
            if (sqlite3_step(s) == SQLITE_ROW)
                node = reinterpret_cast<const char*>(sqlite3_column_text(s, 0));
            sqlite3_finalize(s);
        }
    }
    sqlite3_close(db);
    return node;
}

// Every row of the view file, as the helper would open it.
std::vector<std::string> viewRows(const std::string& viewPath)
{
    sqlite3* db = nullptr;
    const std::string uri = "file:" + viewPath + "?immutable=1";
    std::vector<std::string> rows;
    if (sqlite3_open_v2(uri.c_str(), &db, SQLITE_OPEN_READONLY | SQLITE_OPEN_URI, nullptr) == SQLITE_OK) {
        sqlite3_stmt* s = nullptr;
        if (sqlite3_prepare_v2(db, "SELECT public_key, node FROM authorized_keys ORDER BY public_key", -1, &s,
                               nullptr) == SQLITE_OK) {
            while (sqlite3_step(s) == SQLITE_ROW)
                rows.push_back(std::string(reinterpret_cast<const char*>(sqlite3_column_text(s, 0))) + " " +
                               reinterpret_cast<const char*>(sqlite3_column_text(s, 1)));
            sqlite3_finalize(s);
        }
    }
    sqlite3_close(db);
    return rows;
}

class ADeferredAuthorizedKeysView : public ::testing::Test {
protected:
    void SetUp() override
    {
        m_view = m_root / "view/authorized-keys.db";
        m_store.emplace(m_root / "master.db");
        m_store->keepAuthorizedKeysView(m_view);
        m_store->writeAuthorizedKeysView();
        m_store->deferAuthorizedKeysView();
    }

    struct Node {
        std::string name, secret, key;
    };

    std::vector<Node> enrol(int count)
    {
        std::vector<Node> nodes;
        for (int i = 0; i < count; ++i) {
            const std::string keyFile = m_root / ("key" + std::to_string(i));
            ensureKeyPair(keyFile);
            nodes.push_back({"n" + std::to_string(i), generateSecret(), normalizeKeyLine(publicKeyLine(keyFile))});
            m_store->addNode(nodes.back().name, nodes.back().secret);
        }
        return nodes;
    }

    static Frame request(const Node& node)
    {
        return {MessageType::Request, requestPayload(newRequest(node.name, node.key), node.secret)};
    }

    static bool accepted(const Frame& answer)
    {
        return answer.type == MessageType::Response &&
               decodeRegistrationResponse(answer.payload, "registryd").response.state == RegistrationState::Accepted;
    }

    TempDir m_root;
    std::string m_view;
    std::optional<RegistryStore> m_store;
};

} // namespace

TEST_F(ADeferredAuthorizedKeysView, AnswersEachOfManyRegistrationsAtOnceOnlyWhenItsKeyIsInTheView)
{
    const auto nodes = enrol(24);
    registryd::Manager manager(*m_store, {}, [] { return nowMs(); });
    std::atomic<int> ready{0};
    std::vector<int> answeredAccepted(nodes.size()), keyInViewAtAnswer(nodes.size());
    std::vector<std::thread> threads;
    for (std::size_t i = 0; i < nodes.size(); ++i)
        threads.emplace_back([&, i] {
            const Frame frame = request(nodes[i]);
            ++ready;
            while (ready.load() < static_cast<int>(nodes.size()))
                std::this_thread::yield();
            const Frame answer = manager.handle(frame, "127.0.0.1:40000");
            // What sshd's helper would find the moment the node has its answer.
            keyInViewAtAnswer[i] = nodeInView(m_view, nodes[i].key) == nodes[i].name;
            answeredAccepted[i] = accepted(answer);
        });
    for (auto& t : threads)
        t.join();
    for (std::size_t i = 0; i < nodes.size(); ++i) {
        EXPECT_TRUE(answeredAccepted[i]) << nodes[i].name;
        EXPECT_TRUE(keyInViewAtAnswer[i]) << nodes[i].name << " was answered before its key was in the view";
    }
    // How many rewrites served them depends on the scheduling, so it is
    // printed, not asserted; WritesEveryChangeMadeBeforeItInOneRewrite pins
    // down that one rewrite covers every change made before it.
    std::printf("%zu registrations at once: %zu rewrites of the view\n", nodes.size(), manager.viewWrites());
}

TEST_F(ADeferredAuthorizedKeysView, WritesEveryChangeMadeBeforeItInOneRewrite)
{
    const auto nodes = enrol(6);
    // Five keys recorded without an answer yet (as if their registrations
    // were between their store change and their flush), then one
    // registration through the Manager: its one rewrite shows all six.
    for (std::size_t i = 0; i + 1 < nodes.size(); ++i)
        m_store->recordKey(nodes[i].name, nodes[i].key, "auto", "127.0.0.1", 22, nowMs());
    for (std::size_t i = 0; i + 1 < nodes.size(); ++i)
        EXPECT_EQ(nodeInView(m_view, nodes[i].key), "") << "a deferred view is not written by the store itself";
    registryd::Manager manager(*m_store, {}, [] { return nowMs(); });
    ASSERT_TRUE(accepted(manager.handle(request(nodes.back()), "127.0.0.1:40000")));
    EXPECT_EQ(manager.viewWrites(), 1u);
    for (const auto& n : nodes)
        EXPECT_EQ(nodeInView(m_view, n.key), n.name);
    // Nothing changed since: a registration that changes no key writes nothing.
    ASSERT_TRUE(accepted(manager.handle(request(nodes.back()), "127.0.0.1:40000")));
    EXPECT_EQ(manager.viewWrites(), 1u);
}

TEST_F(ADeferredAuthorizedKeysView, ShowsARevocationBeforeTheOperatorIsAnswered)
{
    const auto nodes = enrol(1);
    registryd::Manager manager(*m_store, {}, [] { return nowMs(); });
    ASSERT_TRUE(accepted(manager.handle(request(nodes[0]), "127.0.0.1:40000")));
    ASSERT_EQ(nodeInView(m_view, nodes[0].key), "n0");
    manager.revoke("n0", "lost laptop");
    EXPECT_EQ(nodeInView(m_view, nodes[0].key), "") << "a revoked key still logs in after revoke() returned";
}

TEST(AnAuthorizedKeysViewWriter, WritesTheSameFileAsAWholeRewriteAfterEveryKindOfChange)
{
    TempDir dir;
    const std::string incremental = dir / "a/authorized-keys.db";
    const std::string whole = dir / "b/authorized-keys.db";
    AuthorizedKeysViewWriter writer;
    // Each step: the rows readAuthorizedKeysRows would give (sorted by key, then node).
    const std::vector<AuthorizedKeysRows> steps = {
        {},
        {{"ssh-ed25519 AAA1", "n1"}, {"ssh-ed25519 AAA2", "n2"}, {"ssh-ed25519 AAA3", "n3"}},
        // n2 rotates its key; n4 registers.
        {{"ssh-ed25519 AAA1", "n1"},
         {"ssh-ed25519 AAA3", "n3"},
         {"ssh-ed25519 AAA4", "n4"},
         {"ssh-ed25519 BBB2", "n2"}},
        // n5 registers n1's key (both hold it), then n1 is revoked: the key stays, now n5's.
        {{"ssh-ed25519 AAA1", "n1"},
         {"ssh-ed25519 AAA1", "n5"},
         {"ssh-ed25519 AAA3", "n3"},
         {"ssh-ed25519 AAA4", "n4"},
         {"ssh-ed25519 BBB2", "n2"}},
        {{"ssh-ed25519 AAA1", "n5"},
         {"ssh-ed25519 AAA3", "n3"},
         {"ssh-ed25519 AAA4", "n4"},
         {"ssh-ed25519 BBB2", "n2"}},
        // n4's key moves to n3 (n3 gives up its own).
        {{"ssh-ed25519 AAA1", "n5"}, {"ssh-ed25519 AAA4", "n3"}, {"ssh-ed25519 BBB2", "n2"}},
        {},
        {{"ssh-ed25519 CCC1", "n1"}},
    };
    for (std::size_t i = 0; i < steps.size(); ++i) {
        writer.write(steps[i], incremental);
        writeAuthorizedKeysFile(steps[i], whole);
        EXPECT_EQ(viewRows(incremental), viewRows(whole)) << "step " << i;
    }
    // The last step changed one row (CCC1 in; the view was empty before).
    EXPECT_EQ(writer.lastChanges(), 1u);
    EXPECT_EQ(viewRows(incremental), std::vector<std::string>{"ssh-ed25519 CCC1 n1"});
}
