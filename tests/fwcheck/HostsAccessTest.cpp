// hosts_access(5) for daemon sshd: hosts.allow first, then hosts.deny.

#include <gtest/gtest.h>

#include "HostsAccess.h"

namespace {

using fwcheck::Address;
using fwcheck::HostsAccess;
using fwcheck::HostsClient;
using fwcheck::HostsDecision;
using fwcheck::HostsFile;
using Kind = HostsDecision::Kind;

HostsDecision decide(const std::string& allow, const std::string& deny, const std::string& addr,
                     const std::string& name = {})
{
    HostsAccess h(HostsFile{"/etc/hosts.allow", allow}, HostsFile{"/etc/hosts.deny", deny});
    return h.decide(HostsClient{*Address::parse(addr), name, std::nullopt});
}

TEST(HostsAccess, AllowsWhenBothFilesAreMissingOrOnlyComments)
{
    HostsAccess h(HostsFile{"/etc/hosts.allow", std::nullopt}, HostsFile{"/etc/hosts.deny", std::nullopt});
    EXPECT_EQ(h.decide({*Address::parse("192.0.2.1"), "", std::nullopt}).kind, Kind::Allowed);
    EXPECT_EQ(decide("# nothing\n\n", "# ALL: ALL\n", "192.0.2.1").kind, Kind::Allowed);
}

TEST(HostsAccess, DeniesWithAllAllInHostsDenyAndNamesTheLine)
{
    const auto d = decide("", "# comment\nALL: ALL\n", "192.0.2.1");
    EXPECT_EQ(d.kind, Kind::Denied);
    EXPECT_EQ(d.file, "/etc/hosts.deny");
    EXPECT_EQ(d.line, 2);
}

TEST(HostsAccess, LetsHostsAllowWinOverHostsDeny)
{
    EXPECT_EQ(decide("sshd: 192.0.2.1\n", "ALL: ALL\n", "192.0.2.1").kind, Kind::Allowed);
    EXPECT_EQ(decide("sshd: 192.0.2.1\n", "ALL: ALL\n", "192.0.2.2").kind, Kind::Denied);
}

TEST(HostsAccess, HonoursExceptInClientAndDaemonLists)
{
    EXPECT_EQ(decide("", "ALL: ALL EXCEPT 192.0.2.7\n", "192.0.2.7").kind, Kind::Allowed);
    EXPECT_EQ(decide("", "ALL: ALL EXCEPT 192.0.2.7\n", "192.0.2.8").kind, Kind::Denied);
    EXPECT_EQ(decide("", "ALL EXCEPT sshd: ALL\n", "192.0.2.8").kind, Kind::Allowed);
    EXPECT_EQ(decide("", "ALL EXCEPT vsftpd: 192.0.2.0/24 EXCEPT 192.0.2.0/25\n", "192.0.2.200").kind, Kind::Denied);
    EXPECT_EQ(decide("", "ALL EXCEPT vsftpd: 192.0.2.0/24 EXCEPT 192.0.2.0/25\n", "192.0.2.20").kind, Kind::Allowed);
}

TEST(HostsAccess, MatchesPrefixMaskAndNetPatterns)
{
    EXPECT_EQ(decide("", "sshd: 192.0.2.0/255.255.255.0\n", "192.0.2.9").kind, Kind::Denied);
    EXPECT_EQ(decide("", "sshd: 192.0.2.0/255.255.255.128\n", "192.0.2.200").kind, Kind::Allowed);
    EXPECT_EQ(decide("", "sshd: 192.0.2.0/24\n", "192.0.2.9").kind, Kind::Denied);
    EXPECT_EQ(decide("", "sshd: 192.0.\n", "192.0.2.9").kind, Kind::Denied);
    EXPECT_EQ(decide("", "sshd: 192.0.20.\n", "192.0.2.9").kind, Kind::Allowed);
    EXPECT_EQ(decide("", "sshd: [2001:db8::]/32\n", "2001:db8:1::5").kind, Kind::Denied);
    EXPECT_EQ(decide("", "sshd: [2001:db8::5]\n", "2001:db8::6").kind, Kind::Allowed);
    EXPECT_EQ(decide("", "sshd, vsftpd : 192.0.2.9, 192.0.2.10\n", "192.0.2.10").kind, Kind::Denied);
}

TEST(HostsAccess, DecidesDomainPatternsOnlyWhenTheMasterWasConfiguredByName)
{
    EXPECT_EQ(decide("", "sshd: .example.org\n", "192.0.2.9", "master.example.org").kind, Kind::Denied);
    EXPECT_EQ(decide("", "sshd: .example.org\n", "192.0.2.9", "master.example.com").kind, Kind::Allowed);
    const auto d = decide("", "sshd: .example.org\n", "192.0.2.9");
    EXPECT_EQ(d.kind, Kind::Undecided);
    EXPECT_NE(d.why.find(".example.org"), std::string::npos) << d.why;
}

TEST(HostsAccess, CallsUnknownFormsUndecidedAndNamesThem)
{
    for (const std::string pat : {"@trusted", "KNOWN", "PARANOID", "user@192.0.2.9", "/etc/ssh/allowed", "[2001:db8::"}) {
        const auto d = decide("sshd: " + pat + "\n", "ALL: ALL\n", "192.0.2.9");
        EXPECT_EQ(d.kind, Kind::Undecided) << pat;
        EXPECT_EQ(d.file, "/etc/hosts.allow") << pat;
        EXPECT_FALSE(d.why.empty()) << pat;
    }
}

TEST(HostsAccess, MatchesDaemonAtHostAgainstTheAddressTheMasterConnectsTo)
{
    HostsAccess h(HostsFile{"/etc/hosts.allow", std::nullopt}, HostsFile{"/etc/hosts.deny", "sshd@192.0.2.1: ALL\n"});
    const auto master = *Address::parse("198.51.100.7");
    EXPECT_EQ(h.decide({master, "", Address::parse("192.0.2.1")}).kind, Kind::Denied);
    EXPECT_EQ(h.decide({master, "", Address::parse("192.0.2.2")}).kind, Kind::Allowed);
    EXPECT_EQ(h.decide({master, "", std::nullopt}).kind, Kind::Undecided);
    HostsAccess other(HostsFile{"/etc/hosts.allow", std::nullopt}, HostsFile{"/etc/hosts.deny", "vsftpd@192.0.2.1: ALL\n"});
    EXPECT_EQ(other.decide({master, "", std::nullopt}).kind, Kind::Allowed);
}

TEST(HostsAccess, FollowsOptionFieldsAndContinuationLines)
{
    EXPECT_EQ(decide("sshd: 192.0.2.9 : deny\n", "", "192.0.2.9").kind, Kind::Denied);
    EXPECT_EQ(decide("", "sshd: ALL : allow\n", "192.0.2.9").kind, Kind::Allowed);
    EXPECT_EQ(decide("", "sshd: ALL : spawn (echo deny this) &\n", "192.0.2.9").kind, Kind::Denied);
    EXPECT_EQ(decide("", "sshd: 192.0.2.1 \\\n  192.0.2.9\n", "192.0.2.9").kind, Kind::Denied);
}

TEST(HostsAccess, ReportsLinesLibwrapIgnoresWithoutFailing)
{
    HostsAccess h(HostsFile{"/etc/hosts.allow", "this line has no separator\nsshd ALL\n"}, HostsFile{"/etc/hosts.deny", ""});
    EXPECT_EQ(h.decide({*Address::parse("192.0.2.9"), "", std::nullopt}).kind, Kind::Allowed);
    ASSERT_EQ(h.problems().size(), 2u);
    EXPECT_NE(h.problems()[0].find("/etc/hosts.allow:1"), std::string::npos);
}

} // namespace
