// registryd against real TCP clients: good registrations, and every kind of
// bad input, each answered with a clear error or a clean close, a log line,
// and the registry unchanged.

#include <sys/socket.h>
#include <csignal>
#include <unistd.h>

#include <atomic>
#include <filesystem>
#include <thread>

#include <gtest/gtest.h>

#include "ferry/MasterStore.h"

#include "RegistrationSupport.h"
#include "ferry/Bus.h"
#include "ferry/Crypto.h"
#include "ferry/SshSession.h"
#include "ferry/Stream.h"

namespace ferry::test {
namespace {

class ARegistry : public ::testing::Test {
protected:
    void SetUp() override
    {
        m_state = m_root / "master";
        std::filesystem::create_directories(m_state);
        ensureKeyPair(m_root / "host_key");
        ensureKeyPair(m_root / "node_key");
        m_hostKey = publicKeyLine(m_root / "host_key.pub");
        m_nodeKey = publicKeyLine(m_root / "node_key");
        m_secret = generateSecret();
        m_port = freePort();
    }

    void start(std::vector<std::string> extra = {"--unknown-nodes", "refuse"})
    {
        extra.push_back("--deadline");
        extra.push_back("1500");
        extra.push_back("--idle-timeout");
        extra.push_back("0");
        m_registryd.emplace(m_state, m_root / "host_key.pub", m_port, m_root / "registryd.log", extra);
    }

    void enrol(const std::string& node, const std::string& secret)
    {
        const auto r = ferryctl({"master", "add-node", node}, {{"FERRY_STATE_DIR", m_state}}, secret + "\n");
        ASSERT_EQ(r.exitCode, 0) << r.err;
        // Through registryd on the bus, not the fallback to the file.
        ASSERT_EQ(r.err.find("not reachable"), std::string::npos) << r.err;
    }

    // registrations{outcome} in master_counters, as metricsd reads it.
    std::int64_t registrationCount(const std::string& outcome)
    {
        MasterStore store(m_state + "/master.db");
        for (const auto& c : store.counters())
            if (c.name == "registrations" && c.labels == counterLabels({{"outcome", outcome}}))
                return c.value;
        return 0;
    }

    Reply registerNode(const std::string& node, const std::string& secret)
    {
        return rawExchange(m_port, requestFrame(node, m_nodeKey, secret));
    }

    TempDir m_root;
    TestBus m_bus;
    std::string m_state, m_hostKey, m_nodeKey, m_secret;
    int m_port = 0;
    std::optional<Registryd> m_registryd;
};

TEST_F(ARegistry, AcceptsAnEnrolledNodeAndAnswersWithHostKeysSignedWithItsSecret)
{
    start();
    enrol("n1", m_secret);
    const auto reply = registerNode("n1", m_secret);
    ASSERT_TRUE(reply.frame) << reply.closedWhy;
    ASSERT_EQ(reply.frame->type, MessageType::Response) << reply.errorMessage();
    const auto response = decodeRegistrationResponse(reply.frame->payload, "test");
    EXPECT_TRUE(verifyRegistrationResponse(response, testMasterKey(m_secret)));
    EXPECT_FALSE(verifyRegistrationResponse(response, generateSecret()));
    EXPECT_EQ(response.response.state, RegistrationState::Accepted);
    EXPECT_EQ(response.response.hostKeys, std::vector<std::string>{m_hostKey});
    EXPECT_EQ(nodeColumn(m_state, "n1", "public_key"), m_nodeKey);
    EXPECT_EQ(nodeColumn(m_state, "n1", "state"), "accepted");
    EXPECT_EQ(registrationCount("accepted"), 1) << "registryd counts the outcome in master.db for metricsd";
}

TEST_F(ARegistry, RefusesAWrongHmacAndLeavesTheRegistryUnchanged)
{
    start();
    enrol("n1", m_secret);
    const auto before = registrySnapshot(m_state, false);
    const auto reply = registerNode("n1", generateSecret());
    // The peer hears what an unknown name hears (no name oracle); the log says why.
    EXPECT_TRUE(reply.isError("not-accepted")) << reply.errorMessage();
    EXPECT_EQ(registrySnapshot(m_state, false), before);
    EXPECT_TRUE(m_registryd->waitForLog("Refused registration of node n1 from 127.0.0.1")) << m_registryd->log();
    EXPECT_TRUE(m_registryd->waitForLog("valid proof of its key")) << m_registryd->log();
}

TEST_F(ARegistry, RefusesAReplayedRequest)
{
    start();
    enrol("n1", m_secret);
    const auto frame = requestFrame("n1", m_nodeKey, m_secret);
    const auto first = rawExchange(m_port, frame);
    ASSERT_TRUE(first.frame && first.frame->type == MessageType::Response) << first.errorMessage();
    const auto after = registrySnapshot(m_state);
    const auto replay = rawExchange(m_port, frame);
    EXPECT_TRUE(replay.isError("replay")) << replay.errorMessage();
    EXPECT_EQ(registrySnapshot(m_state), after);
    EXPECT_EQ(registrationCount("accepted"), 1);
    EXPECT_EQ(registrationCount("replay"), 1);
    EXPECT_TRUE(m_registryd->waitForLog("replay refused")) << m_registryd->log();
}

TEST_F(ARegistry, RefusesARequestFromOutsideTheClockWindow)
{
    start();
    enrol("n1", m_secret);
    const auto before = registrySnapshot(m_state);
    const auto reply = rawExchange(m_port, requestFrame("n1", m_nodeKey, m_secret, nowMs() - 3600 * 1000));
    EXPECT_TRUE(reply.isError("stale")) << reply.errorMessage();
    EXPECT_EQ(registrySnapshot(m_state), before);
}

TEST_F(ARegistry, RefusesAnUnknownNodeWhenEnrolmentIsClosed)
{
    start();
    enrol("n1", m_secret);
    const auto before = registrySnapshot(m_state, false);
    const auto reply = registerNode("stranger", m_secret);
    EXPECT_TRUE(reply.isError("not-accepted")) << reply.errorMessage();
    EXPECT_EQ(registrySnapshot(m_state, false), before);
    EXPECT_TRUE(m_registryd->waitForLog("Refused registration of unknown node stranger")) << m_registryd->log();
}

TEST_F(ARegistry, RefusesAnOversizedFrameBeforeReadingIt)
{
    start();
    enrol("n1", m_secret);
    const auto before = registrySnapshot(m_state);
    std::string header = encodeFrame(MessageType::Request, "").substr(0, 4);
    header += std::string("\x00\x10\x00\x00", 4);  // 1 MiB announced, far above the registry's limit
    const auto reply = rawExchange(m_port, header + std::string(1000, 'x'));
    EXPECT_TRUE(reply.isError("bad-request")) << reply.errorMessage();
    EXPECT_NE(reply.errorMessage().find("exceeds the limit"), std::string::npos) << reply.errorMessage();
    EXPECT_EQ(registrySnapshot(m_state), before);
    EXPECT_TRUE(m_registryd->waitForLog("exceeds the limit")) << m_registryd->log();
}

TEST_F(ARegistry, ClosesATruncatedFrameWithALogLine)
{
    start();
    enrol("n1", m_secret);
    const auto before = registrySnapshot(m_state);
    const auto frame = requestFrame("n1", m_nodeKey, m_secret);
    const auto reply = rawExchange(m_port, frame.substr(0, frame.size() / 2), true);
    EXPECT_FALSE(reply.frame) << "expected a clean close, got " << reply.errorMessage();
    EXPECT_TRUE(m_registryd->waitForLog("closed before a complete request")) << m_registryd->log();
    EXPECT_EQ(registrySnapshot(m_state), before);
}

TEST_F(ARegistry, RefusesGarbageBytes)
{
    start();
    enrol("n1", m_secret);
    const auto before = registrySnapshot(m_state);
    const auto reply = rawExchange(m_port, "GET / HTTP/1.0\r\nHost: x\r\n\r\n");
    EXPECT_TRUE(reply.isError("bad-request")) << reply.errorMessage();
    EXPECT_NE(reply.errorMessage().find("bad magic"), std::string::npos) << reply.errorMessage();
    // A well-framed request whose body is garbage is refused too, naming the field.
    const auto body = rawExchange(m_port, encodeFrame(MessageType::Request, std::string(40, '\x07')));
    EXPECT_TRUE(body.isError("bad-request")) << body.errorMessage();
    EXPECT_EQ(registrySnapshot(m_state), before);
}

TEST_F(ARegistry, ServesOtherClientsWhileASlowlorisClientTricklesBytes)
{
    start();
    enrol("n1", m_secret);
    const auto frame = requestFrame("n1", m_nodeKey, m_secret);
    const int slow = connectTcp("127.0.0.1", static_cast<std::uint16_t>(m_port), std::chrono::seconds(2));
    FdStream slowStream(slow, slow, "slow", true);
    std::atomic<bool> cut{false};
    std::thread trickle([&] {
        // One byte every 200 ms: the whole frame would take far longer than the 1.5 s deadline.
        try {
            for (std::size_t i = 0; i < frame.size() && !cut; ++i) {
                slowStream.writeAll(&frame[i], 1, deadlineIn(std::chrono::seconds(1)));
                std::this_thread::sleep_for(std::chrono::milliseconds(200));
            }
        } catch (const std::exception&) {
            cut = true;  // the registry closed us
        }
    });
    // Meanwhile another node registers at once.
    const auto started = Clock::now();
    const auto reply = rawExchange(m_port, frame, false, std::chrono::seconds(2));
    EXPECT_TRUE(reply.frame && reply.frame->type == MessageType::Response) << reply.errorMessage();
    // Well inside the slow client's 1.5 s deadline: not queued behind it.
    EXPECT_LT(Clock::now() - started, std::chrono::milliseconds(1200));
    EXPECT_TRUE(waitUntil([&] { return cut.load(); }, std::chrono::seconds(5)));
    cut = true;
    trickle.join();
    // Counted in the summary line (one a minute, and one at stop), never a
    // line per connection.
    m_registryd->process().signal(SIGTERM);
    ASSERT_TRUE(m_registryd->process().wait(std::chrono::seconds(10)).has_value());
    EXPECT_NE(m_registryd->log().find("1 closed without a complete request in time"), std::string::npos)
        << m_registryd->log();
}

TEST_F(ARegistry, ServesManyClientsAtOnce)
{
    start({"--unknown-nodes", "refuse", "--max-per-source", "64", "--burst-per-source", "64"});
    enrol("n1", m_secret);
    constexpr int kClients = 32;
    std::atomic<int> accepted{0};
    std::vector<std::thread> clients;
    // Each client holds its connection open a moment before sending, so
    // that they are all connected at the same time.
    for (int i = 0; i < kClients; ++i)
        clients.emplace_back([&] {
            try {
                const int fd = connectTcp("127.0.0.1", static_cast<std::uint16_t>(m_port), std::chrono::seconds(2));
                FdStream s(fd, fd, "client", true);
                std::this_thread::sleep_for(std::chrono::milliseconds(200));
                const auto frame = requestFrame("n1", m_nodeKey, m_secret);
                s.writeAll(frame.data(), frame.size(), deadlineIn(std::chrono::seconds(5)));
                const auto reply = readFrame(s, deadlineIn(std::chrono::seconds(5)));
                if (reply.type == MessageType::Response &&
                    decodeRegistrationResponse(reply.payload, "test").response.state == RegistrationState::Accepted)
                    ++accepted;
            } catch (const std::exception&) {
                // Counted as not accepted.
            }
        });
    for (auto& c : clients)
        c.join();
    EXPECT_EQ(accepted, kClients) << m_registryd->log();
}

TEST_F(ARegistry, CutsTheOldestConnectionOfASourceOverItsLimitInsteadOfRefusingTheNewest)
{
    start({"--unknown-nodes", "refuse", "--max-per-source", "2"});
    enrol("n1", m_secret);
    std::vector<int> idle;
    for (int i = 0; i < 2; ++i)
        idle.push_back(connectTcp("127.0.0.1", static_cast<std::uint16_t>(m_port), std::chrono::seconds(2)));
    // The newest one is served at once: idle sockets do not keep a node out.
    const auto r = registerNode("n1", m_secret);
    EXPECT_TRUE(r.frame && r.frame->type == MessageType::Response) << r.errorMessage() << m_registryd->log();
    // ...and the oldest idle one was cut to make room.
    char c;
    EXPECT_TRUE(waitUntil([&] { return ::recv(idle[0], &c, 1, MSG_DONTWAIT) == 0; }, std::chrono::seconds(5)));
    for (int fd : idle)
        ::close(fd);
}

TEST_F(ARegistry, KeepsAnUnknownNodePendingUntilTheOperatorAcceptsItWithItsSecret)
{
    start({"--unknown-nodes", "pending"});
    auto reply = registerNode("newcomer", m_secret);
    ASSERT_TRUE(reply.frame && reply.frame->type == MessageType::Response) << reply.errorMessage();
    auto response = decodeRegistrationResponse(reply.frame->payload, "test");
    EXPECT_EQ(response.response.state, RegistrationState::Pending);
    EXPECT_TRUE(response.mac.empty()) << "the master has no secret to sign with";
    EXPECT_TRUE(response.response.hostKeys.empty());

    const auto list = ferryctl({"--json", "master", "nodes"}, {{"FERRY_STATE_DIR", m_state}});
    EXPECT_NE(list.out.find("\"pending\""), std::string::npos) << list.out;

    // Accepting without the secret is refused; with it, the key is kept.
    auto r = ferryctl({"master", "accept", "newcomer"}, {{"FERRY_STATE_DIR", m_state}});
    EXPECT_NE(r.exitCode, 0);
    EXPECT_NE(r.err.find("SecretRequired"), std::string::npos) << r.err;
    r = ferryctl({"master", "accept", "newcomer", "--with-secret"}, {{"FERRY_STATE_DIR", m_state}}, m_secret);
    ASSERT_EQ(r.exitCode, 0) << r.err;
    EXPECT_EQ(nodeColumn(m_state, "newcomer", "public_key"), m_nodeKey);

    reply = registerNode("newcomer", m_secret);
    ASSERT_TRUE(reply.frame && reply.frame->type == MessageType::Response) << reply.errorMessage();
    response = decodeRegistrationResponse(reply.frame->payload, "test");
    EXPECT_EQ(response.response.state, RegistrationState::Accepted);
    EXPECT_TRUE(verifyRegistrationResponse(response, testMasterKey(m_secret)));
}

TEST_F(ARegistry, DropsAPendingKeyThatTheNodesSecretDoesNotVouchFor)
{
    start({"--unknown-nodes", "pending"});
    // Someone registers a key under the name before the operator enrols the real node.
    const auto reply = registerNode("victim", generateSecret());
    ASSERT_TRUE(reply.frame && reply.frame->type == MessageType::Response) << reply.errorMessage();
    EXPECT_EQ(nodeColumn(m_state, "victim", "public_key"), m_nodeKey);
    enrol("victim", m_secret);
    EXPECT_EQ(nodeColumn(m_state, "victim", "public_key"), "");
    EXPECT_TRUE(m_registryd->waitForLog("Dropping the pending key")) << m_registryd->log();
}

TEST_F(ARegistry, AnswersADeclinedOrRevokedNodeWithTheOperatorsReason)
{
    start();
    enrol("n1", m_secret);
    ASSERT_EQ(ferryctl({"master", "decline", "n1", "over", "quota"}, {{"FERRY_STATE_DIR", m_state}}).exitCode, 0);
    auto reply = registerNode("n1", m_secret);
    ASSERT_TRUE(reply.frame && reply.frame->type == MessageType::Response) << reply.errorMessage();
    auto response = decodeRegistrationResponse(reply.frame->payload, "test");
    EXPECT_EQ(response.response.state, RegistrationState::Declined);
    EXPECT_EQ(response.response.reason, "over quota");
    EXPECT_TRUE(response.response.hostKeys.empty());
    EXPECT_TRUE(verifyRegistrationResponse(response, testMasterKey(m_secret)));

    ASSERT_EQ(ferryctl({"master", "revoke", "n1", "stolen"}, {{"FERRY_STATE_DIR", m_state}}).exitCode, 0);
    reply = registerNode("n1", m_secret);
    response = decodeRegistrationResponse(reply.frame->payload, "test");
    EXPECT_EQ(response.response.state, RegistrationState::Declined);
    EXPECT_EQ(response.response.reason, "revoked: stolen");
    EXPECT_EQ(nodeColumn(m_state, "n1", "state"), "revoked");
}

TEST_F(ARegistry, NamesTheErrorForAnOperatorActionOnAnUnknownNode)
{
    start();
    const auto r = run({"busctl", "--system", "call", "org.ferry.Registry1", "/org/ferry/Registry1",
                        "org.ferry.Registry1", "Revoke", "ss", "ghost", "why"});
    EXPECT_NE(r.exitCode, 0);
    EXPECT_NE(r.err.find("no such node"), std::string::npos) << r.err;
    const auto ctl = ferryctl({"master", "revoke", "ghost"}, {{"FERRY_STATE_DIR", m_state}});
    EXPECT_NE(ctl.exitCode, 0);
    EXPECT_NE(ctl.err.find("org.ferry.Registry1.Error.NoSuchNode"), std::string::npos) << ctl.err;
}

TEST_F(ARegistry, ServesASocketPassedBySystemdAndExitsWhenIdle)
{
    // No registryd on the bus yet: ferryctl writes master.db itself, and says so.
    const auto added = ferryctl({"master", "add-node", "n1"}, {{"FERRY_STATE_DIR", m_state}}, m_secret);
    ASSERT_EQ(added.exitCode, 0) << added.err;
    EXPECT_NE(added.err.find("directly"), std::string::npos) << added.err;
    Process activated({"/usr/bin/systemd-socket-activate", "-E", "DBUS_SYSTEM_BUS_ADDRESS", "-l",
                       "127.0.0.1:" + std::to_string(m_port),
                       buildPath("services/registryd/ferry-registryd"), "-v", "--state-dir", m_state, "--host-key",
                       m_root / "host_key.pub", "--idle-timeout", "2", "--listen", "127.0.0.1:1"},
                      {}, m_root / "activated.log");
    // systemd-socket-activate listens at once and starts registryd on the first connection.
    ASSERT_TRUE(waitUntil([&] {
        try {
            const auto r = registerNode("n1", m_secret);
            return r.frame && r.frame->type == MessageType::Response;
        } catch (const std::exception&) {
            return false;  // not listening yet
        }
    })) << readFile(m_root / "activated.log");
    EXPECT_NE(readFile(m_root / "activated.log").find("socket(s) from systemd"), std::string::npos)
        << readFile(m_root / "activated.log");
    // Idle for 2 s, it leaves (systemd would start it again on the next connection).
    EXPECT_TRUE(activated.wait(std::chrono::seconds(10)).has_value()) << readFile(m_root / "activated.log");
}

} // namespace
} // namespace ferry::test
