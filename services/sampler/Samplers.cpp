#include "Samplers.h"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <filesystem>
#include <sstream>

#include <spdlog/spdlog.h>

#include "ferry/Error.h"
#include "ferry/Files.h"

namespace sampler {

namespace {

std::optional<std::string> readProc(const std::string& path)
{
    try {
        return ferry::readFileIfExists(path, 1024 * 1024);
    } catch (const std::exception& e) {
        spdlog::warn("Ignoring unreadable {}: {}", path, e.what());
        return std::nullopt;
    }
}

std::string firstLineStartingWith(const std::string& text, const std::string& prefix)
{
    std::istringstream in(text);
    std::string line;
    while (std::getline(in, line))
        if (line.rfind(prefix, 0) == 0)
            return line;
    return {};
}

} // namespace

std::vector<ferry::Record> sampleSystem(const std::string& procRoot, std::int64_t nowMs)
{
    std::vector<ferry::Record> out;
    if (auto load = readProc(procRoot + "/loadavg")) {
        std::istringstream in(*load);
        std::string l1, l5, l15, tasks;
        in >> l1 >> l5 >> l15 >> tasks;
        out.push_back({0, nowMs, "load", "load1 " + l1 + "\nload5 " + l5 + "\nload15 " + l15 + "\ntasks " + tasks + "\n"});
    }
    if (auto stat = readProc(procRoot + "/stat")) {
        // Cumulative jiffies; the master turns consecutive samples into rates.
        std::istringstream in(firstLineStartingWith(*stat, "cpu "));
        std::string label;
        static const char* kFields[] = {"user", "nice", "system", "idle", "iowait", "irq", "softirq", "steal"};
        std::string payload;
        in >> label;
        for (const char* f : kFields) {
            std::string v;
            if (!(in >> v))
                break;
            payload += std::string(f) + " " + v + "\n";
        }
        if (!payload.empty())
            out.push_back({0, nowMs, "cpu", payload});
    }
    if (auto mem = readProc(procRoot + "/meminfo")) {
        std::string payload;
        for (const char* key : {"MemTotal:", "MemAvailable:", "MemFree:", "Buffers:", "Cached:", "SwapTotal:", "SwapFree:"}) {
            std::istringstream in(firstLineStartingWith(*mem, key));
            std::string k, v;
            if (in >> k >> v) {
                k.pop_back();
                payload += k + "_kB " + v + "\n";
            }
        }
        if (!payload.empty())
            out.push_back({0, nowMs, "memory", payload});
    }
    {
        struct statvfs vfs{};
        if (::statvfs("/", &vfs) == 0) {
            const auto bs = static_cast<unsigned long long>(vfs.f_frsize);
            std::ostringstream p;
            p << "mount /\ntotal_bytes " << vfs.f_blocks * bs << "\nfree_bytes " << vfs.f_bavail * bs
              << "\ninodes_total " << vfs.f_files << "\ninodes_free " << vfs.f_favail << "\n";
            out.push_back({0, nowMs, "disk", p.str()});
        }
    }
    if (auto dev = readProc(procRoot + "/net/dev")) {
        std::istringstream in(*dev);
        std::string line, payload;
        std::getline(in, line);
        std::getline(in, line);  // two header lines
        while (std::getline(in, line)) {
            const auto colon = line.find(':');
            if (colon == std::string::npos)
                continue;
            std::string iface = line.substr(0, colon);
            iface.erase(0, iface.find_first_not_of(' '));
            std::istringstream f(line.substr(colon + 1));
            std::string rxBytes, rxPackets, tmp, txBytes, txPackets;
            f >> rxBytes >> rxPackets;
            for (int i = 0; i < 6; ++i)
                f >> tmp;
            f >> txBytes >> txPackets;
            payload += iface + " rx_bytes " + rxBytes + " tx_bytes " + txBytes + "\n";
        }
        if (!payload.empty())
            out.push_back({0, nowMs, "network", payload});
    }
    return out;
}

namespace {

PluginRun runOne(const std::string& path, const std::string& name, std::chrono::seconds timeout)
{
    PluginRun run;
    run.name = name;
    int pipeFd[2];
    if (::pipe2(pipeFd, O_CLOEXEC) != 0) {
        run.output = "cannot create a pipe: " + ferry::errnoMessage(errno);
        return run;
    }
    const pid_t pid = ::fork();
    if (pid < 0) {
        run.output = "cannot fork: " + ferry::errnoMessage(errno);
        ::close(pipeFd[0]);
        ::close(pipeFd[1]);
        return run;
    }
    if (pid == 0) {
        ::setpgid(0, 0);
        ::dup2(pipeFd[1], 1);
        const int devnull = ::open("/dev/null", O_RDWR);
        ::dup2(devnull, 0);
        ::dup2(devnull, 2);
        sigset_t none;
        sigemptyset(&none);
        ::sigprocmask(SIG_SETMASK, &none, nullptr);
        char* const argv[] = {const_cast<char*>(path.c_str()), nullptr};
        ::execv(path.c_str(), argv);
        ::_exit(127);
    }
    ::close(pipeFd[1]);
    const auto deadline = std::chrono::steady_clock::now() + timeout;
    bool timedOut = false, tooBig = false;
    char buf[8192];
    for (;;) {
        const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - std::chrono::steady_clock::now()).count();
        if (left <= 0) {
            timedOut = true;
            break;
        }
        pollfd pfd{pipeFd[0], POLLIN, 0};
        if (::poll(&pfd, 1, static_cast<int>(left)) <= 0)
            continue;
        const ssize_t n = ::read(pipeFd[0], buf, sizeof buf);
        if (n <= 0)
            break;
        run.output.append(buf, static_cast<std::size_t>(n));
        if (run.output.size() > ferry::kMaxRecordPayload) {
            tooBig = true;
            break;
        }
    }
    ::close(pipeFd[0]);
    if (timedOut || tooBig)
        ::kill(-pid, SIGKILL);
    int status = 0;
    ::waitpid(pid, &status, 0);
    if (timedOut) {
        run.output = "timed out after " + std::to_string(timeout.count()) + " s and was killed";
    } else if (tooBig) {
        run.output = "printed more than " + std::to_string(ferry::kMaxRecordPayload) + " bytes and was killed";
    } else if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
        run.output = WIFEXITED(status) ? "exited with status " + std::to_string(WEXITSTATUS(status))
                                       : "killed by signal " + std::to_string(WTERMSIG(status));
    } else {
        run.ok = true;
    }
    return run;
}

} // namespace

std::vector<PluginRun> runPlugins(const std::string& dir, std::chrono::seconds timeout)
{
    std::vector<PluginRun> runs;
    std::error_code ec;
    if (!std::filesystem::is_directory(dir, ec))
        return runs;
    std::vector<std::filesystem::path> files;
    for (const auto& e : std::filesystem::directory_iterator(dir, ec)) {
        const auto name = e.path().filename().string();
        if (name.empty() || name.front() == '.' || name.back() == '~' || name.find(".dpkg-") != std::string::npos)
            continue;
        if (e.is_regular_file(ec) && ::access(e.path().c_str(), X_OK) == 0)
            files.push_back(e.path());
    }
    std::sort(files.begin(), files.end());
    for (const auto& f : files)
        runs.push_back(runOne(f.string(), f.filename().string(), timeout));
    return runs;
}

} // namespace sampler
