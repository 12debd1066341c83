// bench/metrics: what Ferry's metrics cost.
//
//   backlog            bytes per sample on the wire for a 24-hour backlog of
//                      the built-in sampler (one run a minute), against the
//                      8-byte target and against the same samples as
//                      Prometheus text exposition;
//   endpoint [N] [S]   ferry-metricsd's GET /metrics with N nodes × S series
//                      (default 10,000 × 200): time to first byte, total time,
//                      size, and metricsd's peak memory, against Prometheus's
//                      default scrape timeout (10 s); and one node's /metrics?node=.
//   remote-write [N] [H]  ferry-remote-write of N nodes × H hours of backlog
//                      (default 20 × 6) to a real Prometheus, in samples/s, beside
//                      the same requests pre-encoded and POSTed by libcurl alone
//                      (promtool 2.42 has no remote-write sender to compare with).

#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <fstream>
#include <iostream>
#include <map>
#include <optional>
#include <random>
#include <sstream>

#include <spdlog/spdlog.h>

#include "CurlSender.h"
#include "RemoteWriter.h"
#include "Samplers.h"
#include "StoreReader.h"
#include "ferry/Bus.h"
#include "ferry/MasterStore.h"
#include "ferry/Metrics.h"
#include "ferry/SampleCodec.h"
#include "ferry/Sqlite.h"
#include "ferry/Wire.h"
#include "support/TestSupport.h"

namespace {

using ferry::metrics::MetricType;
using ferry::metrics::Sample;

int backlog()
{
    const std::int64_t start = 1700000000000;
    constexpr int kRuns = 24 * 60;
    std::vector<ferry::Record> records;
    std::size_t samples = 0, textBytes = 0;
    std::vector<Sample> last;
    for (int i = 0; i < kRuns; ++i) {
        const std::int64_t t = start + static_cast<std::int64_t>(i) * 60000;
        // The real /proc of this machine, read once per simulated minute.
        last = sampler::sampleSystem({}, t);
        samples += last.size();
        for (auto& p : ferry::metrics::encodeSamples(last, t, ferry::kMaxRecordPayload))
            records.push_back({static_cast<std::uint64_t>(records.size() + 1), t, "metrics", std::move(p)});
        std::string text;
        ferry::metrics::appendText(text, last);
        textBytes += text.size();
    }
    // On the wire: Batch frames of at most 500 records / 512 KiB (the push defaults).
    std::size_t wire = 0, payload = 0;
    for (std::size_t i = 0; i < records.size(); i += 500) {
        std::vector<ferry::Record> batch(records.begin() + static_cast<std::ptrdiff_t>(i),
                                         records.begin() + static_cast<std::ptrdiff_t>(std::min(i + 500, records.size())));
        wire += ferry::encode(batch).size() + ferry::kFrameHeaderSize;
        for (const auto& r : batch)
            payload += r.payload.size();
    }
    const double perSample = static_cast<double>(wire) / static_cast<double>(samples);
    const double textPerSample = static_cast<double>(textBytes) / static_cast<double>(samples);
    std::printf("backlog: 24 h of the built-in sampler = %d runs, %zu samples (%zu series per run)\n", kRuns, samples,
                last.size());
    std::printf("backlog: %zu bytes on the wire (%zu payload) = %.2f bytes/sample; target 8.00 → ratio %.2f\n", wire,
                payload, perSample, perSample / 8.0);
    std::printf("backlog: same samples as Prometheus text = %.2f bytes/sample → Ferry/text %.3f\n", textPerSample,
                perSample / textPerSample);
    return perSample <= 8.0 ? 0 : 1;
}

std::vector<Sample> nodeSeries(std::size_t count, std::mt19937_64& rng)
{
    std::vector<Sample> s = sampler::sampleSystem({}, 1700000000000);
    std::uniform_real_distribution<double> jitter(0.5, 1.5);
    static const char* kModes[] = {"user", "nice", "system", "idle", "iowait", "irq", "softirq", "steal"};
    for (int cpu = 2; s.size() < count && cpu < 64; ++cpu)
        for (const char* mode : kModes)
            s.push_back({"node_cpu_seconds_total", MetricType::Counter, {{"cpu", std::to_string(cpu)}, {"mode", mode}},
                         std::round(jitter(rng) * 100000) / 100, 0});
    for (int i = 0; s.size() < count; ++i)
        s.push_back({"app_requests_total", MetricType::Counter, {{"handler", "/api/v" + std::to_string(i)}},
                     std::round(jitter(rng) * 1e6), 0});
    s.resize(count);
    for (auto& x : s)
        if (x.name != "node_boot_time_seconds")
            x.value = std::round(x.value * jitter(rng) * 100) / 100;
    return s;
}

long statusKb(pid_t pid, const std::string& key)
{
    std::ifstream in("/proc/" + std::to_string(pid) + "/status");
    std::string line;
    while (std::getline(in, line))
        if (line.rfind(key + ":", 0) == 0)
            return std::stol(line.substr(key.size() + 1));
    return -1;
}

int endpoint(int nodes, int series)
{
    ferry::test::TempDir dir;
    const std::string db = dir / "master.db";
    const auto fillStart = std::chrono::steady_clock::now();
    std::mt19937_64 rng(1);
    const std::int64_t now = ferry::nowMs();
    {
        ferry::MasterStore schema(db);
        ferry::Database& d = schema.database();
        ferry::Transaction tx(d);
        ferry::Statement node(d, "INSERT INTO nodes (name, secret, last_seen, last_push, records_stored) VALUES (?1, 'x', ?2, ?2, 1440)");
        ferry::Statement rec(d, "INSERT INTO records (node, seq, time_ms, kind, payload, received_ms, via)"
                                " VALUES (?1, ?2, ?3, 'metrics', ?4, ?3, 'push')");
        const auto base = nodeSeries(static_cast<std::size_t>(series), rng);
        std::uniform_real_distribution<double> jitter(0.9, 1.1);
        for (int n = 0; n < nodes; ++n) {
            char name[32];
            std::snprintf(name, sizeof name, "node-%05d", n);
            node.reset();
            node.bind(1, std::string(name)).bind(2, now - 30000).run();
            auto s = base;
            for (auto& x : s)
                x.value = std::round(x.value * jitter(rng));
            // Two earlier runs, then the newest (the endpoint reads back past older ones).
            for (int k = 0; k < 3; ++k) {
                const std::int64_t t = now - 60000 * (2 - k) - 30000;
                rec.reset();
                rec.bind(1, std::string(name)).bind(2, k + 1).bind(3, t);
                rec.bindBlob(4, ferry::metrics::encodeSamples(s, t, ferry::kMaxRecordPayload).at(0)).run();
            }
        }
        tx.commit();
    }
    const double fillS = std::chrono::duration<double>(std::chrono::steady_clock::now() - fillStart).count();
    std::printf("endpoint: master.db with %d nodes × %d series (3 runs each) filled in %.1f s\n", nodes, series, fillS);

    const int port = ferry::test::freePort();
    ferry::test::Process metricsd({ferry::test::buildPath("services/metricsd/ferry-metricsd"),
                                   "--listen=127.0.0.1:" + std::to_string(port), "--store=" + db, "--idle-timeout=0"},
                                  {}, dir / "metricsd.log");
    const std::string url = "http://127.0.0.1:" + std::to_string(port) + "/metrics";
    ferry::test::waitUntil([&] { return ferry::test::run({"curl", "-s", "-o", "/dev/null", url + "?node=none"}).exitCode == 0; },
                           std::chrono::seconds(10));
    const long idleKb = statusKb(metricsd.pid(), "VmRSS");
    double worst = 0;
    for (int round = 0; round < 3; ++round) {
        const auto r = ferry::test::run({"curl", "-sS", "-o", dir / "out.txt", "-w",
                                         "%{time_starttransfer} %{time_total} %{size_download}", url},
                                        {}, {}, std::chrono::seconds(300));
        if (r.exitCode != 0) {
            std::fprintf(stderr, "curl failed: %s\n", r.err.c_str());
            return 2;
        }
        double first = 0, total = 0, size = 0;
        std::istringstream(r.out) >> first >> total >> size;
        worst = std::max(worst, total);
        std::printf("endpoint: GET /metrics #%d: first byte %.3f s, total %.3f s, %.1f MB, %.0f series/s\n", round + 1,
                    first, total, size / 1e6, static_cast<double>(nodes) * series / total);
    }
    std::size_t lines = 0;
    {
        std::ifstream in(dir / "out.txt");
        std::string line;
        while (std::getline(in, line))
            lines += line.empty() || line[0] == '#' ? 0 : 1;
    }
    const long peakKb = statusKb(metricsd.pid(), "VmHWM");
    std::printf("endpoint: %zu sample lines; metricsd RSS idle %.1f MB, peak %.1f MB (%.0f bytes per served series)\n",
                lines, static_cast<double>(idleKb) / 1024, static_cast<double>(peakKb) / 1024,
                static_cast<double>(peakKb - idleKb) * 1024 / (static_cast<double>(nodes) * series));
    std::printf("endpoint: worst total %.3f s vs Prometheus's default scrape_timeout 10 s → ratio %.3f\n", worst,
                worst / 10.0);
    const auto one = ferry::test::run({"curl", "-sS", "-o", "/dev/null", "-w", "%{time_total} %{size_download}",
                                       url + "?node=node-00042"});
    double t = 0, size = 0;
    std::istringstream(one.out) >> t >> size;
    std::printf("endpoint: GET /metrics?node=node-00042: %.3f s, %.0f bytes\n", t, size);
    return 0;
}

// Starts Prometheus on loopback (remote-write receiver, 7 d out-of-order window).
struct Prometheus {
    ferry::test::TempDir dir;
    int port = ferry::test::freePort();
    std::optional<ferry::test::Process> process;
    Prometheus()
    {
        ferry::test::writeFile(dir / "prometheus.yml",
                               "global:\n  scrape_interval: 15s\nstorage:\n  tsdb:\n    out_of_order_time_window: 7d\n");
        process.emplace(std::vector<std::string>{"/usr/bin/prometheus", "--config.file=" + (dir / "prometheus.yml"),
                                                 "--storage.tsdb.path=" + (dir / "data"),
                                                 "--web.listen-address=127.0.0.1:" + std::to_string(port),
                                                 "--web.enable-remote-write-receiver", "--log.level=error"},
                        std::map<std::string, std::string>{}, dir / "prometheus.log");
        ferry::test::waitUntil(
            [&] {
                return ferry::test::run({"curl", "-sf", "-o", "/dev/null",
                                         "http://127.0.0.1:" + std::to_string(port) + "/-/ready"})
                           .exitCode == 0;
            },
            std::chrono::seconds(30), std::chrono::milliseconds(100));
    }
    std::string url() const { return "http://127.0.0.1:" + std::to_string(port) + "/api/v1/write"; }
};

int remoteWrite(int nodes, int hours)
{
    ferry::test::TempDir dir;
    const std::string db = dir / "master.db";
    const std::int64_t now = ferry::nowMs();
    const int runs = hours * 60;
    std::size_t samples = 0;
    {
        ferry::MasterStore schema(db);
        ferry::Database& d = schema.database();
        ferry::Transaction tx(d);
        ferry::Statement node(d, "INSERT INTO nodes (name, secret) VALUES (?1, 'x')");
        ferry::Statement rec(d, "INSERT INTO records (node, seq, time_ms, kind, payload, received_ms, via)"
                                " VALUES (?1, ?2, ?3, 'metrics', ?4, ?3, 'push')");
        for (int n = 0; n < nodes; ++n) {
            const std::string name = "node-" + std::to_string(n);
            node.reset();
            node.bind(1, name).run();
            for (int i = 0; i < runs; ++i) {
                const std::int64_t t = now - static_cast<std::int64_t>(runs - i) * 60000;
                const auto s = sampler::sampleSystem({}, t);
                samples += s.size();
                rec.reset();
                rec.bind(1, name).bind(2, i + 1).bind(3, t);
                rec.bindBlob(4, ferry::metrics::encodeSamples(s, t, ferry::kMaxRecordPayload).at(0)).run();
            }
        }
        tx.commit();
    }
    std::printf("remote-write: %d nodes × %d h of the sampler = %zu samples stored\n", nodes, hours, samples);

    // Ferry: the binary, a real run with cursors, against a fresh Prometheus.
    double ferryS = 0;
    {
        Prometheus prom;
        ferry::test::writeFile(dir / "metrics.yml", "remote_write:\n  url: " + prom.url() + "\n");
        const auto start = std::chrono::steady_clock::now();
        const auto r = ferry::test::run({ferry::test::buildPath("services/metricsd/ferry-remote-write"),
                                         "--config=" + (dir / "metrics.yml"), "--store=" + db,
                                         "--state=" + (dir / "remote-write.db")},
                                        {}, {}, std::chrono::seconds(600));
        ferryS = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
        if (r.exitCode != 0) {
            std::fprintf(stderr, "ferry-remote-write failed: %s\n", r.err.c_str());
            return 2;
        }
    }
    // Peer: the same requests, encoded beforehand, POSTed back to back by
    // libcurl to another fresh Prometheus (no store reads, no decoding, no cursor).
    double rawS = 0;
    {
        metricsd::StoreReader store(db);
        std::vector<std::string> bodies;
        for (const auto& stream : store.streams()) {
            std::uint64_t after = 0;
            for (;;) {
                auto recs = store.recordsAfter(stream, after, 35);
                if (recs.empty())
                    break;
                after = recs.back().order;
                std::size_t n = 0, bad = 0;
                bodies.push_back(metricsd::encodeWriteRequest(stream.node, recs, n, bad));
            }
        }
        Prometheus prom;
        metricsd::RemoteWriteConfig config;
        config.url = prom.url();
        metricsd::CurlSender sender(config);
        const auto start = std::chrono::steady_clock::now();
        for (const auto& b : bodies)
            if (sender.post(b).status / 100 != 2)
                return 3;
        rawS = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    }
    const double n = static_cast<double>(samples);
    std::printf("remote-write: ferry-remote-write %.2f s = %.0f samples/s (whole run: store reads, decoding, cursors)\n",
                ferryS, n / ferryS);
    std::printf("remote-write: same requests pre-encoded, POSTed by libcurl %.2f s = %.0f samples/s → ferry/raw %.2f\n",
                rawS, n / rawS, ferryS / rawS);
    return 0;
}

} // namespace

int main(int argc, char* argv[])
{
    spdlog::set_level(spdlog::level::warn);
    const std::string mode = argc > 1 ? argv[1] : "";
    if (mode == "backlog")
        return backlog();
    if (mode == "remote-write")
        return remoteWrite(argc > 2 ? std::stoi(argv[2]) : 20, argc > 3 ? std::stoi(argv[3]) : 6);
    if (mode == "endpoint")
        return endpoint(argc > 2 ? std::stoi(argv[2]) : 10000, argc > 3 ? std::stoi(argv[3]) : 200);
    std::fprintf(stderr, "usage: ferry-bench-metrics backlog | endpoint [NODES] [SERIES] | remote-write [NODES] [HOURS]\n");
    return 2;
}
