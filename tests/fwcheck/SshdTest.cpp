// The effective sshd configuration through the real `sshd -T` on real
// config files. Only the account database is substituted (the test cannot
// create a user "ferry" on the host); sshd runs in a private mount
// namespace so that /run/sshd exists without touching the host.

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "Checker.h"
#include "HostReader.h"
#include "NetnsLab.h"
#include "PullConfinement.h"
#include "SshdCheck.h"
#include "support/TestSupport.h"

namespace {

using namespace fwcheck;

class ReaderWithAccount : public HostReader {
public:
    ReaderWithAccount(HostReaderOptions o, std::optional<Account> a) : HostReader(std::move(o)), m_account(std::move(a)) {}
    std::optional<Account> account(const std::string&) override { return m_account; }
    // The node's firewall and routes are not what these tests are about.
    CommandOutput iptablesSave(const std::string&) override { return {}; }
    CommandOutput nftRuleset() override { return {}; }
    std::optional<std::map<std::string, NftTableInfo>> nftTables() override { return std::nullopt; }
    Route route(const std::string&) override { return {"eth0", "192.0.2.1"}; }
    CommandOutput listeningSockets() override { return {}; }

private:
    std::optional<Account> m_account;
};

class TheSshdCheck : public ::testing::Test {
protected:
    void SetUp() override
    {
        if (!ferry::test::isRoot())
            GTEST_SKIP() << "needs root for a private /run (sshd -T wants /run/sshd)";
        const auto r = ferry::test::run({"ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", m_dir / "hk"});
        ASSERT_EQ(r.exitCode, 0) << r.err;
    }

    // The findings for one master address, from sshd -T on this config.
    std::vector<Finding> check(const std::string& config, const std::string& master, std::uint16_t port = 22,
                               std::vector<std::string> groups = {"ferry"})
    {
        ferry::test::writeFile(m_dir / "sshd_config", "HostKey " + (m_dir / "hk") + "\n" + config);
        HostReaderOptions o;
        o.sshdPrefix = fwtest::privateRunPrefix();
        o.sshdConfig = m_dir / "sshd_config";
        ReaderWithAccount reader(o, Account{"ferry", "/usr/sbin/ferry-login", groups, "/var/lib/ferry"});
        const auto out = reader.sshdEffective("ferry", master, master);
        EXPECT_EQ(out.exitCode, 0) << out.err;
        SshdQuestion q;
        q.masterHost = master;
        q.masterAddress = master;
        q.listenAddress = "192.0.2.1";
        q.port = port;
        q.account = reader.account("ferry");
        return checkSshd(parseSshdT(out.out), q, m_dir / "sshd_config");
    }

    static std::vector<std::string> ids(const std::vector<Finding>& fs)
    {
        std::vector<std::string> out;
        for (const auto& f : fs)
            out.push_back(f.id);
        return out;
    }

    ferry::test::TempDir m_dir;
};

using ::testing::ElementsAre;
using ::testing::IsEmpty;

TEST_F(TheSshdCheck, ReportsAPullUserSshdDoesNotConfineAndItsFixConfinesIt)
{
    const auto effective = [&](const std::string& config) {
        ferry::test::writeFile(m_dir / "sshd_config", "HostKey " + (m_dir / "hk") + "\n" + config);
        HostReaderOptions o;
        o.sshdPrefix = fwtest::privateRunPrefix();
        o.sshdConfig = m_dir / "sshd_config";
        ReaderWithAccount reader(o, std::nullopt);
        const auto out = reader.sshdEffective("ferry", "192.0.2.5", "192.0.2.5");
        EXPECT_EQ(out.exitCode, 0) << out.err;
        return parseSshdT(out.out);
    };
    PullLogin login;
    login.account = Account{"ferry", "/usr/sbin/ferry-login", {"ferry"}, "/var/lib/ferry"};
    login.sshdConfigPath = m_dir / "sshd_config";
    // A Match block for another user, or one that forgets a directive, is not enough.
    auto findings = checkSshdConfinement(effective("Match User alice\n  DisableForwarding yes\n"), login);
    ASSERT_EQ(findings.size(), 1u);
    EXPECT_EQ(findings[0].id, "sshd.pull-not-confined");
    EXPECT_NE(findings[0].message.find("DisableForwarding yes, PermitTTY no, PermitUserRC no, AuthenticationMethods publickey"),
              std::string::npos)
        << findings[0].message;
    findings = checkSshdConfinement(
        effective("Match User ferry\n  DisableForwarding yes\n  PermitTTY no\n  PermitUserRC no\n"), login);
    ASSERT_EQ(findings.size(), 1u);
    EXPECT_NE(findings[0].message.find("AuthenticationMethods publickey"), std::string::npos) << findings[0].message;
    // The block the fix prints, appended as the fix says: nothing left to report.
    const std::string fix = findings[0].fix;
    const std::string block = fix.substr(fix.find("Match User ferry"));
    EXPECT_THAT(checkSshdConfinement(effective(block), login), IsEmpty()) << block;
    // Without the pull shell as login shell the fix forces the command.
    login.account->shell = "/bin/sh";
    findings = checkSshdConfinement(effective(block), login);
    ASSERT_EQ(findings.size(), 1u);
    EXPECT_NE(findings[0].fix.find("ForceCommand /usr/sbin/ferry-login"), std::string::npos) << findings[0].fix;
}

TEST_F(TheSshdCheck, AcceptsTheDefaultConfiguration)
{
    EXPECT_THAT(ids(check("", "192.0.2.5")), IsEmpty());
}

TEST_F(TheSshdCheck, BlocksOnAllowUsersWithoutFerryAndShowsTheLineToWrite)
{
    const auto fs = check("AllowUsers alice bob\n", "192.0.2.5");
    ASSERT_THAT(ids(fs), ElementsAre("sshd.allow-users"));
    EXPECT_NE(fs[0].fix.find("AllowUsers alice bob ferry"), std::string::npos) << fs[0].fix;
    EXPECT_THAT(ids(check("AllowUsers alice ferry@192.0.2.0/24\n", "192.0.2.5")), IsEmpty());
    EXPECT_THAT(ids(check("AllowUsers alice ferry@192.0.2.0/24\n", "198.51.100.5")), ElementsAre("sshd.allow-users"));
}

TEST_F(TheSshdCheck, BlocksOnAllowGroupsThatMissTheUsersGroups)
{
    EXPECT_THAT(ids(check("AllowGroups wheel adm\n", "192.0.2.5")), ElementsAre("sshd.allow-groups"));
    EXPECT_THAT(ids(check("AllowGroups wheel fer*\n", "192.0.2.5")), IsEmpty());
    EXPECT_THAT(ids(check("DenyGroups nogroup\n", "192.0.2.5", 22, {"ferry", "nogroup"})), ElementsAre("sshd.deny-groups"));
}

TEST_F(TheSshdCheck, BlocksOnDenyUsersForTheMatchingMasterOnly)
{
    EXPECT_THAT(ids(check("DenyUsers eve ferry@192.0.2.0/24\n", "192.0.2.5")), ElementsAre("sshd.deny-users"));
    EXPECT_THAT(ids(check("DenyUsers eve ferry@192.0.2.0/24\n", "198.51.100.5")), IsEmpty());
    EXPECT_THAT(ids(check("DenyUsers f?rry\n", "198.51.100.5")), ElementsAre("sshd.deny-users"));
}

TEST_F(TheSshdCheck, BlocksWhenSshdListensOnAnotherAddress)
{
    const auto fs = check("ListenAddress 192.0.2.99\n", "192.0.2.5");
    ASSERT_THAT(ids(fs), ElementsAre("sshd.listen-address"));
    EXPECT_NE(fs[0].fix.find("ListenAddress 192.0.2.1:22"), std::string::npos) << fs[0].fix;
    EXPECT_THAT(ids(check("ListenAddress 192.0.2.1\n", "192.0.2.5")), IsEmpty());
}

TEST_F(TheSshdCheck, BlocksWhenSshdListensOnAnotherPort)
{
    const auto fs = check("Port 2222\n", "192.0.2.5");
    ASSERT_THAT(ids(fs), ElementsAre("sshd.port"));
    EXPECT_NE(fs[0].fix.find("Port 22'"), std::string::npos) << fs[0].fix;
    EXPECT_THAT(ids(check("Port 2222\n", "192.0.2.5", 2222)), IsEmpty());
    EXPECT_THAT(ids(check("ListenAddress 0.0.0.0:2200\n", "192.0.2.5", 2200)), IsEmpty());
}

TEST_F(TheSshdCheck, AppliesMatchBlocksForTheMastersAddress)
{
    const std::string config = "AllowUsers alice\nMatch Address 192.0.2.0/24\n  AllowUsers ferry\n";
    EXPECT_THAT(ids(check(config, "192.0.2.5")), IsEmpty());
    EXPECT_THAT(ids(check(config, "198.51.100.5")), ElementsAre("sshd.allow-users"));
    EXPECT_THAT(ids(check("Match User ferry\n  PubkeyAuthentication no\n", "192.0.2.5")), ElementsAre("sshd.pubkey"));
}

TEST_F(TheSshdCheck, ReportsABrokenConfigurationAsUndecidedWithoutCrashing)
{
    ferry::test::writeFile(m_dir / "sshd_config", "HostKey " + (m_dir / "hk") + "\nAllowUsers\nNoSuchOption yes\n");
    HostReaderOptions o;
    o.sshdPrefix = fwtest::privateRunPrefix();
    o.sshdConfig = m_dir / "sshd_config";
    ReaderWithAccount reader(o, Account{"ferry", "/usr/sbin/ferry-login", {"ferry"}, "/var/lib/ferry"});
    CheckSettings s;
    s.masters = {{"192.0.2.5", 22, 50010}};
    s.checkHostsAccess = false;
    s.checkListening = false;
    const auto report = Checker(reader, s).run();
    bool found = false;
    for (const auto& f : report.findings)
        if (f.id == "sshd.config-invalid") {
            found = true;
            EXPECT_NE(f.message.find("AllowUsers"), std::string::npos) << f.message;
        }
    EXPECT_TRUE(found);
    EXPECT_EQ(report.verdict, "undecided");
}

TEST_F(TheSshdCheck, SaysSshdIsNotRunningWhenItsRunDirectoryIsMissing)
{
    ferry::test::writeFile(m_dir / "sshd_config", "HostKey " + (m_dir / "hk") + "\n");
    HostReaderOptions o;
    // A private, empty /run: as on a node where sshd was never started.
    o.sshdPrefix = {"unshare", "--mount", "--propagation", "private", "sh", "-c", "mount -t tmpfs tmpfs /run && exec \"$@\"", "sh"};
    o.sshdConfig = m_dir / "sshd_config";
    ReaderWithAccount reader(o, Account{"ferry", "/usr/sbin/ferry-login", {"ferry"}, "/var/lib/ferry"});
    CheckSettings s;
    s.masters = {{"192.0.2.5", 22, 50010}};
    s.checkHostsAccess = false;
    s.checkListening = false;
    const auto report = Checker(reader, s).run();
    ASSERT_FALSE(report.findings.empty());
    EXPECT_EQ(report.findings[0].id, "sshd.not-running");
    EXPECT_EQ(report.findings[0].fix, "systemctl enable --now ssh");
    EXPECT_EQ(report.verdict, "blocked");
}

TEST_F(TheSshdCheck, BlocksWhenTheUserIsMissingOrHasTheWrongShell)
{
    ferry::test::writeFile(m_dir / "sshd_config", "HostKey " + (m_dir / "hk") + "\n");
    HostReaderOptions o;
    o.sshdPrefix = fwtest::privateRunPrefix();
    o.sshdConfig = m_dir / "sshd_config";
    CheckSettings s;
    s.masters = {{"192.0.2.5", 22, 50010}};
    s.checkHostsAccess = false;
    s.checkListening = false;
    ReaderWithAccount missing(o, std::nullopt);
    auto report = Checker(missing, s).run();
    ASSERT_FALSE(report.findings.empty());
    EXPECT_EQ(report.findings[0].id, "account.missing");
    ReaderWithAccount wrongShell(o, Account{"ferry", "/bin/bash", {"ferry"}, "/var/lib/ferry"});
    report = Checker(wrongShell, s).run();
    ASSERT_FALSE(report.findings.empty());
    EXPECT_EQ(report.findings[0].id, "account.shell");
    EXPECT_EQ(report.findings[0].fix, "usermod --shell /usr/sbin/ferry-login ferry");
}

} // namespace
