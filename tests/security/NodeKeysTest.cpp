// Issue 12, item 2 (master side): node keys live in node-keys.db, in a
// directory only the ferry-keys group opens (collectord, registryd, pulld,
// root's ferryctl); the AuthorizedKeysCommand helper runs as its own user
// and reads a view of keys, never master.db. The attacks run as the users
// the shipped units and drop-in give each process:
//   ferry without supplementary groups   ferry-metricsd, ferry-remote-write
//   ferry-authkeys                        ferry-authorized-keys under sshd
// Before this change every node key was in master.db, which both of the
// first could read, and the helper ran as ferry and read master.db.
//
// Needs root: real users and groups, files owned as packaging makes them,
// a real sshd in a mount namespace.

#include <grp.h>
#include <pwd.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <functional>
#include <sstream>

#include <gtest/gtest.h>

#include "RegistrationSupport.h"
#include "ferry/AuthorizedKeysView.h"
#include "ferry/Clock.h"
#include "ferry/Crypto.h"
#include "ferry/Error.h"
#include "ferry/MasterSchema.h"
#include "ferry/MasterStore.h"
#include "ferry/RegistryStore.h"
#include "ferry/Sqlite.h"
#include "ferry/SshKeys.h"
#include "ferry/SshSession.h"
#include "support/TestSshd.h"
#include "support/TestSupport.h"

namespace ferry::test {
namespace {

struct Identity {
    uid_t uid;
    gid_t gid;
    std::vector<gid_t> groups;
};

Identity identity(const std::string& user, const std::vector<std::string>& groups = {})
{
    const passwd* pw = ::getpwnam(user.c_str());
    if (pw == nullptr)
        throw std::runtime_error("no user " + user);
    Identity id{pw->pw_uid, pw->pw_gid, {}};
    for (const auto& g : groups) {
        const group* gr = ::getgrnam(g.c_str());
        if (gr == nullptr)
            throw std::runtime_error("no group " + g);
        id.groups.push_back(gr->gr_gid);
    }
    return id;
}

// Runs fn in a child that has become id (groups exactly as given): its exit
// status, or -1 when it could not become id. What fn returns is its status.
int runAs(const Identity& id, const std::function<int()>& fn)
{
    const pid_t pid = ::fork();
    if (pid == 0) {
        if (::setgroups(id.groups.size(), id.groups.data()) != 0 || ::setresgid(id.gid, id.gid, id.gid) != 0 ||
            ::setresuid(id.uid, id.uid, id.uid) != 0)
            ::_exit(125);
        int status = 126;
        try {
            status = fn();
        } catch (...) {
            status = 127;
        }
        ::_exit(status);
    }
    int status = 0;
    ::waitpid(pid, &status, 0);
    return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

// setpriv arguments for the identities the shipped units and drop-in give.
const std::vector<std::string> kMetricsd{"--reuid=ferry", "--regid=ferry", "--clear-groups"};
const std::vector<std::string> kCollectord{"--reuid=ferry", "--regid=ferry", "--groups=ferry-keys"};
const std::vector<std::string> kHelper{"--reuid=ferry-authkeys", "--regid=ferry-authkeys", "--clear-groups"};

// cat path as who: the bytes on success, the error in err otherwise.
RunResult catAs(const std::vector<std::string>& who, const std::string& path)
{
    std::vector<std::string> argv{"/usr/bin/setpriv"};
    argv.insert(argv.end(), who.begin(), who.end());
    argv.insert(argv.end(), {"/bin/cat", "--", path});
    return run(argv);
}

bool refused(const RunResult& r)
{
    return r.exitCode != 0 && r.err.find("Permission denied") != std::string::npos;
}

// The tunnel user of the shipped drop-in ("Match User X").
std::string tunnelUser()
{
    std::istringstream in(readFile(sourcePath("units/sshd/ferry-master.conf")));
    std::string line;
    while (std::getline(in, line))
        if (line.rfind("Match User ", 0) == 0)
            return line.substr(11);
    throw std::runtime_error("no Match User block in units/sshd/ferry-master.conf");
}

class AMasterWithNodeKeysApart : public ::testing::Test {
protected:
    void SetUp() override
    {
        if (!isRoot())
            GTEST_SKIP() << "needs root: real users, groups and file ownership as packaging makes them";
        ensureUser("ferry", "/usr/sbin/nologin");
        ensureUser("ferry-authkeys", "/usr/sbin/nologin");
        ensureGroup("ferry-keys");
        ::chmod(m_root.path().c_str(), 0755);
        m_state = m_root / "master";
        m_keys = m_state + "-keys";
        m_view = m_state + "-authkeys";
        // As ferry-master's packaging makes /var/lib/ferry, /var/lib/ferry-keys
        // and /var/lib/ferry-authkeys.
        std::filesystem::create_directories(m_state);
        std::filesystem::create_directories(m_keys);
        std::filesystem::create_directories(m_view);
        must({"chown", "ferry:ferry", m_state});
        must({"chmod", "0750", m_state});
        must({"chown", "root:ferry-keys", m_keys});
        must({"chmod", "2770", m_keys});
        must({"chown", "ferry:ferry-authkeys", m_view});
        must({"chmod", "2750", m_view});
        m_collectord = identity("ferry", {"ferry-keys"});
    }

    void must(const std::vector<std::string>& argv)
    {
        const auto r = run(argv);
        ASSERT_EQ(r.exitCode, 0) << argv[0] << ": " << r.err;
    }

    // ferryctl as root without a bus: the commands fall back to the store,
    // as the state directory's owner with the ferry-keys group.
    RunResult ferryctl(const std::vector<std::string>& args, const std::string& input = {})
    {
        std::vector<std::string> argv{buildPath("services/ferryctl/ferryctl")};
        argv.insert(argv.end(), args.begin(), args.end());
        return run(argv,
                   {{"FERRY_STATE_DIR", m_state},
                    {"FERRY_CONFIG_DIR", m_root / "etc"},
                    {"DBUS_SYSTEM_BUS_ADDRESS", "unix:path=" + (m_root / "no-bus")}},
                   input);
    }

    void enrol(const std::string& node, const std::string& secret)
    {
        const auto r = ferryctl({"master", "add-node", node}, secret + "\n");
        ASSERT_EQ(r.exitCode, 0) << r.err;
    }

    // What registryd does when the node registers its key: as collectord's
    // and registryd's identity (ferry + ferry-keys), view kept.
    void registerKey(const std::string& node, const std::string& key)
    {
        const std::string db = m_state + "/master.db";
        ASSERT_EQ(runAs(m_collectord,
                        [&] {
                            RegistryStore store(db);
                            store.keepAuthorizedKeysView(authorizedKeysViewPath(db));
                            store.recordKey(node, key, "push", "127.0.0.1", 22, nowMs());
                            return 0;
                        }),
                  0);
    }

    // master.db and its WAL, read as metricsd's user: readable, and no
    // byte run of them is the key (not even a stale copy in free space).
    void expectNoKeyReadableIn(const std::string& masterDb, const std::string& key)
    {
        for (const auto& f : {masterDb, masterDb + "-wal"}) {
            if (!std::filesystem::exists(f))
                continue;
            const auto r = catAs(kMetricsd, f);
            ASSERT_EQ(r.exitCode, 0) << f << ": " << r.err;
            EXPECT_EQ(r.out.find(key), std::string::npos) << f << " holds the node key";
        }
    }

    TempDir m_root;
    std::string m_state, m_keys, m_view;
    Identity m_collectord{};
};

TEST_F(AMasterWithNodeKeysApart, KeepsTheKeysFromMetricsdRemoteWriteAndTheHelper)
{
    const std::string secret = generateSecret();
    enrol("node-a", secret);
    const std::string keysDb = m_keys + "/node-keys.db", masterDb = m_state + "/master.db";
    ASSERT_TRUE(std::filesystem::exists(keysDb));

    // The control: the daemons that check proofs read the key.
    const auto control = catAs(kCollectord, keysDb);
    ASSERT_EQ(control.exitCode, 0) << control.err;
    EXPECT_NE(control.out.find(secret), std::string::npos)
        << "the key is not in node-keys.db: the attack below has no target";

    // metricsd's and remote-write's user: ferry without ferry-keys.
    for (const auto& f : {keysDb, keysDb + "-wal", std::string(m_keys)}) {
        const auto r = catAs(kMetricsd, f);
        EXPECT_TRUE(refused(r)) << "metricsd's user read " << f << " (exit " << r.exitCode << ")";
    }
    // master.db, which it does read, holds no key, not even in free space.
    expectNoKeyReadableIn(masterDb, secret);
    // Nor does any query on it: the column is blank.
    {
        Database file(masterDb, true);
        Statement s(file, "SELECT COUNT(*) FROM nodes WHERE secret <> ''");
        ASSERT_TRUE(s.step());
        EXPECT_EQ(s.int64(0), 0);
    }

    // The helper's user reads neither file.
    EXPECT_TRUE(refused(catAs(kHelper, keysDb)));
    EXPECT_TRUE(refused(catAs(kHelper, masterDb)));
}

TEST_F(AMasterWithNodeKeysApart, MovesTheKeysOfAVersion6MasterDbOutAndLeavesNoCopyBehind)
{
    // A master.db as the release before this one leaves it: version 6, the
    // key in nodes.secret, and every update of the node's row (each push
    // updates last_seen) leaving a stale copy of the row in free space.
    const std::string secret = generateSecret();
    const std::string masterDb = m_state + "/master.db";
    {
        TempDir scratch;
        ::setenv("FERRY_KEYS_DIR", (scratch / "keys").c_str(), 1);
        MasterStore fresh(masterDb);
        ::unsetenv("FERRY_KEYS_DIR");
    }
    {
        Database file(masterDb);
        file.exec("INSERT INTO nodes (name, secret, state, public_key) VALUES ('node-a', '" + secret +
                  "', 'accepted', 'ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa')");
        for (int i = 0; i < 50; ++i)
            file.exec("UPDATE nodes SET last_seen = " + std::to_string(i) + ", records_stored = records_stored + 1");
        file.exec("PRAGMA wal_checkpoint(TRUNCATE)");
        for (int i = 0; i < 20; ++i)
            file.exec("UPDATE nodes SET last_seen = " + std::to_string(100 + i));
        file.exec("PRAGMA user_version = 6");
    }
    must({"chown", "-R", "ferry:ferry", m_state});
    // On that file, metricsd's user reads the key: the attack of today.
    const auto before = catAs(kMetricsd, masterDb);
    ASSERT_EQ(before.exitCode, 0) << before.err;
    EXPECT_NE(before.out.find(secret), std::string::npos) << "a version 6 file should hold the key";

    // The first opener with the keys migrates in place (here ferryctl).
    const auto r = ferryctl({"--json", "master", "nodes"});
    ASSERT_EQ(r.exitCode, 0) << r.err;
    EXPECT_NE(r.out.find("\"has_secret\": true"), std::string::npos) << r.out;
    {
        Database file(masterDb, true);
        Statement v(file, "PRAGMA user_version");
        ASSERT_TRUE(v.step());
        EXPECT_EQ(v.int64(0), schema::kMasterSchemaVersion);
    }
    expectNoKeyReadableIn(masterDb, secret);
    EXPECT_TRUE(refused(catAs(kMetricsd, m_keys + "/node-keys.db")));
    // The key is where the daemons look for it.
    const auto keys = catAs(kCollectord, m_keys + "/node-keys.db");
    const auto wal = catAs(kCollectord, m_keys + "/node-keys.db-wal");
    EXPECT_TRUE(keys.out.find(secret) != std::string::npos || wal.out.find(secret) != std::string::npos);
    ASSERT_EQ(runAs(m_collectord,
                    [&] {
                        MasterStore store(masterDb);
                        return store.nodeSecret("node-a") == secret ? 0 : 1;
                    }),
              0);
}

TEST_F(AMasterWithNodeKeysApart, LetsNoOtherProcessOfUserFerryLookIntoADaemonHoldingTheKeys)
{
    // The group guards the path; a daemon that holds node-keys.db open
    // would still hand it to any process of its user through
    // /proc/PID/fd/N (and its memory through /proc/PID/mem) unless it is
    // non-dumpable. registryd as its unit runs it: ferry + ferry-keys.
    enrol("node-a", generateSecret());
    TestBus bus;
    const auto socket = bus.address().substr(std::string("unix:path=").size());
    ::chmod(std::filesystem::path(socket).parent_path().c_str(), 0755);
    ensureKeyPair(m_root / "host_key");
    ::chmod((m_root / "host_key.pub").c_str(), 0644);
    Registryd registryd(m_state, m_root / "host_key.pub", freePort(), m_root / "registryd.log", {"--idle-timeout", "0"},
                        {"/usr/bin/setpriv", "--reuid=ferry", "--regid=ferry", "--groups=ferry-keys"});
    ASSERT_TRUE(waitUntil([&] { return busNameOwned("org.ferry.Registry1"); })) << registryd.log();
    const std::string fdDir = "/proc/" + std::to_string(registryd.process().pid()) + "/fd";
    std::string keysFd;
    for (const auto& e : std::filesystem::directory_iterator(fdDir)) {
        std::error_code ec;
        if (std::filesystem::read_symlink(e.path(), ec).string().find("node-keys.db") != std::string::npos)
            keysFd = e.path();
    }
    ASSERT_FALSE(keysFd.empty()) << "registryd does not hold node-keys.db open: the attack has no target";
    const auto r = catAs(kMetricsd, keysFd);
    EXPECT_TRUE(refused(r)) << "metricsd's user read the keys through " << keysFd << " (exit " << r.exitCode << ", "
                            << r.out.size() << " bytes)";
    EXPECT_TRUE(refused(catAs(kMetricsd, "/proc/" + std::to_string(registryd.process().pid()) + "/environ")));
}

class TheAuthorizedKeysHelper : public AMasterWithNodeKeysApart {
protected:
    void SetUp() override
    {
        AMasterWithNodeKeysApart::SetUp();
        if (IsSkipped())
            return;
        m_user = tunnelUser();
        ensureUser(m_user, "/usr/sbin/nologin");
        m_helperCopy = std::make_unique<RootOwnedCopy>(buildPath("services/authorized-keys/ferry-authorized-keys"));
        SshdOptions so;
        // The shipped drop-in as it is, AuthorizedKeysCommandUser included.
        so.tail = shippedMasterDropIn(false, m_helperCopy->path() + " --state-dir " + m_state);
        m_sshd = std::make_unique<TestSshd>(so);
        m_nodeKey = m_root / "node_key";
        ensureKeyPair(m_nodeKey);
        m_known = m_root / "known_hosts";
        writeFile(m_known, m_sshd->knownHostsLine() + "\n", 0600);
    }

    // Whether sshd lets the node's key in as the tunnel user.
    bool logsIn()
    {
        SshOptions o;
        o.privateKeyFile = m_nodeKey;
        o.knownHostsFile = m_known;
        o.connectTimeout = std::chrono::seconds(10);
        o.ioTimeout = std::chrono::seconds(10);
        try {
            SshSession session({"127.0.0.1", static_cast<std::uint16_t>(m_sshd->port()), m_user}, o);
            return true;
        } catch (const AuthError&) {
            return false;
        }
    }

    std::string m_user, m_nodeKey, m_known;
    std::unique_ptr<RootOwnedCopy> m_helperCopy;
    std::unique_ptr<TestSshd> m_sshd;
};

TEST_F(TheAuthorizedKeysHelper, AnswersSshdFromTheViewAloneThroughAcceptDeclineRevokeAndReEnrolment)
{
    const std::string key = publicKeyLine(m_nodeKey);
    enrol("node-a", generateSecret());
    EXPECT_FALSE(logsIn()) << "no key registered yet\n" << m_sshd->log();
    registerKey("node-a", key);
    // The helper's user cannot open master.db or the keys: whatever it
    // answers comes from the view.
    EXPECT_TRUE(refused(catAs(kHelper, m_state + "/master.db")));
    EXPECT_TRUE(refused(catAs(kHelper, m_keys + "/node-keys.db")));
    EXPECT_TRUE(logsIn()) << m_sshd->log();

    auto ok = [&](const std::vector<std::string>& args) {
        const auto r = ferryctl(args);
        EXPECT_EQ(r.exitCode, 0) << r.err;
    };
    ok({"master", "revoke", "node-a", "stolen"});
    EXPECT_FALSE(logsIn()) << "a revoked node's key still logs in";
    ok({"master", "accept", "node-a"});
    EXPECT_TRUE(logsIn()) << "accepting again lets the key in\n" << m_sshd->log();

    // Re-enrolment with a new secret (issue 12, item 9): the old key stops.
    enrol("node-a", generateSecret());
    EXPECT_FALSE(logsIn()) << "the key from before the new secret still logs in";
    registerKey("node-a", key);
    EXPECT_TRUE(logsIn()) << m_sshd->log();

    ok({"master", "decline", "node-a"});
    EXPECT_FALSE(logsIn()) << "a declined node's key still logs in";
}

} // namespace
} // namespace ferry::test
