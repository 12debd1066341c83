// The sampler's core on a prepared /proc tree (values checked exactly) and
// with real plugin processes and .prom files (bad output logged, rest kept).

#include <gtest/gtest.h>

#include <unistd.h>

#include <filesystem>
#include <sstream>

#include <spdlog/sinks/ostream_sink.h>
#include <spdlog/spdlog.h>

#include "Samplers.h"
#include "ferry/SampleCodec.h"
#include "support/TestSupport.h"

namespace sampler {
namespace {

using ferry::metrics::Sample;

const Sample* find(const std::vector<Sample>& v, const std::string& name,
                   const ferry::metrics::Labels& labels = {})
{
    for (const auto& s : v)
        if (s.name == name && s.labels == labels)
            return &s;
    return nullptr;
}

class ASystemSample : public ::testing::Test {
protected:
    ferry::test::TempDir dir;
    SystemSources sources;

    void SetUp() override
    {
        std::filesystem::create_directories(dir / "proc/net");
        std::filesystem::create_directories(dir / "mnt");
        sources.procRoot = dir / "proc";
        sources.mountsFile = dir / "mounts";
        ferry::test::writeFile(dir / "proc/loadavg", "0.52 0.58 1.25 1/467 12345\n");
        ferry::test::writeFile(dir / "proc/stat",
                               "cpu  300 4 60 8000 10 0 12 0 0 0\n"
                               "cpu0 100 2 30 4000 5 0 6 1 7 0\n"
                               "cpu1 200 2 30 4000 5 0 6 0 0 3\n"
                               "intr 12345 0 0 0\n"
                               "ctxt 999\n"
                               "btime 1700000000\n"
                               "processes 4242\n"
                               "procs_running 3\n"
                               "procs_blocked 1\n");
        ferry::test::writeFile(dir / "proc/meminfo",
                               "MemTotal:       16000000 kB\n"
                               "Active(anon):        100 kB\n"
                               "HugePages_Total:       4\n");
        ferry::test::writeFile(
            dir / "proc/net/dev",
            "Inter-|   Receive                                                |  Transmit\n"
            " face |bytes    packets errs drop fifo frame compressed multicast|bytes    packets errs drop fifo colls carrier compressed\n"
            "    lo: 5871708    8014    0    0    0     0          0         0  5871708    8014    0    0    0     0       0          0\n"
            "  eth0: 1000 10 1 2 0 0 0 0 2000 20 3 4 0 0 0 0\n");
        ferry::test::writeFile(dir / "mounts",
                               "proc /proc proc rw 0 0\n"
                               "/dev/fake " + (dir / "mnt") + " ext4 ro,relatime 0 0\n"
                               "/dev/gone /nonexistent/mount xfs rw 0 0\n"
                               "tmpfs /sys/fs/cgroup tmpfs rw 0 0\n");
    }
};

TEST_F(ASystemSample, UsesNodeExporterNamesLabelsAndUnits)
{
    const double hz = static_cast<double>(::sysconf(_SC_CLK_TCK));
    const auto s = sampleSystem(sources, 1700000123456);
    ASSERT_TRUE(find(s, "node_load15"));
    EXPECT_EQ(find(s, "node_load15")->value, 1.25);
    const auto* user0 = find(s, "node_cpu_seconds_total", {{"cpu", "0"}, {"mode", "user"}});
    ASSERT_TRUE(user0);
    EXPECT_DOUBLE_EQ(user0->value, 100 / hz);
    EXPECT_EQ(user0->type, ferry::metrics::MetricType::Counter);
    EXPECT_FALSE(find(s, "node_cpu_seconds_total", {{"cpu", ""}, {"mode", "user"}})) << "the aggregate line is not a cpu";
    ASSERT_TRUE(find(s, "node_cpu_guest_seconds_total", {{"cpu", "1"}, {"mode", "nice"}}));
    EXPECT_DOUBLE_EQ(find(s, "node_cpu_guest_seconds_total", {{"cpu", "0"}, {"mode", "user"}})->value, 7 / hz);
    EXPECT_EQ(find(s, "node_boot_time_seconds")->value, 1700000000);
    EXPECT_EQ(find(s, "node_forks_total")->value, 4242);
    EXPECT_EQ(find(s, "node_context_switches_total")->value, 999);
    EXPECT_EQ(find(s, "node_intr_total")->value, 12345);
    EXPECT_EQ(find(s, "node_procs_running")->value, 3);
    EXPECT_EQ(find(s, "node_memory_MemTotal_bytes")->value, 16000000.0 * 1024);
    EXPECT_EQ(find(s, "node_memory_Active_anon_bytes")->value, 100.0 * 1024);
    EXPECT_EQ(find(s, "node_memory_HugePages_Total")->value, 4) << "no unit, no _bytes, no scaling";
    EXPECT_EQ(find(s, "node_time_seconds")->value, 1700000123.456);
    EXPECT_FALSE(find(s, "node_network_receive_bytes_total", {{"device", "lo"}}));
    EXPECT_EQ(find(s, "node_network_receive_bytes_total", {{"device", "eth0"}})->value, 1000);
    EXPECT_EQ(find(s, "node_network_receive_drop_total", {{"device", "eth0"}})->value, 2);
    EXPECT_EQ(find(s, "node_network_transmit_errs_total", {{"device", "eth0"}})->value, 3);
    EXPECT_EQ(find(s, "node_network_transmit_packets_total", {{"device", "eth0"}})->value, 20);

    const ferry::metrics::Labels mnt{{"device", "/dev/fake"}, {"fstype", "ext4"}, {"mountpoint", dir / "mnt"}};
    ASSERT_TRUE(find(s, "node_filesystem_size_bytes", mnt));
    EXPECT_GT(find(s, "node_filesystem_size_bytes", mnt)->value, 0);
    EXPECT_EQ(find(s, "node_filesystem_readonly", mnt)->value, 1);
    EXPECT_EQ(find(s, "node_filesystem_device_error", mnt)->value, 0);
    const ferry::metrics::Labels gone{{"device", "/dev/gone"}, {"fstype", "xfs"}, {"mountpoint", "/nonexistent/mount"}};
    EXPECT_EQ(find(s, "node_filesystem_device_error", gone)->value, 1);
    EXPECT_FALSE(find(s, "node_filesystem_size_bytes", gone));
    for (const auto& x : s)
        EXPECT_NE(x.labels.empty() ? "" : x.labels.back().value, "/proc") << "excluded like node_exporter";
}

TEST_F(ASystemSample, CostsAtMostEightBytesPerSampleEncoded)
{
    const auto s = sampleSystem({}, 1700000123456);  // this machine's real /proc
    ASSERT_GT(s.size(), 50u);
    const auto payloads = ferry::metrics::encodeSamples(s, 1700000123456, 256 * 1024);
    ASSERT_EQ(payloads.size(), 1u);
    EXPECT_LE(static_cast<double>(payloads[0].size()) / static_cast<double>(s.size()), 8.0);
}

class PluginOutput : public ::testing::Test {
protected:
    ferry::test::TempDir dir;
    std::ostringstream log;
    std::shared_ptr<spdlog::logger> previous;

    void SetUp() override
    {
        previous = spdlog::default_logger();
        auto sink = std::make_shared<spdlog::sinks::ostream_sink_mt>(log);
        spdlog::set_default_logger(std::make_shared<spdlog::logger>("test", sink));
    }
    void TearDown() override { spdlog::set_default_logger(previous); }
};

TEST_F(PluginOutput, BadLinesAreLoggedEscapedWithThePluginAndTheRestIsKept)
{
    std::filesystem::create_directories(dir / "plugins.d");
    ferry::test::writeFile(dir / "plugins.d/10-app",
                           "#!/bin/sh\n"
                           "echo '# TYPE app_queue_length gauge'\n"
                           "echo 'app_queue_length{queue=\"in\"} 7'\n"
                           "printf 'app_broken{ \\033[31mred\\n'\n"
                           "echo 'app_ok 1'\n",
                           0755);
    const auto runs = runPlugins(dir / "plugins.d", std::chrono::seconds(10));
    ASSERT_EQ(runs.size(), 1u);
    ASSERT_TRUE(runs[0].ok) << runs[0].output;
    const auto samples = parseOutput("plugin 10-app", runs[0].output, {});
    ASSERT_EQ(samples.size(), 2u);
    EXPECT_EQ(samples[0].name, "app_queue_length");
    EXPECT_EQ(samples[0].type, ferry::metrics::MetricType::Gauge);
    const std::string text = log.str();
    EXPECT_NE(text.find("Ignoring line 3 of plugin 10-app"), std::string::npos) << text;
    EXPECT_NE(text.find("\\x1b[31mred"), std::string::npos) << "escaped: " << text;
    EXPECT_EQ(text.find('\x1b'), std::string::npos);
}

TEST_F(PluginOutput, AHundredThousandSeriesAreCutAtTheBoundWithOneLine)
{
    std::string text;
    for (int i = 0; i < 100000; ++i)
        text += "many{i=\"" + std::to_string(i) + "\"} 1\n";
    ferry::metrics::Limits limits;
    limits.maxSeries = 10000;
    const auto samples = parseOutput("plugin many", text, limits);
    EXPECT_EQ(samples.size(), 10000u);
    EXPECT_NE(log.str().find("Dropping 90000 series of plugin many"), std::string::npos) << log.str();
    const auto payloads = ferry::metrics::encodeSamples(samples, 1, 256 * 1024);
    for (const auto& p : payloads)
        EXPECT_LE(p.size(), 256u * 1024);
}

TEST_F(PluginOutput, TextfilesAreReadByTheirPromSuffix)
{
    ferry::test::writeFile(dir / "a.prom", "job_last_success_timestamp_seconds 1.7e9\n");
    ferry::test::writeFile(dir / "b.prom.tmp", "ignored 1\n");
    ferry::test::writeFile(dir / "c.txt", "ignored 1\n");
    const auto files = readTextFiles(dir.path(), 1 << 20);
    ASSERT_EQ(files.size(), 1u);
    EXPECT_EQ(files[0].name, "a.prom");
}

} // namespace
} // namespace sampler
