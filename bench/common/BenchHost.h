#pragma once
// What the benchmarks that pin a master to one CPU share (bench/master-load,
// bench/collector-push): placement, clocks, a process's CPU and memory from
// /proc, a cgroup (v2) of the bench's own that counts its processes' CPU,
// and how a push's failure is named on a step's line.

#include <sys/types.h>

#include <cstdint>
#include <exception>
#include <string>
#include <utility>
#include <vector>

namespace ferry::bench {

// Where the master and the load generator run when pinned.
constexpr int kMasterCpu = 0;
constexpr int kClientCpu = 1;

// Pins the calling thread, and so every process it forks or execs after,
// to one CPU.
void pinTo(int cpu);
// Whether a process may run on `cpu` only (true when it is gone).
bool pinnedTo(pid_t pid, int cpu);

double monoSeconds();
// The calling thread's CPU time.
double threadCpuSeconds();

// The text of a /proc file, empty when its process has gone: reading the
// file of a process that exited between open and read fails with ESRCH,
// which std::ifstream turns into an exception out of underflow().
std::string readProcFile(const std::string& path);

// utime and stime of a process (its ended threads included), in seconds,
// and with withChildren the children it reaped: sshd's listener reaps
// every connection's processes (and they reap the key helper), so its
// children's time is the whole of sshd's work once they have exited.
std::pair<double, double> processUserSystemSeconds(pid_t pid, bool withChildren = false);
double processCpuSeconds(pid_t pid, bool withChildren);
// Proportional set size of a process in KiB (0 when it is gone).
std::uint64_t pssKiB(pid_t pid);
// root and every process below it.
std::vector<pid_t> descendants(pid_t root);

// A cgroup v2 of the benchmark's own ("ferry-bench-<bench>-<pid>-<name>"),
// holding some of the master's processes (and, by inheritance, whatever
// they fork): its cpu.stat counts every CPU microsecond of the processes in
// it while they run, so a step's CPU is the difference at its edges,
// whenever a process exits and whoever reaps it. Without a writable cgroup
// v2 hierarchy it is not usable, and a bench counts /proc's times instead
// (a process's children counted when reaped).
class CpuGroup {
public:
    CpuGroup(const std::string& bench, const std::string& name);
    ~CpuGroup();
    CpuGroup(const CpuGroup&) = delete;
    CpuGroup& operator=(const CpuGroup&) = delete;

    bool usable() const { return !m_path.empty(); }
    // Moves pid and its descendants into the group.
    void add(pid_t pid) const;
    // usage_usec, in seconds.
    double cpuSeconds() const;
    // user_usec and system_usec, in seconds.
    std::pair<double, double> userSystemSeconds() const;

private:
    bool writeControl(const char* file, const std::string& text) const;
    std::string m_path;
};

// The kind of a push's failure, as the step lines count them: timeout,
// auth, closed, protocol, connect, other.
std::string errorKind(const std::exception& e);

// The value at fraction p of v (0.5: the median), nearest rank.
double percentile(std::vector<double> v, double p);

} // namespace ferry::bench
