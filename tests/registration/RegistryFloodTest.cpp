// Issue 12, item 6 (the server half): a stranger cannot hold registryd's
// slots, and one IPv6 /64 does not block everyone. The attacker opens idle
// connections from many addresses and holds them; a node registering from
// elsewhere must still be answered at once.

#include <sched.h>
#include <sys/socket.h>

#include <filesystem>

#include <gtest/gtest.h>

#include "RegistrationSupport.h"
#include "ferry/Bus.h"
#include "ferry/Crypto.h"
#include "ferry/SshSession.h"
#include "ferry/Stream.h"
#include "support/IdleFlood.h"

namespace ferry::test {
namespace {

class ARegistryUnderAnIdleFlood : public ::testing::Test {
protected:
    void SetUp() override
    {
        if (!isRoot())
            GTEST_SKIP() << "needs root (a network namespace with test addresses)";
        // A network namespace of our own: its loopback carries the test
        // addresses (documentation prefixes), nothing reaches the host's.
        ASSERT_EQ(::unshare(CLONE_NEWNET), 0);
        ASSERT_EQ(run({"ip", "link", "set", "lo", "up"}).exitCode, 0);
        for (const auto& a : {"2001:db8:1::1/64", "2001:db8:2::1/64"})
            ASSERT_EQ(run({"ip", "-6", "addr", "add", a, "dev", "lo", "nodad"}).exitCode, 0);
        // The attacker's /64: any address in it is ours to connect from.
        for (int i = 2; i <= 200; ++i) {
            char buf[64];
            std::snprintf(buf, sizeof buf, "2001:db8:1::%x", i);
            m_attackerV6.push_back(buf);
        }
        ASSERT_EQ(run({"ip", "-6", "route", "add", "local", "2001:db8:1::/64", "dev", "lo"}).exitCode, 0);
        writeFile("/proc/sys/net/ipv6/ip_nonlocal_bind", "1\n");
        for (int i = 2; i <= 200; ++i)
            m_attackerV4.push_back("127.0.0." + std::to_string(i));

        m_state = m_root / "master";
        std::filesystem::create_directories(m_state);
        ensureKeyPair(m_root / "host_key");
        ensureKeyPair(m_root / "node_key");
        m_nodeKey = publicKeyLine(m_root / "node_key");
        m_secret = generateSecret();
        m_port = freePort();
        m_registryd.emplace(m_state, m_root / "host_key.pub", m_port, m_root / "registryd.log",
                            std::vector<std::string>{"--listen", "[::]:" + std::to_string(m_port), "--unknown-nodes",
                                                     "refuse", "--idle-timeout", "0"});
        const auto r = ferryctl({"master", "add-node", "n1"}, {{"FERRY_STATE_DIR", m_state}}, m_secret + "\n");
        ASSERT_EQ(r.exitCode, 0) << r.err;
    }

    // A node registering from host: answered with a Response, and how fast.
    bool registers(const std::string& host, std::chrono::milliseconds& took)
    {
        const auto started = Clock::now();
        try {
            const int fd = connectTcp(host, static_cast<std::uint16_t>(m_port), std::chrono::seconds(2));
            FdStream s(fd, fd, "registryd", true);
            const auto frame = requestFrame("n1", m_nodeKey, m_secret);
            s.writeAll(frame.data(), frame.size(), deadlineIn(std::chrono::seconds(3)));
            const auto reply = readFrame(s, deadlineIn(std::chrono::seconds(3)), kDefaultMaxFrame);
            took = std::chrono::duration_cast<std::chrono::milliseconds>(Clock::now() - started);
            if (reply.type != MessageType::Response)
                m_lastError = "answered " + std::string(toString(reply.type));
            return reply.type == MessageType::Response;
        } catch (const std::exception& e) {
            m_lastError = e.what();
            return false;
        }
    }

    TempDir m_root;
    TestBus m_bus;
    std::string m_state, m_nodeKey, m_secret, m_lastError;
    std::vector<std::string> m_attackerV4, m_attackerV6;
    int m_port = 0;
    std::optional<Registryd> m_registryd;
};

TEST_F(ARegistryUnderAnIdleFlood, AnswersANodeWhileAStrangerOnManyAddressesHoldsEverySlot)
{
    // 199 IPv4 addresses × 8 per address would be every one of the 128 slots.
    IdleFlood flood({"127.0.0.1", m_port, 600, m_attackerV4, -1, -1});
    std::cout << "flood: " << flood.connected() << " connected, " << flood.held() << " held open\n";
    ASSERT_GE(flood.connected(), 500);
    std::chrono::milliseconds took{};
    EXPECT_TRUE(registers("127.0.0.1", took)) << m_lastError << "\n" << m_registryd->log();
    std::cout << "registration under the flood: " << took.count() << " ms\n";
    EXPECT_LT(took, std::chrono::milliseconds(1000));
}

TEST_F(ARegistryUnderAnIdleFlood, CountsAWholeIpv6Slash64AsOneSource)
{
    IdleFlood flood({"2001:db8:2::1", m_port, 600, m_attackerV6, -1, -1});
    std::cout << "flood from one /64: " << flood.connected() << " connected, " << flood.held() << " held open\n";
    ASSERT_GE(flood.connected(), 500);
    // One /64 holds what one address may: 8 connections, not every slot.
    EXPECT_LE(flood.stillOpen(), 8);
    std::chrono::milliseconds took{};
    EXPECT_TRUE(registers("2001:db8:2::1", took)) << m_lastError << "\n" << m_registryd->log();
    EXPECT_LT(took, std::chrono::milliseconds(1000));
    // Refusals are summarised: at most a line or two, not one per connection.
    m_registryd->process().signal(SIGTERM);
    ASSERT_TRUE(m_registryd->process().wait(std::chrono::seconds(10)).has_value());
    const auto log = m_registryd->log();
    EXPECT_EQ(log.find("Refused connection"), std::string::npos) << log;
    EXPECT_NE(log.find("most refusals from 2001:db8:1::/64"), std::string::npos) << log;
}

} // namespace
} // namespace ferry::test
