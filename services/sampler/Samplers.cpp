#include "Samplers.h"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <charconv>
#include <cstring>
#include <filesystem>
#include <map>
#include <optional>
#include <regex>
#include <sstream>

#include <spdlog/spdlog.h>

#include "ferry/Error.h"
#include "ferry/Files.h"
#include "ferry/PullProtocol.h"
#include "ferry/Wire.h"

namespace sampler {


namespace {

using ferry::metrics::Label;
using ferry::metrics::Labels;
using ferry::metrics::MetricType;
using ferry::metrics::Sample;

std::vector<std::string> words(const std::string& line)
{
    std::istringstream in(line);
    std::vector<std::string> out;
    std::string w;
    while (in >> w)
        out.push_back(w);
    return out;
}

std::optional<double> number(const std::string& s)
{
    double v = 0;
    const auto [p, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
    if (ec != std::errc{} || p != s.data() + s.size())
        return std::nullopt;
    return v;
}

// /proc/mounts escapes space, tab, newline and backslash as \ooo.
std::string unescapeMount(const std::string& s)
{
    std::string out;
    for (std::size_t i = 0; i < s.size(); ++i) {
        auto octal = [&](std::size_t k) { return k < s.size() && s[k] >= '0' && s[k] <= '7'; };
        if (s[i] == '\\' && octal(i + 1) && octal(i + 2) && octal(i + 3)) {
            out += static_cast<char>(std::stoi(s.substr(i + 1, 3), nullptr, 8));
            i += 3;
        } else {
            out += s[i];
        }
    }
    return out;
}

// The defaults of Debian 12's prometheus-node-exporter 1.5 for its
// filesystem collector (--collector.filesystem.mount-points-exclude and
// fs-types-exclude), so both report the same filesystems.
bool excludedMount(const std::string& mountpoint, const std::string& fstype)
{
    static const std::regex points("^/(dev|proc|run|sys|mnt|media|var/lib/docker/.+|var/lib/containers/storage/.+)($|/)");
    static const std::regex types(
        "^(autofs|binfmt_misc|bpf|cgroup2?|configfs|debugfs|devpts|devtmpfs|fusectl|hugetlbfs|iso9660|mqueue|nsfs|"
        "overlay|proc|procfs|pstore|rpc_pipefs|securityfs|selinuxfs|squashfs|sysfs|tracefs)$");
    return std::regex_search(mountpoint, points) || std::regex_match(fstype, types);
}

void sampleStat(const std::string& text, std::vector<Sample>& out)
{
    static const char* kModes[] = {"user", "nice", "system", "idle", "iowait", "irq", "softirq", "steal"};
    const double hz = static_cast<double>(::sysconf(_SC_CLK_TCK) > 0 ? ::sysconf(_SC_CLK_TCK) : 100);
    std::istringstream in(text);
    std::string line;
    while (std::getline(in, line)) {
        const auto w = words(line);
        if (w.size() < 2)
            continue;
        if (w[0].size() > 3 && w[0].starts_with("cpu")) {
            const std::string cpu = w[0].substr(3);
            for (std::size_t i = 0; i < 8 && i + 1 < w.size(); ++i)
                if (auto v = number(w[i + 1]))
                    out.push_back({"node_cpu_seconds_total", MetricType::Counter, {{"cpu", cpu}, {"mode", kModes[i]}},
                                   *v / hz, 0});
            for (std::size_t i = 0; i < 2 && i + 9 < w.size(); ++i)
                if (auto v = number(w[i + 9]))
                    out.push_back({"node_cpu_guest_seconds_total", MetricType::Counter,
                                   {{"cpu", cpu}, {"mode", i == 0 ? "user" : "nice"}}, *v / hz, 0});
            continue;
        }
        const auto v = number(w[1]);
        if (!v)
            continue;
        if (w[0] == "btime")
            out.push_back({"node_boot_time_seconds", MetricType::Gauge, {}, *v, 0});
        else if (w[0] == "ctxt")
            out.push_back({"node_context_switches_total", MetricType::Counter, {}, *v, 0});
        else if (w[0] == "processes")
            out.push_back({"node_forks_total", MetricType::Counter, {}, *v, 0});
        else if (w[0] == "intr")
            out.push_back({"node_intr_total", MetricType::Counter, {}, *v, 0});
        else if (w[0] == "procs_running")
            out.push_back({"node_procs_running", MetricType::Gauge, {}, *v, 0});
        else if (w[0] == "procs_blocked")
            out.push_back({"node_procs_blocked", MetricType::Gauge, {}, *v, 0});
    }
}

void sampleMeminfo(const std::string& text, std::vector<Sample>& out)
{
    // node_exporter: "Active(anon):  123 kB" → node_memory_Active_anon_bytes = 123 × 1024;
    // fields without a unit (HugePages_Total) keep their name and value.
    std::istringstream in(text);
    std::string line;
    while (std::getline(in, line)) {
        const auto colon = line.find(':');
        if (colon == std::string::npos)
            continue;
        std::string key;
        for (char c : line.substr(0, colon)) {
            if (c == '(')
                key += '_';
            else if (c != ')')
                key += c;
        }
        const auto w = words(line.substr(colon + 1));
        if (w.empty() || !ferry::metrics::isValidMetricName("node_memory_" + key))
            continue;
        auto v = number(w[0]);
        if (!v)
            continue;
        const bool kb = w.size() > 1 && w[1] == "kB";
        out.push_back({"node_memory_" + key + (kb ? "_bytes" : ""), MetricType::Gauge, {}, kb ? *v * 1024 : *v, 0});
    }
}

void sampleFilesystems(const std::string& mounts, std::vector<Sample>& out)
{
    std::map<std::string, std::pair<std::string, std::string>> seen;  // mountpoint → device, fstype (last wins)
    std::map<std::string, bool> readOnly;
    std::istringstream in(mounts);
    std::string line;
    std::vector<std::string> order;
    while (std::getline(in, line)) {
        const auto w = words(line);
        if (w.size() < 4)
            continue;
        const auto device = unescapeMount(w[0]), point = unescapeMount(w[1]), fstype = w[2];
        if (excludedMount(point, fstype))
            continue;
        if (!seen.contains(point))
            order.push_back(point);
        seen[point] = {device, fstype};
        const std::string opts = "," + w[3] + ",";
        readOnly[point] = opts.find(",ro,") != std::string::npos;
    }
    for (const auto& point : order) {
        const auto& [device, fstype] = seen[point];
        Labels labels{{"device", device}, {"fstype", fstype}, {"mountpoint", point}};
        struct statfs fs{};
        if (::statfs(point.c_str(), &fs) != 0) {
            spdlog::debug("Cannot statfs {}: {}", ferry::escapeForLog(point), ferry::errnoMessage(errno));
            out.push_back({"node_filesystem_device_error", MetricType::Gauge, labels, 1, 0});
            continue;
        }
        const auto bs = static_cast<double>(fs.f_bsize);
        auto g = [&](const char* name, double v) { out.push_back({name, MetricType::Gauge, labels, v, 0}); };
        g("node_filesystem_size_bytes", static_cast<double>(fs.f_blocks) * bs);
        g("node_filesystem_free_bytes", static_cast<double>(fs.f_bfree) * bs);
        g("node_filesystem_avail_bytes", static_cast<double>(fs.f_bavail) * bs);
        g("node_filesystem_files", static_cast<double>(fs.f_files));
        g("node_filesystem_files_free", static_cast<double>(fs.f_ffree));
        g("node_filesystem_readonly", readOnly[point] ? 1 : 0);
        g("node_filesystem_device_error", 0);
    }
}

void sampleNetDev(const std::string& text, std::vector<Sample>& out)
{
    // Columns after "iface:": receive bytes packets errs drop fifo frame
    // compressed multicast, transmit bytes packets errs drop fifo colls carrier compressed.
    static const std::pair<int, const char*> kColumns[] = {
        {0, "node_network_receive_bytes_total"},  {1, "node_network_receive_packets_total"},
        {2, "node_network_receive_errs_total"},   {3, "node_network_receive_drop_total"},
        {8, "node_network_transmit_bytes_total"}, {9, "node_network_transmit_packets_total"},
        {10, "node_network_transmit_errs_total"}, {11, "node_network_transmit_drop_total"}};
    std::istringstream in(text);
    std::string line;
    while (std::getline(in, line)) {
        const auto colon = line.find(':');
        if (colon == std::string::npos)
            continue;
        std::string device = line.substr(0, colon);
        device.erase(0, device.find_first_not_of(' '));
        if (device == "lo" || device.empty())  // node_exporter's default device exclusion on Debian
            continue;
        const auto w = words(line.substr(colon + 1));
        if (w.size() < 16)
            continue;
        for (const auto& [col, name] : kColumns)
            if (auto v = number(w[static_cast<std::size_t>(col)]))
                out.push_back({name, MetricType::Counter, {{"device", device}}, *v, 0});
    }
}

std::optional<std::string> readProc(const std::string& path)
{
    try {
        return ferry::readFileIfExists(path, 4 * 1024 * 1024);
    } catch (const std::exception& e) {
        spdlog::warn("Ignoring unreadable {}: {}", path, e.what());
        return std::nullopt;
    }
}

} // namespace

const std::vector<std::string>& builtinFamilies()
{
    static const std::vector<std::string> families = {
        "node_load1", "node_load5", "node_load15", "node_cpu_seconds_total", "node_cpu_guest_seconds_total",
        "node_boot_time_seconds", "node_time_seconds", "node_procs_running", "node_procs_blocked",
        "node_context_switches_total", "node_forks_total", "node_intr_total", "node_filesystem_size_bytes",
        "node_filesystem_free_bytes", "node_filesystem_avail_bytes", "node_filesystem_files",
        "node_filesystem_files_free", "node_filesystem_readonly", "node_filesystem_device_error",
        "node_network_receive_bytes_total", "node_network_receive_packets_total", "node_network_receive_errs_total",
        "node_network_receive_drop_total", "node_network_transmit_bytes_total", "node_network_transmit_packets_total",
        "node_network_transmit_errs_total", "node_network_transmit_drop_total", "node_memory_*"};
    return families;
}

std::vector<Sample> sampleSystem(const SystemSources& sources, std::int64_t nowMs)
{
    std::vector<Sample> out;
    if (auto load = readProc(sources.procRoot + "/loadavg")) {
        const auto w = words(*load);
        static const char* kNames[] = {"node_load1", "node_load5", "node_load15"};
        for (std::size_t i = 0; i < 3 && i < w.size(); ++i)
            if (auto v = number(w[i]))
                out.push_back({kNames[i], MetricType::Gauge, {}, *v, 0});
    }
    if (auto stat = readProc(sources.procRoot + "/stat"))
        sampleStat(*stat, out);
    if (auto mem = readProc(sources.procRoot + "/meminfo"))
        sampleMeminfo(*mem, out);
    auto mounts = readProc(sources.mountsFile);
    if (!mounts)
        mounts = readProc(sources.procRoot + "/mounts");
    if (mounts)
        sampleFilesystems(*mounts, out);
    if (auto dev = readProc(sources.procRoot + "/net/dev"))
        sampleNetDev(*dev, out);
    out.push_back({"node_time_seconds", MetricType::Gauge, {}, static_cast<double>(nowMs) / 1000.0, 0});
    return out;
}

std::vector<Sample> parseOutput(const std::string& source, const std::string& text,
                                const ferry::metrics::Limits& limits)
{
    constexpr std::size_t kMaxLoggedErrors = 5;
    auto result = ferry::metrics::parseText(text, limits);
    for (std::size_t i = 0; i < result.errors.size() && i < kMaxLoggedErrors; ++i) {
        const auto& e = result.errors[i];
        spdlog::warn("Ignoring line {} of {}: {}: {}", e.line, source, e.reason, ferry::escapeForLog(e.text));
    }
    if (result.errors.size() > kMaxLoggedErrors)
        spdlog::warn("Ignoring {} more bad lines of {}", result.errors.size() - kMaxLoggedErrors, source);
    if (result.droppedSeries > 0)
        spdlog::warn("Dropping {} series of {}: more than {} series", result.droppedSeries, source, limits.maxSeries);
    return std::move(result.samples);
}

std::vector<TextFile> readTextFiles(const std::string& dir, std::size_t maxBytes)
{
    std::vector<TextFile> out;
    if (dir.empty())
        return out;
    std::error_code ec;
    std::vector<std::filesystem::path> files;
    for (const auto& e : std::filesystem::directory_iterator(dir, ec)) {
        const auto name = e.path().filename().string();
        if (name.ends_with(".prom") && name.front() != '.' && e.is_regular_file(ec))
            files.push_back(e.path());
    }
    if (ec)
        spdlog::warn("Cannot list textfile directory {}: {}", dir, ec.message());
    std::sort(files.begin(), files.end());
    for (const auto& f : files) {
        try {
            out.push_back({f.filename().string(), ferry::readFile(f.string(), maxBytes)});
        } catch (const std::exception& e) {
            spdlog::warn("Ignoring {}: {}", f.string(), e.what());
        }
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

void writePluginRuns(ferry::ByteStream& out, const std::vector<PluginRun>& runs, std::chrono::seconds timeout)
{
    std::size_t n = 0;
    for (const auto& run : runs) {
        if (++n > kMaxPluginRuns) {
            spdlog::warn("Not sending plugin {} and the rest: at most {} plugins run", run.name, kMaxPluginRuns);
            break;
        }
        const ferry::Record record{run.ok ? 2u : 1u, 0, run.name.substr(0, ferry::kMaxKind),
                                   run.output.substr(0, ferry::kMaxRecordPayload)};
        ferry::writeFrame(out, ferry::MessageType::Batch, ferry::encode(std::vector<ferry::Record>{record}),
                          ferry::deadlineIn(timeout));
    }
    ferry::writeFrame(out, ferry::MessageType::Bye, {}, ferry::deadlineIn(timeout));
}

std::vector<PluginRun> readPluginRuns(ferry::ByteStream& in, std::chrono::milliseconds perPlugin)
{
    std::vector<PluginRun> runs;
    for (;;) {
        const ferry::Frame f = ferry::readFrame(in, ferry::deadlineIn(perPlugin),
                                                static_cast<std::uint32_t>(ferry::kMaxRecordPayload + 1024));
        if (f.type == ferry::MessageType::Bye)
            return runs;
        if (f.type != ferry::MessageType::Batch)
            throw ferry::ProtocolError("Unexpected " + std::string(ferry::toString(f.type)) +
                                       " from the plugin runner " + in.peer());
        if (runs.size() >= kMaxPluginRuns)
            throw ferry::ProtocolError("The plugin runner " + in.peer() + " sent more than " +
                                       std::to_string(kMaxPluginRuns) + " plugin runs");
        auto batch = ferry::decodeBatch(f.payload, "the plugin runner " + in.peer());
        if (batch.size() != 1)
            throw ferry::ProtocolError("The plugin runner " + in.peer() + " sent " + std::to_string(batch.size()) +
                                       " runs in one frame (expected 1)");
        runs.push_back({std::move(batch[0].kind), batch[0].seq == 2, std::move(batch[0].payload)});
    }
}

std::vector<PluginRun> runPluginsThrough(const std::string& socketPath, std::chrono::seconds pluginTimeout)
{
    const int fd = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0)
        throw ferry::Error("Failed to create a socket for the plugin runner: " + std::string(std::strerror(errno)));
    sockaddr_un sa{};
    sa.sun_family = AF_UNIX;
    if (socketPath.size() >= sizeof sa.sun_path) {
        ::close(fd);
        throw ferry::Error("Failed to connect to the plugin runner: the path " + socketPath + " is too long");
    }
    std::memcpy(sa.sun_path, socketPath.c_str(), socketPath.size() + 1);
    if (::connect(fd, reinterpret_cast<const sockaddr*>(&sa), sizeof sa) != 0) {
        const int e = errno;
        ::close(fd);
        throw ferry::Error("Failed to connect to the plugin runner at " + socketPath + ": " + std::strerror(e) +
                           " (is ferry-plugins.socket listening?)");
    }
    ferry::FdStream stream(fd, fd, "at " + socketPath, true);
    // A plugin may take its whole timeout; the runner adds a little.
    return readPluginRuns(stream, std::chrono::duration_cast<std::chrono::milliseconds>(pluginTimeout) +
                                      std::chrono::seconds(5));
}

} // namespace sampler
