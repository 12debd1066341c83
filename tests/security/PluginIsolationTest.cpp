// Issue 12 item 2 (node): a third-party plugin of /etc/ferry/plugins.d must
// not reach what user ferry owns in /var/lib/ferry — the node secret, the
// spool, the pull login's authorized_keys. The plugin below tries all
// three. Run the old way (by the sampler itself, as the state directory's
// owner) it succeeds; run the shipped way (ferry-plugins.socket: a runner
// as a user apart, its output through the connection) it fails, and its
// output still reaches the spool through the pipe.
//
// Real users (created here), the real ferry-sampler binary in both roles,
// and systemd-socket-activate standing in for ferry-plugins.socket's
// Accept=yes (one runner per connection, the connection as stdin/stdout).

#include <sys/stat.h>
#include <unistd.h>

#include <filesystem>

#include <gtest/gtest.h>

#include "ferry/Spool.h"
#include "support/TestSupport.h"

namespace ferry::test {
namespace {

namespace fs = std::filesystem;

void must(const RunResult& r, const std::string& what)
{
    if (r.exitCode != 0)
        throw std::runtime_error(what + " failed: " + r.err + r.out);
}

class APlugin : public ::testing::Test {
protected:
    void SetUp() override
    {
        if (!isRoot())
            GTEST_SKIP() << "needs root: creates users and runs the sampler and the runner as them";
        if (::access("/usr/bin/systemd-socket-activate", X_OK) != 0)
            GTEST_SKIP() << "needs systemd-socket-activate";
        const std::string suffix = std::to_string(::getpid() % 100000);
        m_owner = "fpo" + suffix;
        m_runner = "fpr" + suffix;
        for (const auto& u : {m_owner, m_runner}) {
            RunResult r;
            for (int attempt = 0; attempt < 20; ++attempt) {
                r = run({"/usr/sbin/useradd", "--system", "-M", "-d", "/nonexistent", "-s", "/usr/sbin/nologin", u});
                if (r.exitCode == 0)
                    break;
                waitUntil([] { return false; }, std::chrono::milliseconds(100)); // another test holds the lock
            }
            must(r, "useradd " + u);
        }
        m_root = makeSharedTestDir("plugins");
        m_state = m_root + "/state";
        m_config = m_root + "/etc";
        m_results = m_root + "/results";
        fs::create_directories(m_state);
        fs::create_directories(m_config + "/plugins.d");
        fs::create_directories(m_results);
        ::chmod(m_results.c_str(), 01777);
        writeFile(m_state + "/secret", std::string(64, 'a') + "\n", 0600);
        writeFile(m_state + "/authorized_keys", "", 0600);
        writeFile(m_config + "/ferry.yml", "node:\n  name: plugtest\n", 0644);
        // What an attacker's plugin does: read the secret, tamper with the
        // spool, add a login key; it reports what worked.
        writeFile(
            m_config + "/plugins.d/evil",
            "#!/bin/sh\n"
            "S=" +
                m_state +
                "\n"
                "R=" +
                m_results +
                "/$(id -un)\n"
                "if cat \"$S/secret\" >/dev/null 2>&1; then echo secret >>\"$R\"; fi\n"
                "if [ -w \"$S/spool.db\" ] || (: >>\"$S/spool.db\") 2>/dev/null; then echo spool >>\"$R\"; fi\n"
                "if (echo 'ssh-ed25519 AAAA evil' >>\"$S/authorized_keys\") 2>/dev/null; then echo keys >>\"$R\"; fi\n"
                "echo 'evil_ran 1'\n",
            0755);
        must(run({"/bin/chown", "-R", m_owner + ":" + m_owner, m_state}), "chown state");
        ::chmod(m_state.c_str(), 0750);
    }

    void TearDown() override
    {
        m_activator.reset();
        if (!m_root.empty())
            fs::remove_all(m_root);
        for (const auto& u : {m_owner, m_runner})
            if (!u.empty())
                run({"/usr/sbin/userdel", u});
    }

    std::map<std::string, std::string> env() const
    {
        return {{"FERRY_STATE_DIR", m_state}, {"FERRY_CONFIG_DIR", m_config}, {"FERRY_RUNTIME_DIR", m_root}};
    }
    std::vector<std::string> as(const std::string& user, std::vector<std::string> argv) const
    {
        std::vector<std::string> out{"/usr/bin/setpriv", "--reuid=" + user, "--regid=" + user, "--clear-groups"};
        out.insert(out.end(), argv.begin(), argv.end());
        return out;
    }
    std::string results(const std::string& user) const
    {
        const std::string f = m_results + "/" + user;
        return fs::exists(f) ? readFile(f) : std::string();
    }
    bool spoolHasPluginRecord() const
    {
        Spool spool(m_state + "/spool.db", {});
        for (const auto& r : spool.readAfter(0, 1000, 1 << 20))
            if (r.kind == "metrics:evil")
                return true;
        return false;
    }

    std::string m_owner, m_runner, m_root, m_state, m_config, m_results;
    std::optional<Process> m_activator;
};

TEST_F(APlugin, RunByTheSamplerItselfReachesTheSecretTheSpoolAndTheLoginKeys)
{
    // The old way, kept for hosts without the socket: shows the attack is real.
    const auto r = run(as(m_owner, {buildPathForAnyUser("services/sampler/ferry-sampler")}), env());
    ASSERT_EQ(r.exitCode, 0) << r.err;
    EXPECT_EQ(results(m_owner), "secret\nspool\nkeys\n");
}

TEST_F(APlugin, RunApartReachesNothingOfTheStateDirectoryAndItsOutputStillArrives)
{
    const std::string sock = m_root + "/plugins.sock";
    m_activator.emplace(
        std::vector<std::string>{"/usr/bin/systemd-socket-activate", "--inetd", "-a", "-l", sock, "/usr/bin/setpriv",
                                 "--reuid=" + m_runner, "--regid=" + m_runner, "--clear-groups", "/usr/bin/env",
                                 "FERRY_CONFIG_DIR=" + m_config, "FERRY_STATE_DIR=/nonexistent",
                                 buildPathForAnyUser("services/sampler/ferry-sampler"), "--run-plugins"},
        std::map<std::string, std::string>{}, m_root + "/activator.log");
    ASSERT_TRUE(waitUntil([&] { return fs::exists(sock); })) << readFile(m_root + "/activator.log");
    // ferry-plugins.socket: SocketUser=ferry, SocketMode=0600.
    must(run({"/bin/chown", m_owner, sock}), "chown socket");
    ::chmod(sock.c_str(), 0600);

    const auto r =
        run(as(m_owner, {buildPathForAnyUser("services/sampler/ferry-sampler"), "--plugins-socket", sock}), env());
    ASSERT_EQ(r.exitCode, 0) << r.err << readFile(m_root + "/activator.log");
    EXPECT_EQ(results(m_runner), "");
    EXPECT_EQ(results(m_owner), "");
    EXPECT_EQ(readFile(m_state + "/authorized_keys"), "");
    EXPECT_TRUE(spoolHasPluginRecord()) << "the plugin's output did not come through the pipe: " << r.err;

    // The socket is the owner's alone: another user cannot have plugins run
    // (nor read their output).
    const auto stranger = run({"/usr/bin/setpriv", "--reuid=" + m_runner, "--regid=" + m_runner, "--clear-groups",
                               "/usr/bin/env", "FERRY_STATE_DIR=" + m_results, "FERRY_CONFIG_DIR=" + m_config,
                               buildPathForAnyUser("services/sampler/ferry-sampler"), "--plugins-socket", sock});
    EXPECT_NE(stranger.exitCode, 0);
    EXPECT_NE(stranger.err.find("Failed to connect to the plugin runner"), std::string::npos) << stranger.err;
}

} // namespace
} // namespace ferry::test
