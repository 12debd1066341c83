#pragma once
// Shared pieces for Ferry's tests: temporary directories, child processes,
// deadline waits, and a private dbus-daemon. Everything here is real; the
// only thing a test substitutes is where files and buses live.

#include <chrono>
#include <functional>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include <sys/types.h>

namespace ferry::test {

// A fresh directory under $TMPDIR (default /tmp), removed with its contents.
class TempDir {
public:
    TempDir();
    ~TempDir();
    TempDir(const TempDir&) = delete;
    TempDir& operator=(const TempDir&) = delete;
    const std::string& path() const { return m_path; }
    std::string operator/(const std::string& leaf) const { return m_path + "/" + leaf; }

private:
    std::string m_path;
};

void writeFile(const std::string& path, const std::string& content, mode_t mode = 0644);
std::string readFile(const std::string& path);

// A child process; killed (SIGTERM, then SIGKILL) when destroyed.
class Process {
public:
    // argv[0] is the program; env entries are added to (or override) ours.
    // Output goes to logFile when given (appended), else inherited.
    Process(std::vector<std::string> argv, std::map<std::string, std::string> env = {},
            std::string logFile = {});
    ~Process();
    Process(Process&& other) noexcept;
    Process& operator=(Process&&) = delete;
    Process(const Process&) = delete;

    pid_t pid() const { return m_pid; }
    bool running();
    // Waits up to timeout; returns the exit status as from waitpid, or nullopt.
    std::optional<int> wait(std::chrono::milliseconds timeout);
    void signal(int sig);
    void kill();  // SIGKILL and reap

private:
    pid_t m_pid = -1;
    std::optional<int> m_status;
};

struct RunResult {
    int exitCode = -1;  // -1 when killed by a signal or timed out
    std::string out;    // stdout
    std::string err;    // stderr
};
// Runs a command to completion (bounded by timeout), capturing its output.
RunResult run(const std::vector<std::string>& argv, const std::map<std::string, std::string>& env = {},
              const std::string& input = {}, std::chrono::milliseconds timeout = std::chrono::seconds(60));

// Polls pred until it is true or the deadline passes; returns the last value.
bool waitUntil(const std::function<bool()>& pred, std::chrono::milliseconds timeout = std::chrono::seconds(10),
               std::chrono::milliseconds interval = std::chrono::milliseconds(20));

// A TCP port that nothing holds on address, a loopback IPv4 address such as
// 127.0.0.2: from a block of ports of this process's own (derived from its
// pid, below the kernel's ephemeral range), taken in turn and checked
// by a bind that is closed again. Another process may still take it before
// the caller binds it, so a fixture that starts a server on it retries
// with the next port when the server finds it in use.
int freePort(const std::string& address = "127.0.0.1");

// True when we are root (tests needing it skip with a reason otherwise).
bool isRoot();

// A private dbus-daemon acting as the system bus for this process and its
// children: DBUS_SYSTEM_BUS_ADDRESS points at it while the object lives.
// serviceDirs are searched for D-Bus activation files (Exec= lines run as
// the calling user, so activation works without systemd).
class TestBus {
public:
    explicit TestBus(std::vector<std::string> serviceDirs = {});
    ~TestBus();
    const std::string& address() const { return m_address; }
    std::map<std::string, std::string> env() const { return {{"DBUS_SYSTEM_BUS_ADDRESS", m_address}}; }

private:
    TempDir m_dir;
    std::string m_address;
    std::optional<Process> m_daemon;
    std::optional<std::string> m_previous;
};

// Path of a built binary, e.g. buildPath("services/pushd/ferry-pushd").
std::string buildPath(const std::string& relative);
std::string sourcePath(const std::string& relative);

// A fresh root-owned 0755 directory /var/lib/ferry-tests/<prefix>XXXXXX that
// any user can traverse; the caller removes it.
std::string makeSharedTestDir(const std::string& prefix);

// The path under which any user can execute a built binary: a root-owned
// copy under /var/lib/ferry-tests, made once per test process and removed
// when it exits. Use it wherever a test runs a build-tree binary as another
// user (setpriv, a login shell, an sshd helper): a clone under /root (0700)
// keeps the build tree closed to everyone but root. Without root (where
// such tests skip) it is buildPath(relative).
const std::string& buildPathForAnyUser(const std::string& relative);

} // namespace ferry::test
