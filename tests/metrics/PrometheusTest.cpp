// Ferry's metrics beside the real tools: Debian's Prometheus (started here
// on loopback with a temporary storage directory) scrapes ferry-metricsd
// (socket-activated by systemd-socket-activate) fed by a master.db that the
// real sampler, spool and store filled; and the sampler's samples are
// compared with Debian's prometheus-node-exporter on the same machine.

#include <gtest/gtest.h>

#include <unistd.h>

#include <cmath>
#include <filesystem>
#include <fstream>
#include <map>
#include <set>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>

#include <future>

#include <atomic>
#include <mutex>
#include <thread>

#include <nlohmann/json.hpp>

#include "Samplers.h"
#include "ferry/Bus.h"

#include "ferry/Epoch.h"
#include "ferry/MasterStore.h"
#include "ferry/Metrics.h"
#include "ferry/SampleCodec.h"
#include "ferry/Session.h"
#include "ferry/Spool.h"
#include "ferry/Stream.h"
#include "support/TestSupport.h"

namespace {

using ferry::metrics::Sample;
using ferry::test::Process;
using ferry::test::TempDir;

// The full path of a program on PATH (Process runs it without a PATH search), or "".
std::string which(const std::string& program)
{
    auto r = ferry::test::run({"sh", "-c", "command -v " + program});
    while (!r.out.empty() && r.out.back() == '\n')
        r.out.pop_back();
    return r.exitCode == 0 ? r.out : std::string();
}
bool have(const std::string& program)
{
    return !which(program).empty();
}

std::string get(const std::string& url)
{
    const auto r = ferry::test::run({"curl", "-sS", "--fail", "--max-time", "20", url}, {}, {}, std::chrono::seconds(30));
    if (r.exitCode != 0)
        throw std::runtime_error("GET " + url + " failed: " + r.err);
    return r.out;
}

std::string meminfoBytes(const std::string& key)
{
    std::ifstream in("/proc/meminfo");
    std::string k, v;
    while (in >> k >> v) {
        if (k == key + ":")
            return ferry::metrics::formatValue(std::stod(v) * 1024);
        std::getline(in, k);
    }
    return {};
}

// A node's records: the real sampler into its real spool, then stored by
// the master's real store, as a push would.
void sampleAndStore(const TempDir& dir, const std::string& node, int runs)
{
    std::filesystem::create_directories(dir / "node-etc/plugins.d");
    std::filesystem::create_directories(dir / "node-state");
    ferry::test::writeFile(dir / "node-etc/plugins.d/app",
                           "#!/bin/sh\necho '# TYPE app_queue_length gauge'\necho 'app_queue_length{queue=\"in\"} 42'\n",
                           0755);
    const std::map<std::string, std::string> env = {{"FERRY_CONFIG_DIR", dir / "node-etc"},
                                                    {"FERRY_STATE_DIR", dir / "node-state"},
                                                    {"FERRY_RUNTIME_DIR", dir / "node-state"}};
    for (int i = 0; i < runs; ++i) {
        const auto r = ferry::test::run({ferry::test::buildPath("services/sampler/ferry-sampler")}, env);
        ASSERT_EQ(r.exitCode, 0) << r.err;
    }
    ferry::Spool spool(dir / "node-state/spool.db", {});
    const auto records = spool.readAfter(0, 10000, 64 << 20);
    ASSERT_FALSE(records.empty());
    ferry::MasterStore store(dir / "master.db");
    store.addNode(node, "secret");
    const auto ack = store.storeBatch(node, ferry::Epoch(), records, "push");
    ASSERT_EQ(ack.newlyStored, records.size());
}

class APrometheus : public ::testing::Test {
protected:
    TempDir dir;
    int promPort = 0;
    int metricsPort = 0;
    std::optional<Process> prometheus;
    std::optional<Process> metricsd;

    void SetUp() override
    {
        if (!have("prometheus") || !have("systemd-socket-activate") || !have("curl"))
            GTEST_SKIP() << "needs Debian's prometheus, systemd-socket-activate and curl (scripts/install-deps)";
    }

    void startMetricsd()
    {
        metricsPort = ferry::test::freePort();
        metricsd.emplace(std::vector<std::string>{which("systemd-socket-activate"), "-l",
                                                  "127.0.0.1:" + std::to_string(metricsPort),
                                                  ferry::test::buildPath("services/metricsd/ferry-metricsd"),
                                                  "--store=" + (dir / "master.db"), "--idle-timeout=120"},
                         std::map<std::string, std::string>{}, dir / "metricsd.log");
    }

    // webArgs: --web.config.file and the like; curlArgs: what curl needs to
    // reach it then (--cacert, -u).
    void startPrometheus(std::vector<std::string> webArgs = {}, std::vector<std::string> curlArgs = {},
                         std::string scheme = "http")
    {
        m_curlArgs = std::move(curlArgs);
        m_scheme = scheme;
        promPort = ferry::test::freePort();
        ferry::test::writeFile(dir / "prometheus.yml",
                               "global:\n  scrape_interval: 1s\n  evaluation_interval: 1s\n"
                               "storage:\n  tsdb:\n    out_of_order_time_window: 7d\n"
                               "scrape_configs:\n  - job_name: ferry\n    static_configs:\n"
                               "      - targets: ['127.0.0.1:" + std::to_string(metricsPort) + "']\n");
        std::vector<std::string> args{which("prometheus"),
                                      "--config.file=" + (dir / "prometheus.yml"),
                                      "--storage.tsdb.path=" + (dir / "prom-data"),
                                      "--web.listen-address=127.0.0.1:" + std::to_string(promPort),
                                      "--web.enable-remote-write-receiver",
                                      "--log.level=warn"};
        args.insert(args.end(), webArgs.begin(), webArgs.end());
        prometheus.emplace(args, std::map<std::string, std::string>{}, dir / "prometheus.log");
        ASSERT_TRUE(ferry::test::waitUntil(
            [&] {
                return ferry::test::run(curl({"-sf", "-o", "/dev/null", promUrl() + "/-/ready"})).exitCode == 0;
            },
            std::chrono::seconds(30), std::chrono::milliseconds(100)))
            << ferry::test::readFile(dir / "prometheus.log");
    }

    nlohmann::json query(const std::string& q)
    {
        const auto r = ferry::test::run(curl({"-sS", "--fail", "--max-time", "10", "-G", promUrl() + "/api/v1/query",
                                              "--data-urlencode", "query=" + q}));
        if (r.exitCode != 0)
            return nlohmann::json::array();
        return nlohmann::json::parse(r.out)["data"]["result"];
    }

    // Samples ferry-remote-write counted as accepted, from its state file.
    std::int64_t samplesSent()
    {
        if (!std::filesystem::exists(dir / "remote-write.db"))
            return 0;
        ferry::Database db(dir / "remote-write.db", true);
        ferry::Statement st(db, "SELECT COALESCE(SUM(value), 0) FROM counters WHERE name = 'samples_sent'");
        return st.step() ? st.int64(0) : 0;
    }

    std::string promUrl() const { return m_scheme + "://127.0.0.1:" + std::to_string(promPort); }
    std::vector<std::string> curl(std::vector<std::string> args) const
    {
        args.insert(args.begin(), m_curlArgs.begin(), m_curlArgs.end());
        args.insert(args.begin(), "curl");
        return args;
    }
    std::vector<std::string> m_curlArgs;
    std::string m_scheme = "http";

    nlohmann::json waitFor(const std::string& q)
    {
        nlohmann::json result = nlohmann::json::array();
        ferry::test::waitUntil(
            [&] {
                result = query(q);
                return !result.empty();
            },
            std::chrono::seconds(40), std::chrono::milliseconds(250));
        return result;
    }
};

TEST_F(APrometheus, ScrapesANodesSeriesFromTheMasterWithTheRightLabels)
{
    sampleAndStore(dir, "node-a", 2);
    startMetricsd();
    startPrometheus();

    const auto load = waitFor("node_load1{node=\"node-a\"}");
    ASSERT_EQ(load.size(), 1u) << ferry::test::readFile(dir / "prometheus.log") << ferry::test::readFile(dir / "metricsd.log");
    std::set<std::string> labels;
    for (const auto& [k, v] : load[0]["metric"].items())
        labels.insert(k);
    EXPECT_EQ(labels, (std::set<std::string>{"__name__", "instance", "job", "node"}));
    EXPECT_EQ(load[0]["metric"]["job"], "ferry");

    const auto total = query("node_memory_MemTotal_bytes{node=\"node-a\"}");
    ASSERT_EQ(total.size(), 1u);
    EXPECT_EQ(std::stod(total[0]["value"][1].get<std::string>()), std::stod(meminfoBytes("MemTotal")));
    EXPECT_EQ(query("node_memory_MemAvailable_bytes{node=\"node-a\"}").size(), 1u);

    std::set<std::string> devices;
    for (const auto& s : query("node_network_receive_bytes_total{node=\"node-a\"}"))
        devices.insert(s["metric"]["device"].get<std::string>());
    std::set<std::string> expected;
    {
        std::ifstream in("/proc/net/dev");
        std::string line;
        while (std::getline(in, line))
            if (auto c = line.find(':'); c != std::string::npos) {
                auto d = line.substr(0, c);
                d.erase(0, d.find_first_not_of(' '));
                if (d != "lo")
                    expected.insert(d);
            }
    }
    EXPECT_EQ(devices, expected);
    EXPECT_EQ(query("node_network_transmit_packets_total{node=\"node-a\"}").size(), expected.size());
    EXPECT_EQ(query("count(node_cpu_seconds_total{node=\"node-a\",mode=\"idle\"})")[0]["value"][1],
              std::to_string(::sysconf(_SC_NPROCESSORS_CONF)));

    const auto plugin = query("app_queue_length{node=\"node-a\",queue=\"in\"}");
    ASSERT_EQ(plugin.size(), 1u) << "a plugin's series, with its own label";
    EXPECT_EQ(plugin[0]["value"][1], "42");

    const auto accepted = query("ferry_nodes{state=\"accepted\"}");
    ASSERT_EQ(accepted.size(), 1u);
    EXPECT_EQ(accepted[0]["value"][1], "1");
    const auto lag = query("ferry_node_lag_seconds{node=\"node-a\"}");
    ASSERT_EQ(lag.size(), 1u);
    EXPECT_LT(std::stod(lag[0]["value"][1].get<std::string>()), 120);
    EXPECT_EQ(query("ferry_node_records_stored_total{node=\"node-a\"}").size(), 1u);

    // The master's own counters (master_counters), scraped and moving: the
    // same records stored again are refused as duplicates, a reinstall is
    // counted as it is decided.
    const auto stored = query("ferry_records_stored_total{via=\"push\"}");
    ASSERT_EQ(stored.size(), 1u) << get("http://127.0.0.1:" + std::to_string(metricsPort) + "/metrics").substr(0, 4000);
    const std::string before = stored[0]["value"][1];
    {
        ferry::MasterStore store(dir / "master.db");
        const auto again = store.records("node-a", ferry::Epoch(), 0, 100000);
        store.storeBatch("node-a", ferry::Epoch(), again, "pull");
        // A new spool of the node (its records came with the legacy epoch).
        store.admitEpoch("node-a", ferry::Epoch::random(), "192.0.2.7");
    }
    const auto dups = waitFor("ferry_duplicates_refused_total{via=\"pull\"}");
    ASSERT_EQ(dups.size(), 1u);
    EXPECT_EQ(dups[0]["value"][1], before) << "every record stored again was refused";
    const auto epochs = waitFor("ferry_epochs_new_total{kind=\"reinstall\"}");
    ASSERT_EQ(epochs.size(), 1u);
    EXPECT_EQ(epochs[0]["value"][1], "1");
}

// A receiver that misbehaves: it closes each connection after reading part
// of the request, or answers every request with a fixed status.
class BadReceiver {
public:
    explicit BadReceiver(std::string answer) : m_answer(std::move(answer))
    {
        m_fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
        sockaddr_in a{};
        a.sin_family = AF_INET;
        a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        ::bind(m_fd, reinterpret_cast<sockaddr*>(&a), sizeof a);
        socklen_t len = sizeof a;
        ::getsockname(m_fd, reinterpret_cast<sockaddr*>(&a), &len);
        m_port = ntohs(a.sin_port);
        ::listen(m_fd, 16);
        m_thread = std::thread([this] { loop(); });
    }
    ~BadReceiver()
    {
        m_stop = true;
        m_thread.join();
        ::close(m_fd);
    }
    std::string url() const { return "http://127.0.0.1:" + std::to_string(m_port) + "/api/v1/write"; }
    int connections() const { return m_connections; }
    // The first bytes of the first request (its headers).
    std::string firstRequest()
    {
        std::lock_guard lock(m_mutex);
        return m_request;
    }

private:
    std::mutex m_mutex;
    std::string m_request;
    void loop()
    {
        while (!m_stop) {
            pollfd p{m_fd, POLLIN, 0};
            if (::poll(&p, 1, 100) <= 0)
                continue;
            const int c = ::accept4(m_fd, nullptr, nullptr, SOCK_CLOEXEC);
            if (c < 0)
                continue;
            ++m_connections;
            char buf[4096];
            pollfd q{c, POLLIN, 0};
            if (::poll(&q, 1, 2000) > 0) {
                const ssize_t n = ::read(c, buf, sizeof buf); // part of the request
                std::lock_guard lock(m_mutex);
                if (n > 0 && m_request.empty())
                    m_request.assign(buf, static_cast<std::size_t>(n));
            }
            if (!m_answer.empty())
                (void)::write(c, m_answer.data(), m_answer.size());
            ::close(c);
        }
    }
    std::string m_answer;
    int m_fd = -1;
    int m_port = 0;
    std::atomic<bool> m_stop{false};
    std::atomic<int> m_connections{0};
    std::thread m_thread;
};

TEST_F(APrometheus, ReceivesASixHourBacklogByRemoteWriteWithNoGapAndEachSampleOnce)
{
    // Six hours of the sampler, one run a minute, through the spool's own API,
    // stored by the master's store.
    const std::int64_t now = ferry::nowMs();
    const int runs = 360;
    std::size_t stored = 0;
    {
        std::filesystem::create_directories(dir / "node-state");
        ferry::Spool spool(dir / "node-state/spool.db", {});
        for (int i = 0; i < runs; ++i) {
            const std::int64_t t = now - 6 * 3600 * 1000 + static_cast<std::int64_t>(i) * 60000;
            const auto samples = sampler::sampleSystem({}, t);
            stored += samples.size();
            for (const auto& p : ferry::metrics::encodeSamples(samples, t, ferry::kMaxRecordPayload))
                spool.append("metrics", p, t);
        }
        ferry::MasterStore store(dir / "master.db");
        store.addNode("node-b", "secret");
        for (std::uint64_t after = 0;;) {
            const auto batch = spool.readAfter(after, 500, 8 << 20);
            if (batch.empty())
                break;
            store.storeBatch("node-b", ferry::Epoch(), batch, "push");
            after = batch.back().seq;
        }
    }
    auto remoteWrite = [&](const std::string& url) {
        ferry::test::writeFile(dir / "metrics.yml", "remote_write:\n  url: " + url +
                                                        "\n  min_backoff: 0\n  max_backoff: 1s\n  retry_for: 2s\n"
                                                        "  timeout: 5s\n  max_samples_per_send: 2000\n");
        return ferry::test::run({ferry::test::buildPath("services/metricsd/ferry-remote-write"),
                                 "--config=" + (dir / "metrics.yml"), "--store=" + (dir / "master.db"),
                                 "--state=" + (dir / "remote-write.db")},
                                {}, {}, std::chrono::seconds(120));
    };
    auto sentSoFar = [&] { return samplesSent(); };

    // Down, closing mid-request, 503, 401: each run fails with a clear error and sends nothing.
    const auto down = remoteWrite("http://127.0.0.1:" + std::to_string(ferry::test::freePort()) + "/api/v1/write");
    EXPECT_EQ(down.exitCode, 1);
    EXPECT_NE(down.err.find("Failed to remote-write"), std::string::npos) << down.err;
    {
        BadReceiver closing("");
        const auto r = remoteWrite(closing.url());
        EXPECT_EQ(r.exitCode, 1) << r.err;
        EXPECT_GT(closing.connections(), 1) << "retried";
    }
    {
        BadReceiver busy("HTTP/1.1 503 Service Unavailable\r\nContent-Length: 4\r\nConnection: close\r\n\r\nbusy");
        const auto r = remoteWrite(busy.url());
        EXPECT_EQ(r.exitCode, 1);
        EXPECT_NE(r.err.find("HTTP 503: busy"), std::string::npos) << r.err;
    }
    {
        BadReceiver denied("HTTP/1.1 401 Unauthorized\r\nContent-Length: 6\r\nConnection: close\r\n\r\ndenied");
        const auto r = remoteWrite(denied.url());
        EXPECT_EQ(r.exitCode, 1);
        EXPECT_EQ(denied.connections(), 1) << "a 401 is not retried in the same run";
    }
    EXPECT_EQ(sentSoFar(), 0) << "no failed request moved a cursor";

    // The real receiver.
    metricsPort = ferry::test::freePort();
    startPrometheus();
    const auto started = std::chrono::steady_clock::now();
    const auto ok = remoteWrite("http://127.0.0.1:" + std::to_string(promPort) + "/api/v1/write");
    const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count();
    ASSERT_EQ(ok.exitCode, 0) << ok.err << ferry::test::readFile(dir / "prometheus.log");
    EXPECT_EQ(sentSoFar(), static_cast<std::int64_t>(stored)) << "every stored sample was accepted once";
    std::cout << "remote-write: " << stored << " samples (" << runs << " runs x 6 h) in " << seconds << " s\n";

    for (const char* series : {"node_load1", "node_memory_MemTotal_bytes", "node_time_seconds"}) {
        const auto r = query(std::string("count_over_time(") + series + "{node=\"node-b\"}[7h])");
        ASSERT_EQ(r.size(), 1u) << series;
        EXPECT_EQ(r[0]["value"][1], std::to_string(runs)) << series << ": one sample a minute for 6 hours, no gap";
    }
    // node_time_seconds carries its own sampling time: the oldest must be 6 hours back.
    const auto oldest = query("min_over_time(node_time_seconds{node=\"node-b\"}[7h])");
    ASSERT_EQ(oldest.size(), 1u);
    EXPECT_NEAR(std::stod(oldest[0]["value"][1].get<std::string>()), static_cast<double>(now) / 1000 - 6 * 3600, 1);

    // A second run finds nothing new: the cursor is durable.
    const auto again = remoteWrite("http://127.0.0.1:" + std::to_string(promPort) + "/api/v1/write");
    EXPECT_EQ(again.exitCode, 0) << again.err;
    EXPECT_EQ(sentSoFar(), static_cast<std::int64_t>(stored));
    EXPECT_NE(again.err.find("0 samples sent"), std::string::npos) << again.err;
}

TEST_F(APrometheus, ShowsTheNewestSampleOfANodeBackFromAnOutageBeforeItsBacklogArrives)
{
    // A node back from a 6-hour outage: 360 sampler runs queued in its spool.
    const std::int64_t now = ferry::nowMs();
    const int runs = 360;
    const std::int64_t newestMs = now - 6 * 3600 * 1000 + static_cast<std::int64_t>(runs - 1) * 60000;
    std::size_t samples = 0;
    std::filesystem::create_directories(dir / "node-state");
    ferry::Spool spool(dir / "node-state/spool.db", {});
    for (int i = 0; i < runs; ++i) {
        const std::int64_t t = now - 6 * 3600 * 1000 + static_cast<std::int64_t>(i) * 60000;
        const auto sampled = sampler::sampleSystem({}, t);
        samples += sampled.size();
        for (const auto& p : ferry::metrics::encodeSamples(sampled, t, ferry::kMaxRecordPayload))
            spool.append("metrics", p, t);
    }
    const std::uint64_t queued = spool.stats().records;
    const std::string secret = "0123456789abcdef0123456789abcdef";
    ferry::MasterStore store(dir / "master.db");
    store.addNode("node-c", secret);

    metricsPort = ferry::test::freePort();
    startPrometheus();
    ferry::test::writeFile(dir / "metrics.yml", "remote_write:\n  url: http://127.0.0.1:" + std::to_string(promPort) +
                                                    "/api/v1/write\n  timeout: 10s\n  max_samples_per_send: 2000\n");
    auto remoteWrite = [&] {
        const auto r = ferry::test::run({ferry::test::buildPath("services/metricsd/ferry-remote-write"),
                                         "--config=" + (dir / "metrics.yml"), "--store=" + (dir / "master.db"),
                                         "--state=" + (dir / "remote-write.db")},
                                        {}, {}, std::chrono::seconds(120));
        EXPECT_EQ(r.exitCode, 0) << r.err;
    };
    auto count = [&](const std::string& series) -> int {
        const auto r = query("count_over_time(" + series + "{node=\"node-c\"}[7h])");
        return r.size() == 1 ? std::stoi(r[0]["value"][1].get<std::string>()) : 0;
    };

    // One push session over a socket pair: the node's real session code on
    // its real spool, the master's into its real store. After the master
    // committed the first batch, remote-write runs and Prometheus is asked
    // what it knows of the node.
    int sv[2];
    ASSERT_EQ(::socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv), 0);
    const auto started = std::chrono::steady_clock::now();
    auto node = std::async(std::launch::async, [&, fd = sv[1]] {
        ferry::FdStream stream(fd, fd, "master (test)", true);
        ferry::NodeSessionOptions o;
        o.nodeName = "node-c";
        o.secret = secret;
        o.masterId = "test-master"; // the store holds the node secret itself (a legacy credential)
        o.batchRecords = 30;        // half an hour of runs per batch
        o.ioTimeout = std::chrono::seconds(60);
        return ferry::runNodeSession(stream, spool, o);
    });
    ferry::FdStream masterEnd(sv[0], sv[0], "node-c (test)", true);
    ferry::MasterSessionOptions mo;
    mo.ioTimeout = std::chrono::seconds(60);
    int commits = 0;
    double newestVisibleS = 0;
    double newestValue = 0;
    int backlogVisibleThen = -1;
    mo.afterCommit = [&] {
        if (++commits != 1)
            return;
        remoteWrite();
        const auto r = query("node_time_seconds{node=\"node-c\"}");
        if (r.size() == 1) {
            newestValue = std::stod(r[0]["value"][1].get<std::string>());
            newestVisibleS = std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count();
        }
        backlogVisibleThen = count("node_time_seconds");
    };
    const auto m = ferry::runMasterSession(masterEnd, store, mo);
    const auto n = node.get();
    const double sessionS = std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count();

    EXPECT_NEAR(newestValue, static_cast<double>(newestMs) / 1000, 1)
        << "after the first batch, Prometheus has the node's newest sample";
    EXPECT_EQ(backlogVisibleThen, 30) << "and only the head lane: the backlog had not arrived yet";
    EXPECT_EQ(m.headRecords, 30u);
    EXPECT_EQ(n.headRecords, 30u);
    EXPECT_EQ(m.newlyStored, queued);
    EXPECT_EQ(m.duplicates, 0u);
    EXPECT_EQ(spool.stats().records, 0u);
    EXPECT_EQ(store.countRecords("node-c"), queued);

    // The backlog follows; afterwards 6 hours with no gap, every sample once.
    remoteWrite();
    for (const char* series : {"node_load1", "node_memory_MemTotal_bytes", "node_time_seconds"})
        EXPECT_EQ(count(series), runs) << series << ": one sample a minute for 6 hours, each once";
    EXPECT_EQ(samplesSent(), static_cast<std::int64_t>(samples)) << "every stored sample was sent once";
    std::cout << "newest first: " << queued << " records (" << samples << " samples, 6 h) queued; the newest sample "
              << "was queryable in Prometheus " << newestVisibleS << " s after the session started, with "
              << backlogVisibleThen << " of " << runs << " runs there; session done after " << sessionS
              << " s; afterwards " << count("node_time_seconds") << " of " << runs << " runs, " << samplesSent()
              << " samples sent once\n";
}

TEST_F(APrometheus, ReceivesRemoteWriteOverHttpsWithBasicAuthAndRefusesAWrongPasswordOrCaLosingNothing)
{
    if (!have("openssl") || !have("python3"))
        GTEST_SKIP() << "needs openssl and python3 (for the bcrypt hash of the receiver's password)";
    // Certificates made here: a CA, the receiver's certificate for
    // 127.0.0.1 signed by it, and another CA that did not sign it.
    auto sh = [&](const std::string& command) {
        const auto r = ferry::test::run({"sh", "-c", "cd '" + dir.path() + "' && " + command});
        ASSERT_EQ(r.exitCode, 0) << command << ": " << r.err;
    };
    const std::string ec = "-newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes";
    sh("openssl req -x509 " + ec + " -keyout ca.key -out ca.pem -days 1 -subj /CN=ferry-test-ca 2>/dev/null");
    sh("openssl req -x509 " + ec + " -keyout other.key -out other-ca.pem -days 1 -subj /CN=another-ca 2>/dev/null");
    sh("openssl req " + ec + " -keyout server.key -out server.csr -subj /CN=127.0.0.1 2>/dev/null");
    sh("printf 'subjectAltName=IP:127.0.0.1\n' > san.cnf && openssl x509 -req -in server.csr -CA ca.pem -CAkey ca.key "
       "-CAcreateserial -out server.pem -days 1 -extfile san.cnf 2>/dev/null");
    const std::string password = "correct horse battery";
    const auto hash = ferry::test::run(
        {"python3", "-W", "ignore", "-c",
         "import crypt,sys; print(crypt.crypt(sys.argv[1], crypt.mksalt(crypt.METHOD_BLOWFISH, rounds=1024)))",
         password});
    ASSERT_EQ(hash.exitCode, 0) << hash.err;
    ASSERT_EQ(hash.out.rfind("$2", 0), 0u) << hash.out;
    ferry::test::writeFile(dir / "web.yml", "tls_server_config:\n  cert_file: " + (dir / "server.pem") +
                                                "\n  key_file: " + (dir / "server.key") +
                                                "\nbasic_auth_users:\n  ferry: '" +
                                                hash.out.substr(0, hash.out.find('\n')) + "'\n");
    metricsPort = ferry::test::freePort();
    startPrometheus({"--web.config.file=" + (dir / "web.yml")}, {"--cacert", dir / "ca.pem", "-u", "ferry:" + password},
                    "https");
    sampleAndStore(dir, "node-t", 3);

    ferry::test::writeFile(dir / "right.pw", password + "\n");
    ferry::test::writeFile(dir / "wrong.pw", "battery horse correct\n");
    ferry::test::writeFile(dir / "token", "s3cr3t-token\n");
    auto remoteWrite = [&](const std::string& url, const std::string& auth, const std::string& ca,
                           const std::string& state = "remote-write.db") {
        ferry::test::writeFile(dir / "metrics.yml", "remote_write:\n  url: " + url + "\n" + auth +
                                                        (ca.empty() ? "" : "  ca_file: " + ca + "\n") +
                                                        "  min_backoff: 0\n  max_backoff: 1s\n  retry_for: 2s\n"
                                                        "  timeout: 5s\n");
        return ferry::test::run({ferry::test::buildPath("services/metricsd/ferry-remote-write"),
                                 "--config=" + (dir / "metrics.yml"), "--store=" + (dir / "master.db"),
                                 "--state=" + (dir / state)},
                                {}, {}, std::chrono::seconds(60));
    };
    auto sentSoFar = [&] { return samplesSent(); };
    auto cursors = [&]() -> std::int64_t {
        if (!std::filesystem::exists(dir / "remote-write.db"))
            return 0;
        ferry::Database db(dir / "remote-write.db", true);
        ferry::Statement st(db, "SELECT COUNT(*) FROM cursors");
        return st.step() ? st.int64(0) : 0;
    };
    const std::string url = promUrl() + "/api/v1/write";
    const std::string user = "  basic_auth:\n    username: ferry\n    password_file: ";

    const auto wrongPassword = remoteWrite(url, user + (dir / "wrong.pw") + "\n", dir / "ca.pem");
    EXPECT_EQ(wrongPassword.exitCode, 1);
    EXPECT_NE(wrongPassword.err.find("Failed to remote-write to " + url + ": HTTP 401"), std::string::npos)
        << wrongPassword.err;
    EXPECT_NE(wrongPassword.err.find("refused basic_auth user ferry"), std::string::npos) << wrongPassword.err;

    const auto wrongCa = remoteWrite(url, user + (dir / "right.pw") + "\n", dir / "other-ca.pem");
    EXPECT_EQ(wrongCa.exitCode, 1);
    EXPECT_NE(wrongCa.err.find("Failed to remote-write to " + url + ": SSL certificate problem"), std::string::npos)
        << wrongCa.err;
    EXPECT_NE(wrongCa.err.find("does not verify against ca_file " + (dir / "other-ca.pem")), std::string::npos)
        << wrongCa.err;

    const auto noCa = remoteWrite(url, user + (dir / "right.pw") + "\n", "");
    EXPECT_EQ(noCa.exitCode, 1);
    EXPECT_NE(noCa.err.find("set remote_write: ca_file"), std::string::npos) << noCa.err;
    EXPECT_EQ(sentSoFar(), 0) << "nothing counted as sent";
    EXPECT_EQ(cursors(), 0) << "no cursor moved";

    const auto ok = remoteWrite(url, user + (dir / "right.pw") + "\n", dir / "ca.pem");
    ASSERT_EQ(ok.exitCode, 0) << ok.err << ferry::test::readFile(dir / "prometheus.log");
    const auto load = query("count_over_time(node_load1{node=\"node-t\"}[1h])");
    ASSERT_EQ(load.size(), 1u);
    EXPECT_EQ(load[0]["value"][1], "3") << "the three sampler runs, each once";
    const auto sent = sentSoFar();
    EXPECT_GT(sent, 0);
    std::cout << "https + basic auth: wrong password -> " << wrongPassword.err.substr(0, wrongPassword.err.find('\n'))
              << "\nwrong CA -> " << wrongCa.err.substr(0, wrongCa.err.find('\n')) << "\nright -> " << sent
              << " samples sent\n";

    // A bearer token travels as Prometheus's remote_write sends it; a
    // refused token is named as such.
    BadReceiver refusing("HTTP/1.1 401 Unauthorized\r\nContent-Length: 6\r\nConnection: close\r\n\r\ndenied");
    const auto bearer = remoteWrite(refusing.url(), "  bearer_token_file: " + (dir / "token") + "\n", "", "bearer.db");
    EXPECT_EQ(bearer.exitCode, 1);
    EXPECT_NE(refusing.firstRequest().find("Authorization: Bearer s3cr3t-token\r\n"), std::string::npos)
        << refusing.firstRequest();
    EXPECT_NE(bearer.err.find("refused the bearer token"), std::string::npos) << bearer.err;
    EXPECT_EQ(sentSoFar(), sent) << "the refused run sent nothing more";
}

// How close a Ferry sample must be to node_exporter's, taken at the same
// moment (node_exporter scraped just before and just after the sampler ran).
struct Tolerance {
    double absolute = 0;
    double relative = 0;
};
Tolerance toleranceFor(const std::string& name, ferry::metrics::MetricType type)
{
    if (name == "node_time_seconds")
        return {5, 0};
    if (name.starts_with("node_load"))
        return {1.0, 0.25};
    if (name.starts_with("node_procs_"))
        return {20, 0};
    if (name.starts_with("node_memory_"))
        return {64.0 * 1024 * 1024, 0.10};
    if (name == "node_filesystem_free_bytes" || name == "node_filesystem_avail_bytes" ||
        name == "node_filesystem_files_free")
        return {64.0 * 1024 * 1024, 0.01};
    if (type == ferry::metrics::MetricType::Counter)
        return {1, 0};  // beyond the before/after bracket
    return {0, 0};      // exact: sizes, boot time, flags
}

std::string seriesKey(const Sample& s)
{
    std::string k = s.name + "{";
    for (const auto& l : s.labels)
        k += l.name + "=" + l.value + ",";
    return k + "}";
}

TEST(FerrysSampler, MatchesNodeExporterFamiliesLabelsAndValues)
{
    if (!have("prometheus-node-exporter") || !have("curl"))
        GTEST_SKIP() << "needs Debian's prometheus-node-exporter and curl (scripts/install-deps)";
    TempDir dir;
    const int port = ferry::test::freePort();
    Process exporter({which("prometheus-node-exporter"), "--web.listen-address=127.0.0.1:" + std::to_string(port),
                      "--no-collector.systemd"},
                     {}, dir / "node-exporter.log");
    const std::string url = "http://127.0.0.1:" + std::to_string(port) + "/metrics";
    ASSERT_TRUE(ferry::test::waitUntil(
        [&] { return ferry::test::run({"curl", "-sf", "-o", "/dev/null", url}).exitCode == 0; },
        std::chrono::seconds(20), std::chrono::milliseconds(50)));

    const auto before = ferry::metrics::parseText(get(url), {.maxSeries = 100000});
    std::filesystem::create_directories(dir / "etc");
    std::filesystem::create_directories(dir / "state");
    const auto r = ferry::test::run({ferry::test::buildPath("services/sampler/ferry-sampler")},
                                    {{"FERRY_CONFIG_DIR", dir / "etc"}, {"FERRY_STATE_DIR", dir / "state"}});
    ASSERT_EQ(r.exitCode, 0) << r.err;
    const auto after = ferry::metrics::parseText(get(url), {.maxSeries = 100000});
    EXPECT_TRUE(before.errors.empty()) << "our parser reads node_exporter's output: " << before.errors.front().reason;

    ferry::Spool spool(dir / "state/spool.db", {});
    std::vector<Sample> ours;
    for (const auto& rec : spool.readAfter(0, 100, 1 << 20))
        for (auto& s : ferry::metrics::decodeRecord(rec.kind, rec.payload, rec.timeMs))
            ours.push_back(std::move(s));
    ASSERT_GT(ours.size(), 50u);

    std::map<std::string, const Sample*> neBefore, neAfter;
    std::map<std::string, std::set<std::set<std::string>>> neLabelNames;
    std::map<std::string, std::set<std::string>> neSeries;
    for (const auto& s : before.samples) {
        neBefore[seriesKey(s)] = &s;
        std::set<std::string> names;
        for (const auto& l : s.labels)
            names.insert(l.name);
        neLabelNames[s.name].insert(names);
        neSeries[s.name].insert(seriesKey(s));
    }
    for (const auto& s : after.samples)
        neAfter[seriesKey(s)] = &s;

    std::map<std::string, std::set<std::string>> ourSeries;
    std::size_t compared = 0;
    for (const auto& s : ours) {
        SCOPED_TRACE(seriesKey(s));
        ourSeries[s.name].insert(seriesKey(s));
        ASSERT_TRUE(neLabelNames.contains(s.name)) << "node_exporter has no family " << s.name;
        std::set<std::string> names;
        for (const auto& l : s.labels)
            names.insert(l.name);
        EXPECT_TRUE(neLabelNames[s.name].contains(names)) << "label names differ from node_exporter's";
        const auto b = neBefore.find(seriesKey(s));
        const auto a = neAfter.find(seriesKey(s));
        if (b == neBefore.end() || a == neAfter.end())
            continue;
        EXPECT_EQ(b->second->type, s.type) << "metric type";
        const auto tol = toleranceFor(s.name, s.type);
        const double lo = std::min(b->second->value, a->second->value);
        const double hi = std::max(b->second->value, a->second->value);
        const double slack = std::max(tol.absolute, tol.relative * std::fabs(hi));
        EXPECT_GE(s.value, lo - slack) << "node_exporter read " << lo << " … " << hi;
        EXPECT_LE(s.value, hi + slack) << "node_exporter read " << lo << " … " << hi;
        ++compared;
    }
    // The same series (label values too) for the families with labels.
    for (const char* family : {"node_cpu_seconds_total", "node_filesystem_size_bytes", "node_filesystem_avail_bytes",
                               "node_network_receive_bytes_total", "node_network_transmit_errs_total"})
        EXPECT_EQ(ourSeries[family], neSeries[family]) << family;
    EXPECT_GT(compared, ours.size() * 9 / 10) << "nearly every Ferry series has its node_exporter twin";
    std::cout << "compared " << compared << " of " << ours.size() << " Ferry series with node_exporter's\n";
}

} // namespace
