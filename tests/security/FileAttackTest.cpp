// Issue 12, item 1: root must not hand files to ferry. A process running as
// ferry owns /var/lib/ferry and plants symlinks there; root's ferryctl must
// neither chown nor write nor print what they point at.

#include <grp.h>
#include <pwd.h>
#include <signal.h>
#include <sys/inotify.h>
#include <sys/stat.h>
#include <sys/wait.h>

#include <cstring>
#include <unistd.h>

#include <filesystem>

#include <gtest/gtest.h>

#include "ferry/Crypto.h"
#include "ferry/MasterStore.h"
#include "support/TestSshd.h"
#include "support/TestSupport.h"

namespace ferry::test {
namespace {

class AStateDirectoryOwnedByFerry : public ::testing::Test {
protected:
    void SetUp() override
    {
        if (!isRoot())
            GTEST_SKIP() << "needs root: ferryctl runs as root against a ferry-owned directory";
        ensureUser("ferry", "/usr/sbin/nologin");
        ::chmod(m_root.path().c_str(), 0755);
        m_state = m_root / "state";
        m_vault = m_root / "vault";  // stands for /etc: root's, 0700
        std::filesystem::create_directories(m_state);
        std::filesystem::create_directories(m_vault);
        ::chmod(m_vault.c_str(), 0700);
        { MasterStore schema(m_state + "/master.db"); }
        ASSERT_EQ(run({"chown", "-R", "ferry:ferry", m_state, m_state + "-keys"}).exitCode, 0);
        prepareMasterSideDirs(m_state);
        ::chmod(m_state.c_str(), 0750);
        m_target = m_vault + "/shadow";
        writeFile(m_target, m_targetText, 0600);
    }

    // As ferry, as a compromised daemon or plugin would.
    void plantAsFerry(const std::string& link, const std::string& target)
    {
        ASSERT_EQ(run({"/usr/bin/setpriv", "--reuid=ferry", "--regid=ferry", "--clear-groups", "ln", "-sf", target,
                       link})
                      .exitCode,
                  0);
    }

    void expectTargetUntouched()
    {
        struct stat st{};
        ASSERT_EQ(::stat(m_target.c_str(), &st), 0);
        EXPECT_EQ(st.st_uid, 0u) << "the root file was handed to uid " << st.st_uid;
        EXPECT_EQ(st.st_mode & 0777, 0600u);
        EXPECT_EQ(readFile(m_target), m_targetText);
    }

    RunResult ferryctlAsRoot(const std::vector<std::string>& args, const std::string& input = {})
    {
        std::vector<std::string> argv{buildPath("services/ferryctl/ferryctl")};
        argv.insert(argv.end(), args.begin(), args.end());
        // No bus: the commands fall back to the files, where the attack is.
        return run(argv,
                   {{"FERRY_STATE_DIR", m_state}, {"FERRY_CONFIG_DIR", m_root / "etc"},
                    {"DBUS_SYSTEM_BUS_ADDRESS", "unix:path=" + (m_root / "no-bus")}},
                   input);
    }

    TempDir m_root;
    std::string m_state, m_vault, m_target;
    const std::string m_targetText = "root:$y$secret-hash:19000:0:99999:7:::\n";
};

TEST_F(AStateDirectoryOwnedByFerry, DoesNotGetARootFileChownedOrWrittenThroughASymlinkedShm)
{
    plantAsFerry(m_state + "/master.db-shm", m_target);
    const auto r = ferryctlAsRoot({"master", "nodes"});
    std::cout << "ferryctl master nodes: exit " << r.exitCode << ": " << r.err;
    expectTargetUntouched();
}

TEST_F(AStateDirectoryOwnedByFerry, DoesNotGetARootFileChownedThroughASymlinkedWal)
{
    plantAsFerry(m_state + "/master.db-wal", m_target);
    const auto r = ferryctlAsRoot({"master", "add-node", "web1"}, generateSecret() + "\n");
    std::cout << "ferryctl master add-node: exit " << r.exitCode << ": " << r.err;
    expectTargetUntouched();
}

TEST_F(AStateDirectoryOwnedByFerry, DoesNotGetARootFileChownedByRacingASymlinkIntoPlace)
{
    // Between SQLite removing master.db-wal at close and the chown of that
    // path, ferry puts a symlink there: a loop as ferry that keeps planting it.
    const pid_t attacker = ::fork();
    ASSERT_GE(attacker, 0);
    if (attacker == 0) {
        const passwd* pw = ::getpwnam("ferry");
        if (pw == nullptr || ::setgroups(0, nullptr) != 0 || ::setgid(pw->pw_gid) != 0 || ::setuid(pw->pw_uid) != 0)
            ::_exit(3);
        const std::string link = m_state + "/master.db-wal";
        const std::string tmp = m_state + "/.plant";
        // Wake when SQLite removes the WAL at close, plant the symlink at
        // once, and take it away again so that the next open succeeds.
        const int in = ::inotify_init1(IN_CLOEXEC);
        if (in < 0 || ::inotify_add_watch(in, m_state.c_str(), IN_DELETE) < 0)
            ::_exit(4);
        alignas(inotify_event) char buf[4096];
        for (;;) {
            const ssize_t n = ::read(in, buf, sizeof buf);
            bool walGone = false;
            for (ssize_t off = 0; off < n;) {
                inotify_event ev{};
                std::memcpy(&ev, buf + off, sizeof ev);
                if (ev.len > 0 && std::strcmp(buf + off + sizeof ev, "master.db-wal") == 0)
                    walGone = true;
                off += static_cast<ssize_t>(sizeof ev + ev.len);
            }
            if (!walGone)
                continue;
            ::symlink(m_target.c_str(), tmp.c_str());
            ::rename(tmp.c_str(), link.c_str());
            ::usleep(3000);
            ::unlink(link.c_str());
        }
    }
    struct stat st{};
    int runs = 0;
    const auto until = Clock::now() + std::chrono::seconds(20);
    for (; runs < 150 && Clock::now() < until; ++runs) {
        ferryctlAsRoot({"master", "nodes"});
        if (::stat(m_target.c_str(), &st) == 0 && st.st_uid != 0)
            break;
    }
    ::kill(attacker, SIGKILL);
    ::waitpid(attacker, nullptr, 0);
    std::cout << runs << " runs of ferryctl master nodes against the race\n";
    expectTargetUntouched();
}

TEST_F(AStateDirectoryOwnedByFerry, StillLetsRootAddANodeAndLeavesTheStoreToFerry)
{
    const auto r = ferryctlAsRoot({"master", "add-node", "web1"}, generateSecret() + "\n");
    ASSERT_EQ(r.exitCode, 0) << r.err;
    for (const auto& f : std::filesystem::directory_iterator(m_state)) {
        struct stat st{};
        ASSERT_EQ(::lstat(f.path().c_str(), &st), 0);
        EXPECT_NE(st.st_uid, 0u) << f.path() << " is root's: the daemons could not use it";
    }
    EXPECT_NE(ferryctlAsRoot({"master", "nodes"}).out.find("web1"), std::string::npos);
}

TEST_F(AStateDirectoryOwnedByFerry, DoesNotLetFerryctlSecretPrintWhatASymlinkPointsAt)
{
    const std::string rootSecret(64, 'c');
    writeFile(m_target, rootSecret + "\n", 0600);
    plantAsFerry(m_state + "/secret", m_target);
    std::filesystem::create_directories(m_root / "etc");
    writeFile(m_root / "etc/ferry.yml", "node:\n  name: n1\nmasters:\n  - host: 127.0.0.1\n");
    const auto r = ferryctlAsRoot({"secret"});
    EXPECT_NE(r.exitCode, 0);
    EXPECT_EQ(r.out.find(rootSecret), std::string::npos) << "root's file was printed: " << r.out;
    EXPECT_NE(r.err.find("symlink"), std::string::npos) << r.err;
}

} // namespace
} // namespace ferry::test
