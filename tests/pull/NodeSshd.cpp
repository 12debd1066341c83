#include "NodeSshd.h"

#include <poll.h>
#include <pwd.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <cstring>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <stdexcept>

#include "ferry/Crypto.h"
#include "ferry/NodeConfig.h"

namespace pulltest {

using namespace ferry::test;
namespace fs = std::filesystem;

namespace {

constexpr const char* kUserPrefix = "ferrypull";

void must(const RunResult& r, const std::string& what)
{
    if (r.exitCode != 0)
        throw std::runtime_error(what + " failed (" + std::to_string(r.exitCode) + "): " + r.err + r.out);
}

std::string trim(std::string s)
{
    while (!s.empty() && (s.back() == '\n' || s.back() == ' '))
        s.pop_back();
    return s;
}

} // namespace

std::vector<pid_t> pidsOfUser(const std::string& user)
{
    std::vector<pid_t> out;
    const passwd* p = ::getpwnam(user.c_str());
    if (p == nullptr)
        return out;
    const uid_t uid = p->pw_uid;
    for (const auto& entry : fs::directory_iterator("/proc")) {
        const std::string name = entry.path().filename();
        if (name.find_first_not_of("0123456789") != std::string::npos)
            continue;
        struct stat st{};
        if (::stat(entry.path().c_str(), &st) == 0 && st.st_uid == uid)
            out.push_back(static_cast<pid_t>(std::stol(name)));
    }
    return out;
}

std::string JournalEntry::message() const
{
    const auto it = fields.find("MESSAGE");
    return it == fields.end() ? std::string() : it->second;
}

void removeStaleTestUsers()
{
    std::vector<std::string> stale;
    ::setpwent();
    while (const passwd* p = ::getpwent()) {
        const std::string name = p->pw_name;
        if (name.rfind(kUserPrefix, 0) != 0)
            continue;
        std::string pid = name.substr(std::strlen(kUserPrefix));
        pid = pid.substr(0, pid.find_first_not_of("0123456789"));
        if (!pid.empty() && !fs::exists("/proc/" + pid))
            stale.push_back(name);
    }
    ::endpwent();
    for (const auto& name : stale)
        run({"/usr/sbin/userdel", name});
}

NodeSshd::NodeSshd() : NodeSshd(Options{}) {}

NodeSshd::NodeSshd(Options options) : m_options(std::move(options))
{
    m_user = kUserPrefix + std::to_string(::getpid()) + m_options.userSuffix;
    // The shell reads the node's name from the system's ferry.yml (or the
    // host name), exactly as this does.
    m_nodeName = ferry::loadNodeConfig(ferry::Paths{}).nodeName;
    if (!m_options.hostName.empty()) {
        const auto fromFile = ferry::loadNodeConfig(ferry::Paths{});
        if (fromFile.nodeName != ferry::loadNodeConfig(ferry::Paths{"/nonexistent"}).nodeName)
            throw std::runtime_error("/etc/ferry/ferry.yml sets a node name; a per-node host name would not apply");
        m_nodeName = m_options.hostName;
    }
    m_secret = ferry::generateSecret();
    for (const char* d : {"home", "home/.ssh", "client", "etc", "run", "run/systemd", "run/systemd/journal", "run/dbus",
                          "trap"})
        fs::create_directories(m_dir / d);
    ::chmod((m_dir / "trap").c_str(), 01777);
    try {
        createUser();
        start();
    } catch (...) {
        removeUser();
        throw;
    }
}

NodeSshd::~NodeSshd()
{
    m_sshd.reset();
    // Connections sshd forked still run as the user; end them (by pid)
    // before userdel.
    for (pid_t pid : pidsOfUser(m_user))
        ::kill(pid, SIGKILL);
    m_stopJournal = true;
    if (m_journalThread.joinable())
        m_journalThread.join();
    if (m_journalFd >= 0)
        ::close(m_journalFd);
    removeUser();
}

void NodeSshd::createUser()
{
    removeStaleTestUsers();
    const std::string& shell = buildPathForAnyUser("services/login-shell/ferry-login");
    // -p '*': with UsePAM no, sshd refuses key logins for a locked ('!') account.
    RunResult r;
    for (int attempt = 0; attempt < 20; ++attempt) {
        r = run({"/usr/sbin/useradd", "--system", "-M", "-d", home(), "-s", shell, "-p", "*", m_user});
        if (r.exitCode == 0)
            break;
        // Another test holds the passwd lock.
        waitUntil([] { return false; }, std::chrono::milliseconds(100));
    }
    must(r, "useradd " + m_user);

    ferry::test::writeFile(home() + "/secret", m_secret + "\n", 0600);
    // The host's own ed25519 host key: ferry-login checks the session
    // binding against /etc/ssh (the host's sshd), as it does in production.
    must(run({"/bin/cp", "/etc/ssh/ssh_host_ed25519_key", m_dir / "etc/host_ed25519"}), "copy the host key");
    must(run({"/bin/cp", "/etc/ssh/ssh_host_ed25519_key.pub", m_dir / "etc/host_ed25519.pub"}), "copy the host key");
    must(run({"/usr/bin/ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", "master-plain", "-f", plainKey()}), "ssh-keygen plain");
    if (m_options.masterKey.empty()) {
        must(run({"/usr/bin/ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", "master-restricted", "-f", restrictedKey()}),
             "ssh-keygen restricted");
    } else {
        fs::copy_file(m_options.masterKey, restrictedKey());
        fs::copy_file(m_options.masterKey + ".pub", restrictedKey() + ".pub");
    }

    // The restricted key goes through the shipped template, with the forced
    // command pointing at the built shell and from= at loopback.
    std::string tmpl = readFile(sourcePath("services/login-shell/authorized_keys.in"));
    std::string line;
    std::istringstream in(tmpl);
    std::string rendered;
    while (std::getline(in, line)) {
        if (line.empty() || line[0] == '#')
            continue;
        auto replace = [&line](const std::string& from, const std::string& to) {
            const auto pos = line.find(from);
            if (pos == std::string::npos)
                throw std::runtime_error("authorized_keys.in lacks " + from);
            line.replace(pos, from.size(), to);
        };
        replace("@FERRY_LOGIN@", buildPathForAnyUser("services/login-shell/ferry-login"));
        replace("@MASTER_ADDRESSES@", "127.0.0.1,::1");
        replace("@MASTER_KEY@", trim(readFile(restrictedKey() + ".pub")));
        rendered += line + "\n";
    }
    if (rendered.empty())
        throw std::runtime_error("authorized_keys.in has no key line");
    ferry::test::writeFile(home() + "/.ssh/authorized_keys", trim(readFile(plainKey() + ".pub")) + "\n" + rendered, 0600);
    chownHome();

    if (m_options.shellUser) {
        fs::create_directories(shellHome() + "/.ssh");
        RunResult u;
        for (int attempt = 0; attempt < 20; ++attempt) {
            u = run({"/usr/sbin/useradd", "--system", "-M", "-d", shellHome(), "-s", "/bin/sh", "-p", "*", shellUser()});
            if (u.exitCode == 0)
                break;
            waitUntil([] { return false; }, std::chrono::milliseconds(100));
        }
        must(u, "useradd " + shellUser());
        ferry::test::writeFile(shellHome() + "/.ssh/authorized_keys", trim(readFile(plainKey() + ".pub")) + "\n", 0600);
        must(run({"/bin/chown", "-R", shellUser() + ":", shellHome()}), "chown shell home");
    }
}

void NodeSshd::chownHome() const
{
    must(run({"/bin/chown", "-R", m_user + ":", home()}), "chown home");
}

void NodeSshd::removeUser()
{
    run({"/usr/sbin/userdel", m_user});
    if (m_options.shellUser) {
        for (pid_t pid : pidsOfUser(shellUser()))
            ::kill(pid, SIGKILL);
        run({"/usr/sbin/userdel", shellUser()});
    }
}

void NodeSshd::start()
{
    // The journal socket the shell will write to, readable by us.
    m_journalFd = ::socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
    sockaddr_un sa{};
    sa.sun_family = AF_UNIX;
    const std::string sockPath = m_dir / "run/systemd/journal/socket";
    std::strncpy(sa.sun_path, sockPath.c_str(), sizeof sa.sun_path - 1);
    if (::bind(m_journalFd, reinterpret_cast<sockaddr*>(&sa), sizeof sa) != 0)
        throw std::runtime_error("bind journal socket " + sockPath + ": " + std::strerror(errno));
    ::chmod(sockPath.c_str(), 0666);
    const int big = 4 * 1024 * 1024;
    ::setsockopt(m_journalFd, SOL_SOCKET, SO_RCVBUF, &big, sizeof big);
    m_journalThread = std::thread([this] { readJournal(); });
    if (!m_options.busAddress.empty()) {
        const std::string prefix = "unix:path=";
        if (m_options.busAddress.rfind(prefix, 0) != 0)
            throw std::runtime_error("bus address is not a unix path: " + m_options.busAddress);
        fs::create_symlink(m_options.busAddress.substr(prefix.size()), m_dir / "run/dbus/system_bus_socket");
    }

    for (int attempt = 1;; ++attempt) {
        m_port = static_cast<std::uint16_t>(freePort());
        std::string config = "Port " + std::to_string(m_port) +
                             "\n"
                             "ListenAddress 127.0.0.1\n"
                             "HostKey " +
                             (m_dir / "etc/host_ed25519") +
                             "\n"
                             "PidFile none\n"
                             "AuthorizedKeysFile .ssh/authorized_keys\n"
                             "StrictModes no\n"
                             "UsePAM no\n"
                             "PasswordAuthentication no\n"
                             "KbdInteractiveAuthentication no\n"
                             "PubkeyAuthentication yes\n"
                             "AllowUsers " +
                             m_user + (m_options.shellUser ? " " + shellUser() : std::string()) +
                             "\n"
                             "Subsystem sftp /usr/lib/openssh/sftp-server\n"
                             "LogLevel VERBOSE\n"
                             "MaxStartups 200\n"
                             "MaxSessions 64\n";
        for (const auto& l : m_options.extraConfig)
            config += l + "\n";
        ferry::test::writeFile(m_dir / "etc/sshd_config", config, 0600);

        std::string sshd = "/usr/sbin/sshd -D -e -f " + (m_dir / "etc/sshd_config");
        if (m_options.dataLimit > 0)
            sshd = "/usr/bin/prlimit --data=" + std::to_string(m_options.dataLimit) + " -- " + sshd;
        const std::string setHost =
            m_options.hostName.empty() ? std::string() : "hostname " + m_options.hostName + " && ";
        const std::string script = setHost + "mount --bind " + (m_dir / "run") +
                                   " /run && mkdir -p /run/sshd && chmod 0755 /run/sshd && exec " + sshd;
        std::vector<std::string> argv{"/usr/bin/unshare", "--mount", "--propagation", "private"};
        if (!m_options.hostName.empty())
            argv.push_back("--uts");
        argv.insert(argv.end(), {"/bin/sh", "-c", script});
        const std::size_t logBefore = sshdLog().size();
        m_sshd.emplace(argv, std::map<std::string, std::string>{}, m_dir / "sshd.log");
        // Up once it says so: the port may be another process's, which
        // binds freePort's port before sshd does; then sshd exits, and it
        // tries again on the next port of this process.
        const bool up = waitUntil(
            [&] { return !m_sshd->running() || sshdLog().find("Server listening", logBefore) != std::string::npos; },
            std::chrono::seconds(10));
        if (up && m_sshd->running())
            break;
        if (attempt == 3 || sshdLog().find("Address already in use", logBefore) == std::string::npos)
            throw std::runtime_error("sshd did not start: " + sshdLog());
    }

    std::string hostKey = trim(readFile(m_dir / "etc/host_ed25519.pub"));
    hostKey = hostKey.substr(0, hostKey.rfind(' '));
    ferry::test::writeFile(knownHosts(), "[127.0.0.1]:" + std::to_string(m_port) + " " + hostKey + "\n", 0644);
}

std::vector<std::string> NodeSshd::sshArgv(const std::string& key, const std::vector<std::string>& options,
                                           const std::vector<std::string>& command) const
{
    return sshArgvAs(m_user, key, options, command);
}

std::vector<std::string> NodeSshd::sshArgvAs(const std::string& user, const std::string& key,
                                             const std::vector<std::string>& options,
                                             const std::vector<std::string>& command) const
{
    std::vector<std::string> argv{"/usr/bin/ssh",
                                  "-F", "/dev/null",
                                  "-i", key,
                                  "-p", std::to_string(m_port),
                                  "-o", "IdentitiesOnly=yes",
                                  "-o", "BatchMode=yes",
                                  "-o", "StrictHostKeyChecking=yes",
                                  "-o", "UserKnownHostsFile=" + knownHosts(),
                                  "-o", "ConnectTimeout=10",
                                  "-o", "LogLevel=ERROR"};
    argv.insert(argv.end(), options.begin(), options.end());
    argv.push_back(user + "@127.0.0.1");
    argv.insert(argv.end(), command.begin(), command.end());
    return argv;
}

std::vector<JournalEntry> NodeSshd::journal()
{
    std::lock_guard lock(m_journalMutex);
    return m_journal;
}

void NodeSshd::readJournal()
{
    std::string buf(1 << 20, '\0');
    while (!m_stopJournal) {
        pollfd p{m_journalFd, POLLIN, 0};
        if (::poll(&p, 1, 50) <= 0)
            continue;
        const ssize_t n = ::recv(m_journalFd, buf.data(), buf.size(), MSG_DONTWAIT);
        if (n <= 0)
            continue;
        // Native journal protocol: "KEY=value\n", or "KEY\n" + le64 size +
        // value + "\n" for values with newlines.
        JournalEntry e;
        std::string_view data(buf.data(), static_cast<std::size_t>(n));
        while (!data.empty()) {
            const auto nl = data.find('\n');
            const auto eq = data.find('=');
            if (eq != std::string_view::npos && (nl == std::string_view::npos || eq < nl)) {
                const auto end = nl == std::string_view::npos ? data.size() : nl;
                e.fields[std::string(data.substr(0, eq))] = std::string(data.substr(eq + 1, end - eq - 1));
                data.remove_prefix(std::min(data.size(), end + 1));
            } else if (nl != std::string_view::npos && data.size() >= nl + 9) {
                std::uint64_t size = 0;
                std::memcpy(&size, data.data() + nl + 1, 8);
                const std::string key(data.substr(0, nl));
                data.remove_prefix(nl + 9);
                size = std::min<std::uint64_t>(size, data.size());
                e.fields[key] = std::string(data.substr(0, size));
                data.remove_prefix(std::min<std::size_t>(data.size(), size + 1));
            } else {
                break;
            }
        }
        std::lock_guard lock(m_journalMutex);
        m_journal.push_back(std::move(e));
    }
}

std::string NodeSshd::sshdLog() const
{
    return readFile(m_dir / "sshd.log");
}

} // namespace pulltest
