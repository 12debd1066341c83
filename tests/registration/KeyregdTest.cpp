// keyregd against a real registryd on a private bus: registration at start,
// pending until accepted, backoff while the master is away, declines, and
// refusal to pin keys from a master that cannot prove it knows our secret.

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <filesystem>
#include <future>
#include <thread>
#include <vector>

#include <gtest/gtest.h>

#include <sdbus-c++/sdbus-c++.h>

#include "RegistrationSupport.h"
#include "ferry/Bus.h"
#include "ferry/Crypto.h"
#include "ferry/SshSession.h"
#include "ferry/Stream.h"

namespace ferry::test {
namespace {

class ARegisteringNode : public ::testing::Test {
protected:
    void SetUp() override
    {
        m_master = m_root / "master";
        m_nodeState = m_root / "node-state";
        m_nodeConfig = m_root / "node-etc";
        for (const auto& d : {m_master, m_nodeState, m_nodeConfig})
            std::filesystem::create_directories(d);
        ensureKeyPair(m_root / "host_key");
        m_hostKey = publicKeyLine(m_root / "host_key.pub");
        m_secret = generateSecret();
        writeFile(m_nodeState + "/secret", m_secret + "\n", 0600);
        m_port = freePort();
        writeFile(m_nodeConfig + "/ferry.yml",
                  "node:\n  name: n1\n  mode: auto\n  ssh_port: 2022\nmasters:\n  - host: 127.0.0.1\n    ssh_port: 2222\n"
                  "    registry_port: " + std::to_string(m_port) + "\npush:\n  connect_timeout: 2\n  io_timeout: 3\n");
    }

    void startMaster(const std::string& policy = "pending", std::vector<std::string> extra = {})
    {
        std::vector<std::string> args{"--unknown-nodes", policy, "--idle-timeout", "0"};
        args.insert(args.end(), extra.begin(), extra.end());
        m_registryd.emplace(m_master, m_root / "host_key.pub", m_port, m_root / "registryd.log", args);
    }

    void startNode(int retryMaxMs = 800, int retryInitialMs = 100)
    {
        m_keyregd.emplace(
            std::vector<std::string>{buildPath("services/keyregd/ferry-keyregd"), "-v", "--register", "--retry-initial",
                                     std::to_string(retryInitialMs), "--retry-max", std::to_string(retryMaxMs),
                                     "--idle-timeout", "0"},
            std::map<std::string, std::string>{{"FERRY_CONFIG_DIR", m_nodeConfig}, {"FERRY_STATE_DIR", m_nodeState}},
            m_root / "keyregd.log");
        ASSERT_TRUE(waitUntil([&] { return busNameOwned("org.ferry.KeyReg1") || !m_keyregd->running(); }))
            << keyregdLog();
        ASSERT_TRUE(m_keyregd->running()) << keyregdLog();
    }

    // A listening socket on the master's registry port in place of registryd
    // (-1 on failure); flags as for socket(2), besides SOCK_STREAM.
    int listenOnTheMastersPort(int flags) const
    {
        const int listener = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC | flags, 0);
        sockaddr_in addr{};
        addr.sin_family = AF_INET;
        addr.sin_port = htons(static_cast<std::uint16_t>(m_port));
        addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        const int one = 1;
        ::setsockopt(listener, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
        if (::bind(listener, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0 || ::listen(listener, 16) != 0) {
            ::close(listener);
            return -1;
        }
        return listener;
    }

    std::string property(const std::string& name)
    {
        return busProperty("org.ferry.KeyReg1", "/org/ferry/KeyReg1", "org.ferry.KeyReg1", name);
    }
    bool waitForState(const std::string& state, std::chrono::milliseconds timeout = std::chrono::seconds(10))
    {
        return waitUntil([&] { return property("State") == state; }, timeout, std::chrono::milliseconds(50));
    }
    std::map<std::string, std::string> masterEnv() const { return {{"FERRY_STATE_DIR", m_master}}; }
    std::string knownHosts() const { return readFileIfExists(m_nodeState + "/known_hosts"); }
    std::string keyregdLog() const { return readFile(m_root / "keyregd.log"); }
    static std::string readFileIfExists(const std::string& path)
    {
        return ::access(path.c_str(), F_OK) == 0 ? readFile(path) : std::string();
    }
    std::string expectedKnownHosts() const { return "[127.0.0.1]:2222 " + m_hostKey + "\n"; }

    TempDir m_root;
    TestBus m_bus;
    std::string m_master, m_nodeState, m_nodeConfig, m_hostKey, m_secret;
    int m_port = 0;
    std::optional<Registryd> m_registryd;
    std::optional<Process> m_keyregd;
};

TEST_F(ARegisteringNode, RegistersAtStartAndPinsTheMastersHostKey)
{
    startMaster();
    ASSERT_EQ(ferryctl({"master", "add-node", "n1"}, masterEnv(), m_secret).exitCode, 0);
    startNode();
    ASSERT_TRUE(waitForState("accepted")) << keyregdLog();
    EXPECT_EQ(knownHosts(), expectedKnownHosts());
    const auto nodeKey = publicKeyLine(m_nodeState + "/id_ed25519");
    EXPECT_EQ(property("Fingerprint"), fingerprintOf(nodeKey));
    EXPECT_EQ(property("MasterHostKeyFingerprint"), fingerprintOf(m_hostKey));
    EXPECT_EQ(property("LastError"), "");
    EXPECT_GT(std::stoll(property("LastAttempt")), nowMs() - 60000);
    EXPECT_EQ(nodeColumn(m_master, "n1", "public_key"), nodeKey);
    // The master learns how to pull the node: its mode, address and sshd port.
    EXPECT_EQ(nodeColumn(m_master, "n1", "mode"), "auto");
    EXPECT_EQ(nodeColumn(m_master, "n1", "ssh_host"), "127.0.0.1");
    EXPECT_EQ(nodeColumn(m_master, "n1", "ssh_port"), "2022");
    // The private key is the service user's alone.
    EXPECT_EQ(std::filesystem::status(m_nodeState + "/id_ed25519").permissions() & std::filesystem::perms::all,
              std::filesystem::perms::owner_read | std::filesystem::perms::owner_write);
    EXPECT_NE(keyregdLog().find("Registered with master 127.0.0.1:" + std::to_string(m_port)), std::string::npos);
}

TEST_F(ARegisteringNode, RunsItsPushTimerAtTheMastersFloorAndSaysWhy)
{
    // The node asks for 60 s; the master's policy is 240 s.
    writeFile(m_nodeConfig + "/plugins.yml", "sender:\n  period: 60\n");
    startMaster("refuse", {"--min-push-period", "240", "--min-pull-interval", "600"});
    ASSERT_EQ(ferryctl({"master", "add-node", "n1"}, masterEnv(), m_secret).exitCode, 0);
    startNode();
    ASSERT_TRUE(waitForState("accepted")) << keyregdLog();
    ASSERT_TRUE(waitUntil([&] { return !readFileIfExists(m_nodeState + "/period-floor").empty(); })) << keyregdLog();
    const auto floor = parsePeriodFloor("period-floor", readFile(m_nodeState + "/period-floor"));
    EXPECT_EQ(floor.minPushPeriodS, 240u);
    EXPECT_EQ(floor.minPullIntervalS, 600u);
    EXPECT_EQ(floor.master, "127.0.0.1:" + std::to_string(m_port));
    ASSERT_TRUE(waitUntil([&] { return keyregdLog().find("at most every 240 s") != std::string::npos; }))
        << keyregdLog();

    // The generator (what systemd runs at daemon-reload) clamps the timer, with one line saying why.
    TempDir out;
    const auto gen = run({buildPath("services/push-generator/ferry-push-generator"), out.path()},
                         {{"FERRY_CONFIG_DIR", m_nodeConfig}, {"FERRY_STATE_DIR", m_nodeState}});
    ASSERT_EQ(gen.exitCode, 0) << gen.err;
    const auto dropIn = readFile(out / "ferry-push.timer.d/50-period.conf");
    EXPECT_NE(dropIn.find("OnUnitActiveSec=240s"), std::string::npos) << dropIn;
    EXPECT_EQ(dropIn.find("OnUnitActiveSec=60s"), std::string::npos) << dropIn;
    EXPECT_NE(gen.err.find("pushing every 240 s, not the configured 60 s"), std::string::npos) << gen.err;

    // Registering again with the same floor says nothing more; a node above the floor keeps its period.
    ASSERT_EQ(ferryctl({"register"}, {{"FERRY_CONFIG_DIR", m_nodeConfig}, {"FERRY_STATE_DIR", m_nodeState}}).exitCode,
              0);
    std::size_t warnings = 0;
    const auto log = keyregdLog();
    for (std::size_t p = 0; (p = log.find("at most every 240 s", p)) != std::string::npos; ++p)
        ++warnings;
    EXPECT_EQ(warnings, 1u) << log;
    writeFile(m_nodeConfig + "/plugins.yml", "sender:\n  period: 300\n");
    const auto above = run({buildPath("services/push-generator/ferry-push-generator"), out.path()},
                           {{"FERRY_CONFIG_DIR", m_nodeConfig}, {"FERRY_STATE_DIR", m_nodeState}});
    ASSERT_EQ(above.exitCode, 0) << above.err;
    EXPECT_NE(readFile(out / "ferry-push.timer.d/50-period.conf").find("OnUnitActiveSec=300s"), std::string::npos);
    EXPECT_EQ(above.err, "");
}

TEST_F(ARegisteringNode, WaitsAsPendingUntilTheOperatorAcceptsIt)
{
    startMaster("pending");
    startNode();
    ASSERT_TRUE(waitForState("pending")) << keyregdLog();
    EXPECT_NE(property("Reason").find("the master operator must accept this node"), std::string::npos);
    EXPECT_EQ(knownHosts(), "") << "nothing may be pinned from an unsigned answer";
    const auto r = ferryctl({"master", "accept", "n1", "--with-secret"}, masterEnv(), m_secret);
    ASSERT_EQ(r.exitCode, 0) << r.err;
    // keyregd keeps asking while pending and picks the acceptance up by itself.
    ASSERT_TRUE(waitForState("accepted")) << keyregdLog();
    EXPECT_EQ(knownHosts(), expectedKnownHosts());
}

TEST_F(ARegisteringNode, RetriesWithBackoffWhileTheMasterIsAwayAndLogsOnlyTheEdges)
{
    startNode(400);
    ASSERT_TRUE(waitForState("failing")) << keyregdLog();
    EXPECT_NE(property("LastError").find("127.0.0.1:" + std::to_string(m_port)), std::string::npos)
        << property("LastError");
    // Several rounds fail; the operator is told once.
    ASSERT_TRUE(waitUntil([&] {
        const auto log = keyregdLog();
        std::size_t rounds = 0;
        for (auto p = log.find("Next registration round"); p != std::string::npos;
             p = log.find("Next registration round", p + 1))
            ++rounds;
        return rounds >= 4;
    })) << keyregdLog();
    auto count = [&](const std::string& text) {
        const auto log = keyregdLog();
        std::size_t n = 0;
        for (auto p = log.find(text); p != std::string::npos; p = log.find(text, p + 1))
            ++n;
        return n;
    };
    EXPECT_EQ(count("Registration started to fail"), 1u) << keyregdLog();

    startMaster();
    ASSERT_EQ(ferryctl({"master", "add-node", "n1"}, masterEnv(), m_secret).exitCode, 0);
    ASSERT_TRUE(waitForState("accepted")) << keyregdLog();
    EXPECT_EQ(property("LastError"), "");
    EXPECT_EQ(count("Registration working again"), 1u) << keyregdLog();
    EXPECT_EQ(knownHosts(), expectedKnownHosts());
}

TEST_F(ARegisteringNode, UnpinsTheMasterWhenItDeclinesOrRevokesTheNode)
{
    startMaster();
    ASSERT_EQ(ferryctl({"master", "add-node", "n1"}, masterEnv(), m_secret).exitCode, 0);
    startNode();
    ASSERT_TRUE(waitForState("accepted")) << keyregdLog();
    ASSERT_EQ(knownHosts(), expectedKnownHosts());

    ASSERT_EQ(ferryctl({"master", "revoke", "n1", "key", "leaked"}, masterEnv()).exitCode, 0);
    const auto r = ferryctl({"--json", "register"});
    EXPECT_EQ(r.exitCode, 1) << r.err;
    EXPECT_NE(r.out.find("\"state\": \"declined\""), std::string::npos) << r.out;
    EXPECT_NE(r.out.find("revoked: key leaked"), std::string::npos) << r.out;
    EXPECT_EQ(property("Reason"), "revoked: key leaked");
    EXPECT_EQ(knownHosts(), "") << "pushd must stop once the master refuses the node";
    EXPECT_NE(keyregdLog().find("declined this node: revoked: key leaked"), std::string::npos) << keyregdLog();
}

TEST_F(ARegisteringNode, RefusesToPinKeysFromAMasterThatCannotProveItKnowsTheSecret)
{
    // An impostor on the registry port: answers "accepted" with its own host
    // key, signed with a secret that is not the node's.
    const int listener = listenOnTheMastersPort(0);
    ASSERT_GE(listener, 0);
    std::thread impostor([&] {
        const int fd = ::accept(listener, nullptr, nullptr);
        if (fd < 0)
            return;
        FdStream s(fd, fd, "node", true);
        try {
            const auto f = readFrame(s, deadlineIn(std::chrono::seconds(5)));
            const auto req = decodeRegistrationRequest(f.payload, "node");
            RegistrationResponse resp{RegistrationState::Accepted, "", req.request.nonce, nowMs(), {m_hostKey}, false, 0, 0, "", ""};
            writeFrame(s, MessageType::Response, encodeRegistrationResponse(resp, generateSecret()),
                       deadlineIn(std::chrono::seconds(5)));
        } catch (const std::exception&) {
            // The test below reports what keyregd made of it.
        }
    });
    startNode(60000);
    ASSERT_TRUE(waitForState("failing")) << keyregdLog();
    impostor.join();
    ::close(listener);
    // The first failure is logged as the edge; later rounds find the port closed.
    EXPECT_NE(keyregdLog().find(
                  "Registration started to fail: Failed to register with master 127.0.0.1:" + std::to_string(m_port) +
                  ": its answer is not signed with this node's key for master id"),
              std::string::npos)
        << keyregdLog();
    EXPECT_EQ(knownHosts(), "");
    EXPECT_EQ(property("MasterHostKeyFingerprint"), "");
}

// Callers that ask while a round runs wait for the next round, which
// answers all of them at once; past Registrar's limit of waiting callers
// (64) a caller is refused at once with the documented Error.Busy, and
// nobody is left without an answer.
TEST_F(ARegisteringNode, AnswersCallersWaitingForARoundTogetherAndRefusesThosePastTheLimitAsBusy)
{
    // A master that takes connections and never answers: each round lasts
    // the node's io_timeout (10 s here), long enough for every caller to queue.
    writeFile(m_nodeConfig + "/ferry.yml",
              "node:\n  name: n1\n  mode: auto\n  ssh_port: 2022\nmasters:\n  - host: 127.0.0.1\n    ssh_port: 2222\n"
              "    registry_port: " +
                  std::to_string(m_port) + "\npush:\n  connect_timeout: 2\n  io_timeout: 10\n");
    const int listener = listenOnTheMastersPort(SOCK_NONBLOCK);
    ASSERT_GE(listener, 0);
    std::atomic<int> accepted{0};
    std::atomic<bool> stop{false};
    std::thread silent([&] {
        std::vector<int> held;
        while (!stop) {
            const int fd = ::accept4(listener, nullptr, nullptr, SOCK_CLOEXEC);
            if (fd >= 0) {
                held.push_back(fd);
                ++accepted;
            } else {
                // Until the next connection (or a look at stop now and then).
                pollfd p{listener, POLLIN, 0};
                ::poll(&p, 1, 100);
            }
        }
        for (int fd : held)
            ::close(fd);
    });
    struct Stop {
        std::atomic<bool>& flag;
        std::thread& thread;
        int fd;
        ~Stop()
        {
            flag = true;
            thread.join();
            ::close(fd);
        }
    } stopSilent{stop, silent, listener};

    startNode(60000); // --register: the first round starts at once
    ASSERT_TRUE(waitUntil([&] { return accepted.load() >= 1; })) << keyregdLog();

    constexpr int kCallers = 70;
    struct Answer {
        std::string error; // "" on success
        std::string text;  // the state, or the error's message
    };
    std::vector<std::future<Answer>> calls;
    for (int i = 0; i < kCallers; ++i)
        calls.push_back(std::async(std::launch::async, [] {
            try {
                auto proxy = sdbus::createProxy("org.ferry.KeyReg1", "/org/ferry/KeyReg1");
                std::string state, reason;
                proxy->callMethod("Register")
                    .onInterface("org.ferry.KeyReg1")
                    .withTimeout(std::chrono::seconds(60))
                    .storeResultsTo(state, reason);
                return Answer{"", state};
            } catch (const sdbus::Error& e) {
                return Answer{e.getName(), e.getMessage()};
            }
        }));
    int failing = 0, busy = 0;
    for (auto& call : calls) {
        const auto answer = call.get();
        if (answer.error.empty() && answer.text == "failing") {
            ++failing;
        } else if (answer.error == "org.ferry.KeyReg1.Error.Busy") {
            ++busy;
            EXPECT_NE(answer.text.find("64 callers are already waiting"), std::string::npos) << answer.text;
        } else {
            ADD_FAILURE() << "unexpected answer: " << answer.error << " " << answer.text;
        }
    }
    // All queued behind the first round: 64 wait for the second, the rest are refused.
    EXPECT_EQ(failing, 64) << keyregdLog();
    EXPECT_EQ(busy, kCallers - 64) << keyregdLog();
    // Two rounds answered them all (a third may have just begun: the retry).
    EXPECT_LE(accepted.load(), 3) << "the callers were not answered by one round together";
    EXPECT_TRUE(m_keyregd->running()) << keyregdLog();
}

TEST_F(ARegisteringNode, AnswersFromItsPersistedStateAfterARestartWhileTheMasterIsAway)
{
    startMaster();
    ASSERT_EQ(ferryctl({"master", "add-node", "n1"}, masterEnv(), m_secret).exitCode, 0);
    startNode();
    ASSERT_TRUE(waitForState("accepted")) << keyregdLog();
    m_keyregd.reset();
    m_registryd.reset();
    startNode(60000);
    // The first answer comes from disk; the failed round keeps the pins.
    EXPECT_EQ(property("State"), "accepted");
    ASSERT_TRUE(waitUntil([&] { return !property("LastError").empty(); })) << keyregdLog();
    EXPECT_EQ(property("State"), "accepted");
    EXPECT_EQ(knownHosts(), expectedKnownHosts());
}

TEST_F(ARegisteringNode, ReRegistersTheSameKeyIdempotentlyAndRotatesToANewOne)
{
    startMaster();
    ASSERT_EQ(ferryctl({"master", "add-node", "n1"}, masterEnv(), m_secret).exitCode, 0);
    startNode();
    ASSERT_TRUE(waitForState("accepted")) << keyregdLog();
    const auto firstKey = nodeColumn(m_master, "n1", "public_key");
    const auto firstSeen = nodeColumn(m_master, "n1", "first_seen");

    auto r = ferryctl({"register"});
    ASSERT_EQ(r.exitCode, 0) << r.out << r.err;
    EXPECT_EQ(nodeColumn(m_master, "n1", "public_key"), firstKey);
    EXPECT_EQ(nodeColumn(m_master, "n1", "first_seen"), firstSeen);
    EXPECT_EQ(knownHosts(), expectedKnownHosts());

    // Rotation: a new key pair on the node replaces the old key on the master.
    r = ferryctl({"register", "--new-key"});
    ASSERT_EQ(r.exitCode, 0) << r.out << r.err;
    const auto newKey = publicKeyLine(m_nodeState + "/id_ed25519");
    EXPECT_NE(newKey, firstKey);
    EXPECT_EQ(nodeColumn(m_master, "n1", "public_key"), newKey);
    EXPECT_EQ(property("Fingerprint"), fingerprintOf(newKey));
    EXPECT_TRUE(m_registryd->waitForLog("rotated its key")) << m_registryd->log();
    EXPECT_FALSE(std::filesystem::exists(m_nodeState + "/id_ed25519.previous"));

    // A key lost by other means (the files deleted) is replaced the same way.
    std::filesystem::remove(m_nodeState + "/id_ed25519");
    std::filesystem::remove(m_nodeState + "/id_ed25519.pub");
    r = ferryctl({"register"});
    ASSERT_EQ(r.exitCode, 0) << r.out << r.err;
    EXPECT_EQ(nodeColumn(m_master, "n1", "public_key"), publicKeyLine(m_nodeState + "/id_ed25519"));
    EXPECT_NE(publicKeyLine(m_nodeState + "/id_ed25519"), newKey);
}

TEST_F(ARegisteringNode, KeepsItsKeyWhenNoMasterAcceptsTheNewOne)
{
    startMaster();
    ASSERT_EQ(ferryctl({"master", "add-node", "n1"}, masterEnv(), m_secret).exitCode, 0);
    // The retry after the failed rotation comes late enough (5 s) not to
    // replace its LastError before the test reads it.
    startNode(60000, 5000);
    ASSERT_TRUE(waitForState("accepted")) << keyregdLog();
    const auto key = publicKeyLine(m_nodeState + "/id_ed25519");
    m_registryd.reset();  // the master is away

    const auto r = ferryctl({"register", "--new-key"});
    EXPECT_EQ(publicKeyLine(m_nodeState + "/id_ed25519"), key) << r.out << r.err;
    EXPECT_EQ(property("Fingerprint"), fingerprintOf(key));
    EXPECT_NE(property("LastError").find("key rotation not done"), std::string::npos) << property("LastError");
    EXPECT_NE(keyregdLog().find("keeping the previous key"), std::string::npos) << keyregdLog();
    EXPECT_EQ(knownHosts(), expectedKnownHosts());
}

TEST_F(ARegisteringNode, RegistersWithEveryMasterAndPinsEachOneThatAccepts)
{
    // Master A on the fixture's bus; master B, down at first, on a second bus
    // (each registryd owns org.ferry.Registry1 on its own bus).
    startMaster();
    const auto busA = m_bus.env();
    ASSERT_EQ(ferryctl({"master", "add-node", "n1"}, busA, m_secret).exitCode, 0);
    ensureKeyPair(m_root / "host_key_b");
    const std::string hostKeyB = publicKeyLine(m_root / "host_key_b.pub");
    const std::string masterB = m_root / "master-b";
    std::filesystem::create_directories(masterB);
    const int portB = freePort();
    writeFile(m_nodeConfig + "/ferry.yml",
              "node:\n  name: n1\nmasters:\n  - host: 127.0.0.1\n    ssh_port: 2222\n    registry_port: " +
                  std::to_string(m_port) + "\n  - host: 127.0.0.2\n    ssh_port: 2223\n    registry_port: " +
                  std::to_string(portB) + "\npush:\n  connect_timeout: 2\n  io_timeout: 3\n");
    TestBus busB;  // keyregd and master B live here; master A stays on the fixture's bus
    startNode(300);
    ASSERT_TRUE(waitUntil([&] { return !property("LastError").empty() && property("State") == "accepted"; }))
        << keyregdLog();
    EXPECT_NE(property("LastError").find("127.0.0.2:" + std::to_string(portB)), std::string::npos)
        << property("LastError");
    EXPECT_EQ(knownHosts(), expectedKnownHosts());

    // Master B comes up and enrols the node: keyregd, still retrying, pins it too.
    std::vector<std::string> argv{buildPath("services/registryd/ferry-registryd"), "--listen",
                                  "127.0.0.2:" + std::to_string(portB), "--state-dir", masterB, "--host-key",
                                  m_root / "host_key_b.pub", "--idle-timeout", "0"};
    Process registrydB(argv, {}, m_root / "registryd-b.log");
    ASSERT_TRUE(waitUntil([&] { return busNameOwned("org.ferry.Registry1"); })) << readFile(m_root / "registryd-b.log");
    ASSERT_EQ(ferryctl({"master", "add-node", "n1"}, {{"FERRY_STATE_DIR", masterB}}, m_secret).exitCode, 0);
    // (Until add-node, master B may answer "pending": that is no error, but nothing is pinned.)
    const std::string both = expectedKnownHosts() + "[127.0.0.2]:2223 " + hostKeyB + "\n";
    ASSERT_TRUE(waitUntil([&] { return knownHosts() == both; })) << knownHosts() << keyregdLog();
    EXPECT_EQ(property("LastError"), "");
    EXPECT_EQ(property("MasterHostKeyFingerprint"), fingerprintOf(m_hostKey) + ", " + fingerprintOf(hostKeyB));
}

TEST_F(ARegisteringNode, IsActivatedByTheBusSignalsItsStateAndAnswersFromDiskAfterAnIdleExit)
{
    startMaster();
    ASSERT_EQ(ferryctl({"master", "add-node", "n1"}, masterEnv(), m_secret).exitCode, 0);
    // A bus whose activation file starts keyregd, as org.ferry.KeyReg1.service does through systemd.
    const std::string services = m_root / "services";
    std::filesystem::create_directories(services);
    writeFile(services + "/org.ferry.KeyReg1.service",
              "[D-BUS Service]\nName=org.ferry.KeyReg1\nExec=/usr/bin/env FERRY_CONFIG_DIR=" + m_nodeConfig +
                  " FERRY_STATE_DIR=" + m_nodeState + " " + buildPath("services/keyregd/ferry-keyregd") +
                  " -v --idle-timeout 1\nUser=root\n");
    TestBus bus({services});
    Process monitor({"/usr/bin/dbus-monitor", "--address", bus.address(),
                     "type='signal',sender='org.ferry.KeyReg1',interface='org.ferry.KeyReg1'"},
                    {}, m_root / "monitor.log");
    ASSERT_TRUE(waitUntil([&] { return readFile(m_root / "monitor.log").find("NameAcquired") != std::string::npos; }))
        << readFile(m_root / "monitor.log");

    const auto r = ferryctl({"register"});
    ASSERT_EQ(r.exitCode, 0) << r.out << r.err;
    EXPECT_NE(r.out.find("Registration: accepted"), std::string::npos) << r.out;
    EXPECT_TRUE(waitUntil([&] {
        const auto log = readFile(m_root / "monitor.log");
        return log.find("member=StateChanged") != std::string::npos && log.find("\"accepted\"") != std::string::npos;
    })) << readFile(m_root / "monitor.log");

    // Nothing left to do: it leaves, and a property read brings a fresh one
    // that answers from its persisted state straight away.
    ASSERT_TRUE(waitUntil([&] { return !busNameOwned("org.ferry.KeyReg1"); }, std::chrono::seconds(10)));
    EXPECT_EQ(property("State"), "accepted");
    EXPECT_EQ(property("MasterHostKeyFingerprint"), fingerprintOf(m_hostKey));
}

} // namespace
} // namespace ferry::test
