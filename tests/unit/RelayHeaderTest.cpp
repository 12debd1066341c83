// The relay's header line (ferry/RelayHeader.h): what sshd's SSH_CONNECTION
// gives, what goes on the wire, and what collectord refuses.

#include <gtest/gtest.h>

#include "ferry/RelayHeader.h"

namespace ferry {
namespace {

TEST(ARelayHeader, CarriesTheClientAddressOfSshConnection)
{
    const auto a = relayAddressFromSshConnection("127.0.0.5 40112 127.0.0.1 22");
    ASSERT_TRUE(a);
    EXPECT_EQ(formatRelayHeader(*a), "ferry-relay 1 127.0.0.5 40112\n");
    const auto back = parseRelayHeader("ferry-relay 1 127.0.0.5 40112");
    ASSERT_TRUE(back);
    EXPECT_EQ(back->peerText(), "127.0.0.5:40112");
}

TEST(ARelayHeader, SaysWhenTheChannelsDescriptorsComeWithIt)
{
    auto a = relayAddressFromSshConnection("192.0.2.7 5000 192.0.2.1 22");
    ASSERT_TRUE(a);
    EXPECT_FALSE(a->withFds);
    a->withFds = true;
    EXPECT_EQ(formatRelayHeader(*a), "ferry-relay 2 192.0.2.7 5000\n");
    const auto two = parseRelayHeader("ferry-relay 2 192.0.2.7 5000");
    ASSERT_TRUE(two);
    EXPECT_TRUE(two->withFds);
    EXPECT_EQ(two->peerText(), "192.0.2.7:5000");
    const auto one = parseRelayHeader("ferry-relay 1 192.0.2.7 5000");
    ASSERT_TRUE(one);
    EXPECT_FALSE(one->withFds);
}

TEST(ARelayHeader, PutsIpv6InCanonicalFormAndBrackets)
{
    const auto a = relayAddressFromSshConnection("2001:DB8:0:0::7 22000 2001:db8::1 22");
    ASSERT_TRUE(a);
    EXPECT_EQ(a->address, "2001:db8::7");
    EXPECT_EQ(a->peerText(), "[2001:db8::7]:22000");
}

TEST(ARelayHeader, RefusesAnythingButAnAddressAndAPort)
{
    for (const char* line :
         {"", "ferry-relay 1", "ferry-relay 1 127.0.0.1", "ferry-relay 3 127.0.0.1 22", "ferry-relay 1 host.example 22",
          "ferry-relay 1 127.0.0.1 0", "ferry-relay 1 127.0.0.1 65536", "ferry-relay 1 127.0.0.1 022",
          "ferry-relay 1 127.0.0.1 22 extra", "ferry-relay 1 127.0.0.1 -1", "ferry-relay 1 127.0.0.1\x1b[2J 22",
          "FERRY-RELAY 1 127.0.0.1 22", "ferry-relay 2 127.0.0.1", "ferry-relay 2 127.0.0.1 22 extra",
          "ferry-relay 12 127.0.0.1 22"})
        EXPECT_FALSE(parseRelayHeader(line)) << line;
    EXPECT_FALSE(parseRelayHeader("ferry-relay 1 " + std::string(200, '1') + " 22"));
    EXPECT_FALSE(relayAddressFromSshConnection(""));
    EXPECT_FALSE(relayAddressFromSshConnection("127.0.0.1"));
}

} // namespace
} // namespace ferry
