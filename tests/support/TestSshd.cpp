#include "support/TestSshd.h"

#include <grp.h>
#include <pwd.h>
#include <sys/stat.h>
#include <unistd.h>

#include <csignal>
#include <filesystem>
#include <sstream>
#include <stdexcept>

namespace ferry::test {

TestSshd::TestSshd(SshdOptions options) : m_options(std::move(options))
{
    if (!isRoot())
        throw std::runtime_error("TestSshd needs root");
    m_port = freePort();
    const auto r = run({"ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", m_dir / "host_ed25519"});
    if (r.exitCode != 0)
        throw std::runtime_error("ssh-keygen failed: " + r.err);
    // Laid out as /etc/ssh is, for collectord's --sshd-host-keys.
    std::filesystem::create_directories(m_dir / "hostkeys");
    std::filesystem::copy_file(m_dir / "host_ed25519.pub", m_dir / "hostkeys/ssh_host_ed25519_key.pub");
    // Another process may bind freePort's port before sshd does: then sshd
    // exits, and it tries again on the next port of this process.
    for (int attempt = 1;; ++attempt) {
        writeConfig();
        const std::size_t logBefore = log().size();
        try {
            start();
            return;
        } catch (const std::runtime_error&) {
            if (attempt == 3 || log().find("Address already in use", logBefore) == std::string::npos)
                throw;
        }
        m_port = freePort();
    }
}

TestSshd::~TestSshd()
{
    stop();
}

void TestSshd::writeConfig()
{
    std::ostringstream c;
    c << "Port " << m_port << "\n"
      << "ListenAddress 127.0.0.1\n"
      << "HostKey " << (m_dir / "host_ed25519") << "\n"
      << "PidFile none\n"
      << "AuthorizedKeysFile " << (m_dir / "authorized_keys.%u") << "\n"
      << "StrictModes no\n"
      << "UsePAM no\n"
      << "PasswordAuthentication no\n"
      << "KbdInteractiveAuthentication no\n"
      << "LogLevel VERBOSE\n";
    // Tests open many connections at once; a config under test that sets
    // its own MaxStartups (the shipped drop-in does) keeps it, since sshd
    // takes the first value it reads.
    bool ownMaxStartups = m_options.tail.find("MaxStartups") != std::string::npos;
    for (const auto& l : m_options.globalLines)
        ownMaxStartups = ownMaxStartups || l.rfind("MaxStartups", 0) == 0;
    if (!ownMaxStartups)
        c << "MaxStartups 100:30:200\n";
    for (const auto& l : m_options.globalLines)
        c << l << "\n";
    std::string tail = m_options.tail;
    for (auto pos = tail.find("@DIR@"); pos != std::string::npos; pos = tail.find("@DIR@"))
        tail.replace(pos, 5, m_dir.path());
    c << tail << "\n";
    writeFile(m_dir / "sshd_config", c.str(), 0644);
}

void TestSshd::start()
{
    const std::size_t logBefore = log().size();
    const std::string script = "mount -t tmpfs tmpfs /run && mkdir -p /run/sshd && exec /usr/sbin/sshd -D -e -f " +
                               (m_dir / "sshd_config");
    m_process.emplace(std::vector<std::string>{"/usr/bin/unshare", "--mount", "--propagation", "private", "/bin/sh",
                                               "-c", script},
                      std::map<std::string, std::string>{}, m_dir / "sshd.log");
    const bool up = waitUntil(
        [&] {
            return !m_process->running() || log().find("Server listening", logBefore) != std::string::npos;
        },
        std::chrono::seconds(15));
    if (!up || !m_process->running())
        throw std::runtime_error("sshd did not start: " + log());
}

void TestSshd::stop()
{
    if (m_process) {
        m_process->signal(SIGTERM);
        if (!m_process->wait(std::chrono::seconds(5)))
            m_process->kill();
        m_process.reset();
    }
}

std::string TestSshd::hostKeyLine() const
{
    std::string line = readFile(m_dir / "host_ed25519.pub");
    const auto sp = line.find(' ', line.find(' ') + 1);
    return line.substr(0, sp);
}

std::string TestSshd::knownHostsLine() const
{
    return "[127.0.0.1]:" + std::to_string(m_port) + " " + hostKeyLine();
}

RootOwnedCopy::RootOwnedCopy(const std::string& program)
{
    m_dir = makeSharedTestDir("copy-");
    m_path = m_dir + "/" + program.substr(program.rfind('/') + 1);
    const auto r = run({"install", "-o", "root", "-g", "root", "-m", "0755", program, m_path});
    if (r.exitCode != 0)
        throw std::runtime_error("cannot copy " + program + ": " + r.err);
}

RootOwnedCopy::~RootOwnedCopy()
{
    ::unlink(m_path.c_str());
    ::rmdir(m_dir.c_str());
    ::rmdir("/var/lib/ferry-tests");  // only if no other test still uses it
}

void ensureUser(const std::string& name, const std::string& shell)
{
    if (::getpwnam(name.c_str()) == nullptr) {
        const auto r = run({"useradd", "--system", "--no-create-home", "--home-dir", "/nonexistent", "--shell", shell, name});
        if (r.exitCode != 0 && ::getpwnam(name.c_str()) == nullptr)
            throw std::runtime_error("useradd " + name + " failed: " + r.err);
    }
    run({"usermod", "-p", "*", name});
}

void ensureGroup(const std::string& name)
{
    if (::getgrnam(name.c_str()) != nullptr)
        return;
    const auto r = run({"groupadd", "--system", name});
    if (r.exitCode != 0 && ::getgrnam(name.c_str()) == nullptr)
        throw std::runtime_error("groupadd " + name + " failed: " + r.err);
}

void prepareMasterSideDirs(const std::string& stateDir, const std::string& owner)
{
    ensureUser("ferry-authkeys", "/usr/sbin/nologin");
    ensureGroup("ferry-keys");
    const std::string keys = stateDir + "-keys", view = stateDir + "-authkeys";
    std::filesystem::create_directories(keys);
    std::filesystem::create_directories(view);
    const auto ok = [](const RunResult& r, const std::string& what) {
        if (r.exitCode != 0)
            throw std::runtime_error(what + " failed: " + r.err);
    };
    ok(run({"chown", owner + ":ferry-keys", keys}), "chown " + keys);
    ok(run({"chmod", "2770", keys}), "chmod " + keys);
    ok(run({"chown", owner + ":ferry-authkeys", view}), "chown " + view);
    ok(run({"chmod", "2750", view}), "chmod " + view);
}

std::string shippedMasterDropIn(bool keysFile, const std::string& helperPath, const std::string& relaySocket)
{
    static const std::string kRelay = "/usr/libexec/ferry/ferry-tunnel-relay";
    std::istringstream in(readFile(sourcePath("units/sshd/ferry-master.conf")));
    std::ostringstream out;
    std::string line;
    while (std::getline(in, line)) {
        if (keysFile && line.find("AuthorizedKeysCommand") != std::string::npos)
            continue;
        if (keysFile && line.find("AuthorizedKeysFile") != std::string::npos) {
            out << "\tAuthorizedKeysFile @DIR@/authorized_keys.%u\n";
            continue;
        }
        const auto helper = line.find("/usr/libexec/ferry/ferry-authorized-keys");
        if (!helperPath.empty() && helper != std::string::npos)
            line.replace(helper, 40, helperPath);
        if (const auto relay = line.find(kRelay); relay != std::string::npos) {
            line.replace(relay, kRelay.size(), tunnelRelayPath());
            if (!relaySocket.empty())
                line += "\n\tSetEnv FERRY_RELAY_SOCKET=" + relaySocket;
        }
        out << line << "\n";
    }
    return out.str();
}

namespace {

// The relay at a path that outlives this test process: it is the tunnel
// user's login shell, which tests running at the same time share. Replaced
// by rename, so a login never sees it half-written.
std::string stableRelayCopy()
{
    const std::string dir = "/var/lib/ferry-test-shells";
    const std::string path = dir + "/ferry-tunnel-relay";
    ::mkdir(dir.c_str(), 0755);
    const std::string tmp = path + "." + std::to_string(::getpid());
    const auto r = run({"install", "-o", "root", "-g", "root", "-m", "0755",
                        buildPath("services/tunnel-relay/ferry-tunnel-relay"), tmp});
    if (r.exitCode != 0 || ::rename(tmp.c_str(), path.c_str()) != 0)
        throw std::runtime_error("cannot install the relay at " + path + ": " + r.err);
    return path;
}

} // namespace

std::string tunnelRelayPath()
{
    static const std::string path = stableRelayCopy();
    return path;
}

void ensureTunnelUser()
{
    const std::string relay = tunnelRelayPath();
    ensureUser("ferry-tunnel", relay);
    const auto r = run({"usermod", "-s", relay, "-d", "/", "ferry-tunnel"});
    if (r.exitCode != 0)
        throw std::runtime_error("usermod -s " + relay + " ferry-tunnel failed: " + r.err);
}

std::string tunnelKeyLine(const std::string& publicKeyLine)
{
    return "restrict " + publicKeyLine;
}

SharedDir::SharedDir(const std::string& prefix) : m_path(makeSharedTestDir(prefix))
{}

SharedDir::~SharedDir()
{
    std::error_code ec;
    std::filesystem::remove_all(m_path, ec);
    ::rmdir("/var/lib/ferry-tests"); // only if no other test still uses it
}

} // namespace ferry::test
