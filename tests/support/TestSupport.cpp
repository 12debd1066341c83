#include "support/TestSupport.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <mutex>
#include <sstream>
#include <stdexcept>
#include <thread>

extern char** environ;

namespace ferry::test {

namespace fs = std::filesystem;

TempDir::TempDir()
{
    const char* base = std::getenv("TMPDIR");
    std::string tmpl = std::string(base && *base ? base : "/tmp") + "/ferry-test-XXXXXX";
    if (::mkdtemp(tmpl.data()) == nullptr)
        throw std::runtime_error("mkdtemp failed: " + std::string(std::strerror(errno)));
    ::chmod(tmpl.c_str(), 0755);
    m_path = tmpl;
}

TempDir::~TempDir()
{
    std::error_code ec;
    fs::remove_all(m_path, ec);
    // A master.db placed directly in the directory has its node keys and the
    // helper's view beside it (MasterStore.h, AuthorizedKeysView.h).
    fs::remove_all(m_path + "-keys", ec);
    fs::remove_all(m_path + "-authkeys", ec);
}

void writeFile(const std::string& path, const std::string& content, mode_t mode)
{
    fs::create_directories(fs::path(path).parent_path());
    {
        std::ofstream out(path, std::ios::binary | std::ios::trunc);
        if (!out)
            throw std::runtime_error("cannot write " + path);
        out << content;
    }
    ::chmod(path.c_str(), mode);
}

std::string readFile(const std::string& path)
{
    std::ifstream in(path, std::ios::binary);
    std::stringstream ss;
    ss << in.rdbuf();
    return ss.str();
}

namespace {
std::vector<std::string> mergedEnv(const std::map<std::string, std::string>& extra)
{
    std::map<std::string, std::string> all;
    for (char** e = environ; *e != nullptr; ++e) {
        std::string s = *e;
        const auto eq = s.find('=');
        if (eq != std::string::npos)
            all[s.substr(0, eq)] = s.substr(eq + 1);
    }
    for (const auto& [k, v] : extra)
        all[k] = v;
    std::vector<std::string> out;
    for (const auto& [k, v] : all)
        out.push_back(k + "=" + v);
    return out;
}

std::vector<char*> cstrs(std::vector<std::string>& v)
{
    std::vector<char*> out;
    for (auto& s : v)
        out.push_back(s.data());
    out.push_back(nullptr);
    return out;
}
} // namespace

Process::Process(std::vector<std::string> argv, std::map<std::string, std::string> env, std::string logFile)
{
    auto envStrings = mergedEnv(env);
    auto envp = cstrs(envStrings);
    auto args = cstrs(argv);
    m_pid = ::fork();
    if (m_pid < 0)
        throw std::runtime_error("fork failed");
    if (m_pid == 0) {
        // Our test binaries may block signals (EventLoop does); children must not inherit that.
        sigset_t none;
        sigemptyset(&none);
        sigprocmask(SIG_SETMASK, &none, nullptr);
        ::setpgid(0, 0);
        if (!logFile.empty()) {
            const int fd = ::open(logFile.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
            if (fd >= 0) {
                ::dup2(fd, 1);
                ::dup2(fd, 2);
            }
        }
        const int devnull = ::open("/dev/null", O_RDONLY);
        if (devnull >= 0)
            ::dup2(devnull, 0);
        ::execve(args[0], args.data(), envp.data());
        ::_exit(127);
    }
}

Process::Process(Process&& other) noexcept : m_pid(other.m_pid), m_status(other.m_status)
{
    other.m_pid = -1;
}

Process::~Process()
{
    if (m_pid <= 0 || m_status)
        return;
    ::kill(m_pid, SIGTERM);
    if (!wait(std::chrono::seconds(5)))
        kill();
}

bool Process::running()
{
    if (m_status)
        return false;
    int st = 0;
    const pid_t r = ::waitpid(m_pid, &st, WNOHANG);
    if (r == m_pid) {
        m_status = st;
        return false;
    }
    return true;
}

std::optional<int> Process::wait(std::chrono::milliseconds timeout)
{
    waitUntil([this] { return !running(); }, timeout, std::chrono::milliseconds(10));
    return m_status;
}

void Process::signal(int sig)
{
    if (m_pid > 0 && !m_status)
        ::kill(m_pid, sig);
}

void Process::kill()
{
    if (m_pid <= 0 || m_status)
        return;
    ::kill(m_pid, SIGKILL);
    int st = 0;
    ::waitpid(m_pid, &st, 0);
    m_status = st;
}

RunResult run(const std::vector<std::string>& argv, const std::map<std::string, std::string>& env,
              const std::string& input, std::chrono::milliseconds timeout)
{
    int inPipe[2], outPipe[2], errPipe[2];
    if (::pipe2(inPipe, O_CLOEXEC) != 0 || ::pipe2(outPipe, O_CLOEXEC) != 0 || ::pipe2(errPipe, O_CLOEXEC) != 0)
        throw std::runtime_error("pipe failed");
    auto envStrings = mergedEnv(env);
    auto envp = cstrs(envStrings);
    auto args = std::vector<std::string>(argv);
    auto argp = cstrs(args);
    const pid_t pid = ::fork();
    if (pid == 0) {
        sigset_t none;
        sigemptyset(&none);
        sigprocmask(SIG_SETMASK, &none, nullptr);
        ::dup2(inPipe[0], 0);
        ::dup2(outPipe[1], 1);
        ::dup2(errPipe[1], 2);
        ::execvpe(argp[0], argp.data(), envp.data());
        ::_exit(127);
    }
    ::close(inPipe[0]);
    ::close(outPipe[1]);
    ::close(errPipe[1]);
    ::signal(SIGPIPE, SIG_IGN);
    if (!input.empty()) {
        [[maybe_unused]] auto n = ::write(inPipe[1], input.data(), input.size());
    }
    ::close(inPipe[1]);
    RunResult result;
    const auto deadline = std::chrono::steady_clock::now() + timeout;
    bool outOpen = true, errOpen = true;
    while (outOpen || errOpen) {
        const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - std::chrono::steady_clock::now()).count();
        if (left <= 0) {
            ::kill(pid, SIGKILL);
            break;
        }
        pollfd fds[2] = {{outOpen ? outPipe[0] : -1, POLLIN, 0}, {errOpen ? errPipe[0] : -1, POLLIN, 0}};
        if (::poll(fds, 2, static_cast<int>(left)) < 0 && errno != EINTR)
            break;
        char buf[65536];
        for (int i = 0; i < 2; ++i) {
            if (fds[i].revents & (POLLIN | POLLHUP | POLLERR)) {
                const ssize_t n = ::read(fds[i].fd, buf, sizeof buf);
                if (n <= 0)
                    (i == 0 ? outOpen : errOpen) = false;
                else
                    (i == 0 ? result.out : result.err).append(buf, static_cast<std::size_t>(n));
            }
        }
    }
    ::close(outPipe[0]);
    ::close(errPipe[0]);
    int st = 0;
    ::waitpid(pid, &st, 0);
    result.exitCode = WIFEXITED(st) ? WEXITSTATUS(st) : -1;
    return result;
}

bool waitUntil(const std::function<bool()>& pred, std::chrono::milliseconds timeout, std::chrono::milliseconds interval)
{
    const auto deadline = std::chrono::steady_clock::now() + timeout;
    for (;;) {
        if (pred())
            return true;
        if (std::chrono::steady_clock::now() >= deadline)
            return false;
        std::this_thread::sleep_for(interval);
    }
}

namespace {
// freePort's ports lie below the kernel's ephemeral range (32768-60999 by
// default), so no port-0 bind or outgoing connection is ever given one of
// them, and each test process draws from its own block, chosen by its pid:
// two tests running at once never pick the same port unless their pids
// fall on the same block. A process takes the ports of its block in turn.
constexpr int kFirstTestPort = 20000;
constexpr int kTestPortBlock = 64;
constexpr int kTestPortBlocks = (32768 - kFirstTestPort) / kTestPortBlock;

// True when nothing holds port on addr now.
bool canBind(sockaddr_in addr, int port)
{
    addr.sin_port = htons(static_cast<std::uint16_t>(port));
    const int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0)
        throw std::runtime_error(std::string("Failed to pick a free port: socket: ") + std::strerror(errno));
    const bool free = ::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0;
    ::close(fd);
    return free;
}
} // namespace

int freePort(const std::string& address)
{
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    if (::inet_pton(AF_INET, address.c_str(), &addr.sin_addr) != 1)
        throw std::runtime_error("Failed to pick a free port: " + address + " is not an IPv4 address");
    static std::mutex lock;
    static int next = 0;
    const std::lock_guard<std::mutex> guard(lock);
    const int first = kFirstTestPort + static_cast<int>(::getpid() % kTestPortBlocks) * kTestPortBlock;
    for (int tried = 0; tried < kTestPortBlock; ++tried) {
        const int port = first + next;
        next = (next + 1) % kTestPortBlock;
        if (canBind(addr, port))
            return port;
    }
    throw std::runtime_error("Failed to pick a free port on " + address + ": every port of this process's block " +
                             std::to_string(first) + "-" + std::to_string(first + kTestPortBlock - 1) + " is taken");
}

bool isRoot()
{
    return ::geteuid() == 0;
}

TestBus::TestBus(std::vector<std::string> serviceDirs)
{
    const std::string socket = m_dir / "bus";
    std::string dirs;
    for (const auto& d : serviceDirs)
        dirs += "  <servicedir>" + d + "</servicedir>\n";
    // A permissive private bus: the policy files are tested separately
    // (tests/unit/PolicyFiles) against dbus-daemon's own parser.
    writeFile(m_dir / "bus.conf",
              "<!DOCTYPE busconfig PUBLIC \"-//freedesktop//DTD D-Bus Bus Configuration 1.0//EN\"\n"
              " \"http://www.freedesktop.org/standards/dbus/1.0/busconfig.dtd\">\n"
              "<busconfig>\n  <type>system</type>\n  <listen>unix:path=" + socket + "</listen>\n"
              "  <auth>EXTERNAL</auth>\n" + dirs +
              "  <policy context=\"default\">\n    <allow user=\"*\"/>\n    <allow own=\"*\"/>\n"
              "    <allow send_destination=\"*\" eavesdrop=\"true\"/>\n    <allow receive_sender=\"*\"/>\n"
              "  </policy>\n  <limit name=\"service_start_timeout\">10000</limit>\n</busconfig>\n");
    m_address = "unix:path=" + socket;
    m_daemon.emplace(std::vector<std::string>{"/usr/bin/dbus-daemon", "--nofork", "--nopidfile",
                                              "--config-file=" + (m_dir / "bus.conf")},
                     // Activated services inherit the daemon's environment:
                     // they must find this bus as their system bus.
                     std::map<std::string, std::string>{{"DBUS_SYSTEM_BUS_ADDRESS", m_address}}, m_dir / "dbus.log");
    // The socket file appears at bind(), before listen(): a client in that
    // window is refused (ECONNREFUSED). Ready is when a connect succeeds.
    const auto accepts = [&] {
        const int fd = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
        if (fd < 0)
            return false;
        sockaddr_un addr{};
        addr.sun_family = AF_UNIX;
        std::strncpy(addr.sun_path, socket.c_str(), sizeof addr.sun_path - 1);
        const bool ok = ::connect(fd, reinterpret_cast<const sockaddr*>(&addr), sizeof addr) == 0;
        ::close(fd);
        return ok;
    };
    if (!waitUntil(accepts, std::chrono::seconds(10)))
        throw std::runtime_error("private dbus-daemon did not start: " + readFile(m_dir / "dbus.log"));
    if (const char* prev = std::getenv("DBUS_SYSTEM_BUS_ADDRESS"))
        m_previous = prev;
    ::setenv("DBUS_SYSTEM_BUS_ADDRESS", m_address.c_str(), 1);
}

TestBus::~TestBus()
{
    if (m_previous)
        ::setenv("DBUS_SYSTEM_BUS_ADDRESS", m_previous->c_str(), 1);
    else
        ::unsetenv("DBUS_SYSTEM_BUS_ADDRESS");
}

std::string buildPath(const std::string& relative)
{
    return std::string(FERRY_BUILD_DIR) + "/" + relative;
}

std::string sourcePath(const std::string& relative)
{
    return std::string(FERRY_SOURCE_DIR) + "/" + relative;
}

std::string makeSharedTestDir(const std::string& prefix)
{
    const std::string parent = "/var/lib/ferry-tests";
    // Another test process may remove the empty parent between our mkdir
    // and mkdtemp (each removes it when done), so try again when it vanished.
    for (int attempt = 0;; ++attempt) {
        ::mkdir(parent.c_str(), 0755);
        ::chmod(parent.c_str(), 0755);
        std::string tmpl = parent + "/" + prefix + "XXXXXX";
        if (::mkdtemp(tmpl.data()) != nullptr) {
            ::chmod(tmpl.c_str(), 0755);
            return tmpl;
        }
        if (errno != ENOENT || attempt == 10)
            throw std::runtime_error("mkdtemp under " + parent + " failed: " + std::strerror(errno));
    }
}

namespace {

// Copies of built binaries for other users, removed at process exit. A
// crashed test leaves its directory behind; the next one removes it (the
// directory name carries the pid).
class AnyUserCopies {
public:
    ~AnyUserCopies()
    {
        if (m_dir.empty())
            return;
        std::error_code ec;
        fs::remove_all(m_dir, ec);
        ::rmdir("/var/lib/ferry-tests"); // only if no other test still uses it
    }

    const std::string& pathFor(const std::string& relative)
    {
        std::lock_guard lock(m_mutex);
        if (const auto it = m_paths.find(relative); it != m_paths.end())
            return it->second;
        if (m_dir.empty()) {
            removeStale();
            m_dir = makeSharedTestDir("bin-" + std::to_string(::getpid()) + "-");
        }
        // One subdirectory per binary keeps equal file names apart.
        const std::string dir = m_dir + "/" + std::to_string(m_paths.size());
        ::mkdir(dir.c_str(), 0755);
        const std::string source = buildPath(relative);
        const std::string copy = dir + "/" + fs::path(relative).filename().string();
        const auto r = run({"/usr/bin/install", "-o", "root", "-g", "root", "-m", "0755", source, copy});
        if (r.exitCode != 0)
            throw std::runtime_error("Failed to copy " + source + " to " + copy + ": " + r.err);
        return m_paths.emplace(relative, copy).first->second;
    }

private:
    static void removeStale()
    {
        std::error_code ec;
        for (const auto& entry : fs::directory_iterator("/var/lib/ferry-tests", ec)) {
            const std::string name = entry.path().filename();
            if (name.rfind("bin-", 0) != 0)
                continue;
            const std::string pid = name.substr(4, name.find('-', 4) - 4);
            if (!pid.empty() && pid.find_first_not_of("0123456789") == std::string::npos && !fs::exists("/proc/" + pid))
                fs::remove_all(entry.path(), ec);
        }
    }

    std::mutex m_mutex;
    std::string m_dir;
    std::map<std::string, std::string> m_paths;
};

} // namespace

const std::string& buildPathForAnyUser(const std::string& relative)
{
    static AnyUserCopies copies;
    if (!isRoot()) {
        static std::mutex mutex;
        static std::map<std::string, std::string> plain;
        std::lock_guard lock(mutex);
        return plain.emplace(relative, buildPath(relative)).first->second;
    }
    return copies.pathFor(relative);
}

} // namespace ferry::test
