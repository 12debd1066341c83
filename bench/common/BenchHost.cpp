#include "BenchHost.h"

#include <fcntl.h>
#include <sched.h>
#include <signal.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <chrono>
#include <filesystem>
#include <map>
#include <sstream>
#include <thread>

#include "ferry/Error.h"

namespace ferry::bench {

namespace fs = std::filesystem;

void pinTo(int cpu)
{
    cpu_set_t set;
    CPU_ZERO(&set);
    CPU_SET(cpu, &set);
    if (::sched_setaffinity(0, sizeof set, &set) != 0)
        throwErrno("pin the benchmark to CPU " + std::to_string(cpu));
}

bool pinnedTo(pid_t pid, int cpu)
{
    cpu_set_t set;
    CPU_ZERO(&set);
    if (::sched_getaffinity(pid, sizeof set, &set) != 0)
        return true;
    return CPU_COUNT(&set) == 1 && CPU_ISSET(cpu, &set);
}

double monoSeconds()
{
    return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count();
}

double threadCpuSeconds()
{
    timespec ts{};
    ::clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
    return static_cast<double>(ts.tv_sec) + static_cast<double>(ts.tv_nsec) / 1e9;
}

std::string readProcFile(const std::string& path)
{
    const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return {};
    std::string text;
    char buf[4096];
    for (;;) {
        const ssize_t n = ::read(fd, buf, sizeof buf);
        if (n <= 0)
            break;
        text.append(buf, static_cast<std::size_t>(n));
    }
    ::close(fd);
    return text;
}

std::pair<double, double> processUserSystemSeconds(pid_t pid, bool withChildren)
{
    const std::string text = readProcFile("/proc/" + std::to_string(pid) + "/stat");
    const auto close = text.rfind(')');
    if (close == std::string::npos)
        return {0, 0};
    std::istringstream fields(text.substr(close + 2));
    std::vector<std::string> f;
    for (std::string s; fields >> s;)
        f.push_back(s);
    // Fields after the name start at 3 (state); utime is field 14.
    if (f.size() < 15)
        return {0, 0};
    const double tick = static_cast<double>(::sysconf(_SC_CLK_TCK));
    double user = std::stod(f[11]), system = std::stod(f[12]);
    if (withChildren) {
        user += std::stod(f[13]);
        system += std::stod(f[14]);
    }
    return {user / tick, system / tick};
}

double processCpuSeconds(pid_t pid, bool withChildren)
{
    const auto [user, system] = processUserSystemSeconds(pid, withChildren);
    return user + system;
}

std::uint64_t pssKiB(pid_t pid)
{
    std::istringstream in(readProcFile("/proc/" + std::to_string(pid) + "/smaps_rollup"));
    std::string line;
    while (std::getline(in, line)) {
        if (line.rfind("Pss:", 0) == 0)
            return std::stoull(line.substr(4));
    }
    return 0;
}

std::vector<pid_t> descendants(pid_t root)
{
    std::map<pid_t, std::vector<pid_t>> children;
    for (const auto& e : fs::directory_iterator("/proc")) {
        const std::string name = e.path().filename();
        if (name.empty() || !std::isdigit(static_cast<unsigned char>(name[0])))
            continue;
        const std::string text = readProcFile(e.path() / "stat");
        const auto close = text.rfind(')');
        if (close == std::string::npos)
            continue;
        std::istringstream fields(text.substr(close + 2));
        std::string state;
        pid_t ppid = 0;
        fields >> state >> ppid;
        children[ppid].push_back(static_cast<pid_t>(std::stol(name)));
    }
    std::vector<pid_t> out{root};
    for (std::size_t i = 0; i < out.size(); ++i)
        for (pid_t c : children[out[i]])
            out.push_back(c);
    return out;
}

namespace {

std::string cgroup2Root()
{
    std::istringstream mounts(readProcFile("/proc/self/mounts"));
    for (std::string line; std::getline(mounts, line);) {
        std::istringstream f(line);
        std::string device, dir, type;
        f >> device >> dir >> type;
        if (type == "cgroup2" && ::access(dir.c_str(), W_OK) == 0)
            return dir;
    }
    return {};
}

} // namespace

CpuGroup::CpuGroup(const std::string& bench, const std::string& name)
{
    const std::string root = cgroup2Root();
    if (root.empty())
        return;
    const std::string path = root + "/ferry-bench-" + bench + "-" + std::to_string(::getpid()) + "-" + name;
    if (::mkdir(path.c_str(), 0755) != 0 && errno != EEXIST)
        return;
    m_path = path;
}

CpuGroup::~CpuGroup()
{
    if (m_path.empty())
        return;
    // Whatever is left (the processes stop before this) goes, then the group.
    for (int i = 0; i < 50 && ::rmdir(m_path.c_str()) != 0; ++i) {
        (void)writeControl("cgroup.kill", "1");
        std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
}

void CpuGroup::add(pid_t pid) const
{
    if (m_path.empty())
        return;
    for (pid_t p : descendants(pid))
        if (!writeControl("cgroup.procs", std::to_string(p)) && ::kill(p, 0) == 0)
            throwErrno("move process " + std::to_string(p) + " into " + m_path);
}

double CpuGroup::cpuSeconds() const
{
    std::istringstream in(readProcFile(m_path + "/cpu.stat"));
    for (std::string key, value; in >> key >> value;)
        if (key == "usage_usec")
            return std::stod(value) / 1e6;
    return 0;
}

std::pair<double, double> CpuGroup::userSystemSeconds() const
{
    std::istringstream in(readProcFile(m_path + "/cpu.stat"));
    double user = 0, system = 0;
    for (std::string key, value; in >> key >> value;) {
        if (key == "user_usec")
            user = std::stod(value) / 1e6;
        if (key == "system_usec")
            system = std::stod(value) / 1e6;
    }
    return {user, system};
}

bool CpuGroup::writeControl(const char* file, const std::string& text) const
{
    const int fd = ::open((m_path + "/" + file).c_str(), O_WRONLY | O_CLOEXEC);
    if (fd < 0)
        return false;
    const bool ok = ::write(fd, text.data(), text.size()) == static_cast<ssize_t>(text.size());
    ::close(fd);
    return ok;
}

std::string errorKind(const std::exception& e)
{
    const std::string what = e.what();
    if (dynamic_cast<const TimeoutError*>(&e) != nullptr)
        return "timeout";
    if (dynamic_cast<const AuthError*>(&e) != nullptr)
        return "auth";
    if (dynamic_cast<const ClosedError*>(&e) != nullptr)
        return "closed";
    if (dynamic_cast<const ProtocolError*>(&e) != nullptr)
        return "protocol";
    if (what.find("banner") != std::string::npos || what.find("reset") != std::string::npos ||
        what.find("refused") != std::string::npos)
        return "connect";
    return "other";
}

double percentile(std::vector<double> v, double p)
{
    if (v.empty())
        return 0;
    std::sort(v.begin(), v.end());
    const auto idx = static_cast<std::size_t>(p * static_cast<double>(v.size() - 1) + 0.5);
    return v[std::min(idx, v.size() - 1)];
}

} // namespace ferry::bench
