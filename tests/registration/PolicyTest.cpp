// The shipped bus policies, loaded by a real dbus-daemon: registryd (user
// ferry) may own org.ferry.Registry1, root may manage nodes, anyone else may
// only introspect; org.ferry.KeyReg1's policy parses and lets no one but
// ferry own the name. Needs root (processes as ferry and nobody).

#include <sys/stat.h>

#include <filesystem>

#include <gtest/gtest.h>

#include "RegistrationSupport.h"
#include "ferry/Crypto.h"
#include "ferry/SshSession.h"
#include "support/TestSshd.h"

namespace ferry::test {
namespace {

class TheShippedBusPolicy : public ::testing::Test {
protected:
    void SetUp() override
    {
        if (!isRoot())
            GTEST_SKIP() << "needs root: runs clients as users ferry and nobody";
        ensureUser("ferry", "/usr/sbin/nologin");
        ::chmod(m_root.path().c_str(), 0755);
        m_socket = m_root / "bus";
        // The system bus's own defaults (deny own, allow send to the bus
        // driver) plus our two policy files, as /usr/share/dbus-1/system.d does.
        writeFile(m_root / "bus.conf",
                  "<!DOCTYPE busconfig PUBLIC \"-//freedesktop//DTD D-Bus Bus Configuration 1.0//EN\"\n"
                  " \"http://www.freedesktop.org/standards/dbus/1.0/busconfig.dtd\">\n<busconfig>\n"
                  "  <type>system</type>\n  <listen>unix:path=" + m_socket + "</listen>\n  <auth>EXTERNAL</auth>\n"
                  "  <policy context=\"default\">\n    <allow user=\"*\"/>\n    <deny own=\"*\"/>\n"
                  "    <deny send_type=\"method_call\"/>\n    <allow send_destination=\"org.freedesktop.DBus\"/>\n"
                  "    <allow send_type=\"signal\"/>\n    <allow send_requested_reply=\"true\" send_type=\"method_return\"/>\n"
                  "    <allow send_requested_reply=\"true\" send_type=\"error\"/>\n"
                  "    <allow receive_type=\"method_call\"/>\n    <allow receive_type=\"method_return\"/>\n"
                  "    <allow receive_type=\"error\"/>\n    <allow receive_type=\"signal\"/>\n"
                  "  </policy>\n"
                  "  <include>" + sourcePath("dbus/org.ferry.Registry1.conf") + "</include>\n"
                  "  <include>" + sourcePath("dbus/org.ferry.KeyReg1.conf") + "</include>\n"
                  "</busconfig>\n",
                  0644);
        m_daemon.emplace(std::vector<std::string>{"/usr/bin/dbus-daemon", "--nofork", "--nopidfile",
                                                  "--config-file=" + (m_root / "bus.conf")},
                         std::map<std::string, std::string>{}, m_root / "dbus.log");
        ASSERT_TRUE(waitUntil([&] { return std::filesystem::exists(m_socket); })) << readFile(m_root / "dbus.log");
        m_address = "unix:path=" + m_socket;
        ::setenv("DBUS_SYSTEM_BUS_ADDRESS", m_address.c_str(), 1);
    }
    void TearDown() override { ::unsetenv("DBUS_SYSTEM_BUS_ADDRESS"); }

    RunResult busctlAs(const std::string& user, std::vector<std::string> args)
    {
        const std::string group = user == "nobody" ? "65534" : user;
        std::vector<std::string> argv{"/usr/bin/setpriv", "--reuid=" + user, "--regid=" + group, "--clear-groups",
                                      "/usr/bin/busctl", "--address=" + m_address};
        if (user == "root")
            argv = {"/usr/bin/busctl", "--address=" + m_address};
        argv.insert(argv.end(), args.begin(), args.end());
        return run(argv);
    }

    TempDir m_root;
    std::string m_socket, m_address;
    std::optional<Process> m_daemon;
};

TEST_F(TheShippedBusPolicy, LetsOnlyRootManageNodesAndOnlyFerryOwnTheRegistry)
{
    const std::string state = m_root / "master";
    std::filesystem::create_directories(state);
    ASSERT_EQ(run({"chown", "ferry:ferry", state}).exitCode, 0);
    prepareMasterSideDirs(state);
    ensureKeyPair(m_root / "host_key");
    // As root, registryd may not own the name.
    Process asRoot({buildPath("services/registryd/ferry-registryd"), "--listen", "127.0.0.1:" + std::to_string(freePort()),
                    "--state-dir", state, "--host-key", m_root / "host_key.pub"},
                   {}, m_root / "root.log");
    EXPECT_TRUE(asRoot.wait(std::chrono::seconds(10)).has_value());
    EXPECT_NE(readFile(m_root / "root.log").find("org.ferry.Registry1"), std::string::npos) << readFile(m_root / "root.log");
    // What root's registryd created is handed back, as a root-run daemon
    // would leave it to an operator to fix.
    ASSERT_EQ(run({"chown", "-R", "ferry:ferry-keys", state + "-keys"}).exitCode, 0);

    Registryd registryd(state, m_root / "host_key.pub", freePort(), m_root / "registryd.log", {},
                        {"/usr/bin/setpriv", "--reuid=ferry", "--regid=ferry", "--clear-groups"});
    const std::vector<std::string> list{"call", "org.ferry.Registry1", "/org/ferry/Registry1", "org.ferry.Registry1",
                                        "ListNodes"};
    auto r = busctlAs("root", list);
    EXPECT_EQ(r.exitCode, 0) << r.err;
    r = busctlAs("nobody", list);
    EXPECT_NE(r.exitCode, 0);
    EXPECT_NE(r.err.find("Access denied"), std::string::npos) << r.err;
    r = busctlAs("nobody", {"call", "org.ferry.Registry1", "/org/ferry/Registry1", "org.ferry.Registry1", "AddNode",
                            "ss", "n1", generateSecret()});
    EXPECT_NE(r.err.find("Access denied"), std::string::npos) << r.err;
    r = busctlAs("nobody", {"introspect", "org.ferry.Registry1", "/org/ferry/Registry1"});
    EXPECT_EQ(r.exitCode, 0) << r.err;
    EXPECT_NE(r.out.find("ListNodes"), std::string::npos) << r.out;
}

} // namespace
} // namespace ferry::test

namespace ferry::test {
namespace {

TEST(TheSecretCommand, ShowsTheNodeSecretToRootOnly)
{
    if (!isRoot())
        GTEST_SKIP() << "needs root: compares root with user nobody";
    TempDir dir;
    ::chmod(dir.path().c_str(), 0755);
    const std::string secret = generateSecret();
    writeFile(dir / "secret", secret + "\n", 0600);
    const std::map<std::string, std::string> env{{"FERRY_STATE_DIR", dir.path()}, {"FERRY_CONFIG_DIR", dir.path()}};
    auto r = ferryctl({"secret"}, env);
    EXPECT_EQ(r.exitCode, 0) << r.err;
    EXPECT_EQ(r.out, secret + "\n");
    r = run({"/usr/bin/setpriv", "--reuid=nobody", "--regid=65534", "--clear-groups",
             buildPathForAnyUser("services/ferryctl/ferryctl"), "secret"},
            env);
    EXPECT_EQ(r.exitCode, 1);
    EXPECT_EQ(r.out, "");
    EXPECT_NE(r.err.find("only root may read the node secret"), std::string::npos) << r.err;
}

} // namespace
} // namespace ferry::test
