// The remote-write core with a real master.db and state file; only the HTTP
// edge is substituted, by a receiver that decodes what it gets (snappy +
// protobuf) and answers like Prometheus would.

#include <gtest/gtest.h>

#include <snappy.h>

#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <filesystem>
#include <functional>
#include <set>
#include <thread>

#include "CurlSender.h"
#include "RemoteWriter.h"
#include "StoreReader.h"
#include "ferry/Epoch.h"
#include "ferry/MasterStore.h"
#include "ferry/SampleCodec.h"
#include "remote_write.pb.h"
#include "support/TestSupport.h"

namespace metricsd {
namespace {

using ferry::metrics::MetricType;

class FakeReceiver : public RemoteWriteSender {
public:
    std::function<HttpResult(const prometheus::WriteRequest&, int call)> answer;
    std::vector<prometheus::WriteRequest> accepted;
    int calls = 0;

    HttpResult post(const std::string& body) override
    {
        std::string raw;
        EXPECT_TRUE(snappy::Uncompress(body.data(), body.size(), &raw));
        prometheus::WriteRequest req;
        EXPECT_TRUE(req.ParseFromString(raw));
        for (const auto& ts : req.timeseries()) {
            for (int i = 1; i < ts.labels_size(); ++i)
                EXPECT_LT(ts.labels(i - 1).name(), ts.labels(i).name()) << "labels sorted by name";
            for (int i = 1; i < ts.samples_size(); ++i)
                EXPECT_LE(ts.samples(i - 1).timestamp(), ts.samples(i).timestamp()) << "samples in time order";
        }
        const HttpResult r = answer(req, calls++);
        if (r.status / 100 == 2)
            accepted.push_back(req);
        return r;
    }
    std::multiset<std::int64_t> acceptedTimes() const
    {
        std::multiset<std::int64_t> out;
        for (const auto& req : accepted)
            for (const auto& ts : req.timeseries())
                for (const auto& s : ts.samples())
                    out.insert(s.timestamp());
        return out;
    }
};

class ARemoteWriter : public ::testing::Test {
protected:
    ferry::test::TempDir dir;
    RemoteWriteConfig config;
    FakeReceiver receiver;
    std::vector<std::chrono::milliseconds> sleeps;
    const std::int64_t t0 = 1700000000000;

    void SetUp() override
    {
        config.url = "http://127.0.0.1:1/api/v1/write";
        config.maxSamplesPerSend = 1000;
        config.minBackoff = std::chrono::milliseconds(10);
        config.maxBackoff = std::chrono::milliseconds(40);
        config.retryFor = std::chrono::milliseconds(1000);
        ferry::MasterStore store(dir / "master.db");
        store.addNode("n", "s");
        std::vector<ferry::Record> records;
        for (int i = 1; i <= 5; ++i) {
            const std::int64_t t = t0 + i * 60000;
            records.push_back({static_cast<std::uint64_t>(i), t, "metrics",
                               ferry::metrics::encodeSamples({{"node_load1", MetricType::Gauge, {}, 0.5 * i, 0},
                                                              {"up_total", MetricType::Counter, {{"node", "x"}}, 1.0 * i, 0}},
                                                             t, 1 << 20)
                                   .at(0)});
        }
        store.storeBatch("n", ferry::Epoch(), records, "push");
    }

    RemoteWriteResult runOnce()
    {
        StoreReader store(dir / "master.db");
        RemoteWriteState state(dir / "remote-write.db", false);
        RemoteWriter writer(config, store, state, receiver, [&](std::chrono::milliseconds d) { sleeps.push_back(d); });
        return writer.run();
    }
    std::map<std::string, std::int64_t> counters() { return RemoteWriteState(dir / "remote-write.db", true).counters(); }
};

TEST_F(ARemoteWriter, SendsEverythingOnceWithNodeLabelsAndKeepsItsCursorAcrossRuns)
{
    receiver.answer = [](const prometheus::WriteRequest&, int) { return HttpResult{204, {}, {}}; };
    auto r = runOnce();
    EXPECT_TRUE(r.complete);
    EXPECT_EQ(r.samplesSent, 10u);
    ASSERT_EQ(receiver.accepted.size(), 1u);
    std::set<std::string> names;
    for (const auto& ts : receiver.accepted[0].timeseries()) {
        std::map<std::string, std::string> l;
        for (const auto& x : ts.labels())
            l[x.name()] = x.value();
        EXPECT_EQ(l["node"], "n");
        if (l["__name__"] == "up_total") {
            EXPECT_EQ(l["exported_node"], "x") << "the series' own node label is kept aside";
        }
        names.insert(l["__name__"]);
        EXPECT_EQ(ts.samples_size(), 5);
    }
    EXPECT_EQ(names, (std::set<std::string>{"node_load1", "up_total"}));
    r = runOnce();
    EXPECT_EQ(r.samplesSent, 0u) << "nothing is sent twice";
    EXPECT_EQ(receiver.calls, 1);
}

TEST_F(ARemoteWriter, RetriesServerErrorsWithDoublingBackoffAndStopsAt4xxWithoutMovingTheCursor)
{
    receiver.answer = [](const prometheus::WriteRequest&, int call) {
        return call < 3 ? HttpResult{503, "busy", {}} : HttpResult{204, {}, {}};
    };
    auto r = runOnce();
    EXPECT_TRUE(r.complete);
    EXPECT_EQ(r.samplesSent, 10u);
    EXPECT_EQ(sleeps, (std::vector<std::chrono::milliseconds>{std::chrono::milliseconds(10), std::chrono::milliseconds(20),
                                                               std::chrono::milliseconds(40)}));

    receiver = {};
    receiver.answer = [](const prometheus::WriteRequest&, int) { return HttpResult{401, "unauthorized", {}}; };
    std::filesystem::remove(dir / "remote-write.db");
    r = runOnce();
    EXPECT_FALSE(r.complete);
    EXPECT_NE(r.error.find("HTTP 401"), std::string::npos) << r.error;
    EXPECT_EQ(receiver.calls, 1);
    EXPECT_EQ(counters()["samples_sent"], 0);

    receiver = {};
    receiver.answer = [](const prometheus::WriteRequest&, int) { return HttpResult{0, {}, "Connection refused"}; };
    r = runOnce();
    EXPECT_FALSE(r.complete);
    EXPECT_GT(receiver.calls, 3) << "retried until retry_for";
    EXPECT_EQ(counters()["samples_sent"], 0);
}

TEST_F(ARemoteWriter, SkipsOnlyTheRecordTheReceiverRefusesOnItsOwn)
{
    const std::int64_t bad = t0 + 3 * 60000;
    receiver.answer = [&](const prometheus::WriteRequest& req, int) {
        for (const auto& ts : req.timeseries())
            for (const auto& s : ts.samples())
                if (s.timestamp() == bad)
                    return HttpResult{400, "out of order sample", {}};
        return HttpResult{204, {}, {}};
    };
    const auto r = runOnce();
    EXPECT_TRUE(r.complete);
    EXPECT_EQ(r.recordsRejected, 1u);
    EXPECT_EQ(r.samplesSent, 8u);
    EXPECT_EQ(receiver.acceptedTimes().count(bad), 0u);
    EXPECT_EQ(receiver.acceptedTimes().size(), 8u);
    EXPECT_EQ(counters()["samples_rejected"], 2);
}

// The HTTP edge for real: libcurl against loopback listeners that misbehave
// the ways a receiver does (down, slow, closing mid-request, 5xx), then one
// that accepts. Nothing is counted sent, and no cursor moves, until the
// receiver answers 2xx; after that every sample arrives once.
class ALoopbackReceiver {
public:
    enum class Mode { Accept, Slow, CloseMidRequest, ServerError };

    explicit ALoopbackReceiver(Mode mode) : m_mode(mode)
    {
        m_fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
        sockaddr_in a{};
        a.sin_family = AF_INET;
        a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        socklen_t len = sizeof a;
        if (m_fd < 0 || ::bind(m_fd, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0 || ::listen(m_fd, 16) != 0 ||
            ::getsockname(m_fd, reinterpret_cast<sockaddr*>(&a), &len) != 0)
            throw std::runtime_error("loopback listener");
        m_port = ntohs(a.sin_port);
        m_thread = std::thread([this] { serve(); });
    }
    ~ALoopbackReceiver()
    {
        m_stop = true;
        ::shutdown(m_fd, SHUT_RDWR);
        m_thread.join();
        ::close(m_fd);
    }
    std::string url() const { return "http://127.0.0.1:" + std::to_string(m_port) + "/api/v1/write"; }
    int requests() const { return m_requests; }
    std::uint64_t samplesAccepted() const { return m_samples; }

private:
    // Reads one request (headers, then Content-Length bytes); false if the
    // peer went away first.
    static bool readRequest(int c, std::string& body)
    {
        std::string in;
        char buf[65536];
        std::size_t need = std::string::npos;
        while (true) {
            const auto head = in.find("\r\n\r\n");
            if (head != std::string::npos && need == std::string::npos) {
                const auto at = in.find("Content-Length: ");
                need = head + 4 + (at == std::string::npos ? 0 : std::stoul(in.substr(at + 16)));
            }
            if (need != std::string::npos && in.size() >= need) {
                body = in.substr(in.find("\r\n\r\n") + 4);
                return true;
            }
            const ssize_t n = ::read(c, buf, sizeof buf);
            if (n <= 0)
                return false;
            in.append(buf, static_cast<std::size_t>(n));
        }
    }
    void serve()
    {
        while (!m_stop) {
            const int c = ::accept4(m_fd, nullptr, nullptr, SOCK_CLOEXEC);
            if (c < 0)
                return;
            ++m_requests;
            std::string body;
            if (m_mode == Mode::CloseMidRequest) {
                char buf[16];
                (void)!::read(c, buf, sizeof buf);
                ::close(c);
                continue;
            }
            while (readRequest(c, body)) {
                if (m_mode == Mode::Slow) {
                    std::this_thread::sleep_for(std::chrono::milliseconds(800));
                    break;
                }
                if (m_mode == Mode::ServerError) {
                    const std::string r = "HTTP/1.1 503 Service Unavailable\r\nContent-Length: 4\r\n\r\nbusy";
                    (void)!::write(c, r.data(), r.size());
                    continue;
                }
                std::string raw;
                prometheus::WriteRequest req;
                if (snappy::Uncompress(body.data(), body.size(), &raw) && req.ParseFromString(raw))
                    for (const auto& ts : req.timeseries())
                        m_samples += static_cast<std::uint64_t>(ts.samples_size());
                const std::string r = "HTTP/1.1 204 No Content\r\n\r\n";
                (void)!::write(c, r.data(), r.size());
            }
            ::close(c);
        }
    }

    Mode m_mode;
    int m_fd = -1;
    std::uint16_t m_port = 0;
    std::atomic<bool> m_stop{false};
    std::atomic<int> m_requests{0};
    std::atomic<std::uint64_t> m_samples{0};
    std::thread m_thread;
};

TEST_F(ARemoteWriter, OverRealHttpLosesNothingWhenTheReceiverIsDownSlowClosingOrFailing)
{
    config.timeout = std::chrono::milliseconds(300);
    config.retryFor = std::chrono::milliseconds(700);
    auto runAgainst = [&](const std::string& url) {
        config.url = url;
        CurlSender sender(config);
        StoreReader store(dir / "master.db");
        RemoteWriteState state(dir / "remote-write.db", false);
        RemoteWriter writer(config, store, state, sender,
                            [](std::chrono::milliseconds d) { std::this_thread::sleep_for(d); });
        return writer.run();
    };
    std::string downUrl;
    {
        // A port that was just free: nothing listens there.
        ALoopbackReceiver gone(ALoopbackReceiver::Mode::Accept);
        downUrl = gone.url();
    }
    auto r = runAgainst(downUrl);
    EXPECT_FALSE(r.complete);
    EXPECT_NE(r.error.find("127.0.0.1"), std::string::npos) << "the error names the receiver: " << r.error;
    EXPECT_EQ(counters()["samples_sent"], 0);

    for (auto mode : {ALoopbackReceiver::Mode::Slow, ALoopbackReceiver::Mode::CloseMidRequest,
                      ALoopbackReceiver::Mode::ServerError}) {
        ALoopbackReceiver bad(mode);
        const auto started = std::chrono::steady_clock::now();
        r = runAgainst(bad.url());
        const auto took = std::chrono::steady_clock::now() - started;
        EXPECT_FALSE(r.complete) << static_cast<int>(mode);
        EXPECT_FALSE(r.error.empty()) << static_cast<int>(mode);
        EXPECT_GE(bad.requests(), 1) << static_cast<int>(mode);
        // Bounded: retry_for plus one request's timeout, with slack for a loaded machine.
        EXPECT_LT(took, std::chrono::seconds(5)) << static_cast<int>(mode);
        EXPECT_EQ(counters()["samples_sent"], 0) << static_cast<int>(mode) << ": " << r.error;
    }

    ALoopbackReceiver good(ALoopbackReceiver::Mode::Accept);
    r = runAgainst(good.url());
    EXPECT_TRUE(r.complete) << r.error;
    EXPECT_EQ(r.samplesSent, 10u);
    EXPECT_EQ(good.samplesAccepted(), 10u) << "every sample once, none lost to the failed runs";
    r = runAgainst(good.url());
    EXPECT_EQ(r.samplesSent, 0u) << "nothing is sent twice";
}

} // namespace
} // namespace metricsd
