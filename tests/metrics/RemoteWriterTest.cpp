// The remote-write core with a real master.db and state file; only the HTTP
// edge is substituted, by a receiver that decodes what it gets (snappy +
// protobuf) and answers like Prometheus would.

#include <gtest/gtest.h>

#include <snappy.h>

#include <functional>
#include <filesystem>
#include <set>

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

} // namespace
} // namespace metricsd
