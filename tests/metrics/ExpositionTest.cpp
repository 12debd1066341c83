// metricsd's exposition from a real master.db (the store's own API fills it):
// the latest run per node and kind, original timestamps, a node label, one
// # TYPE per family, Ferry's health, both record-table schemas.

#include <gtest/gtest.h>

#include <map>
#include <set>

#include "Exposition.h"
#include "StoreReader.h"
#include "ferry/Bus.h"
#include "ferry/Epoch.h"
#include "ferry/MasterStore.h"
#include "ferry/Metrics.h"
#include "ferry/SampleCodec.h"
#include "support/TestSupport.h"

namespace metricsd {
namespace {

using ferry::metrics::MetricType;
using ferry::metrics::Sample;

ferry::Record record(std::uint64_t seq, std::int64_t timeMs, const std::string& kind, const std::vector<Sample>& s)
{
    return {seq, timeMs, kind, ferry::metrics::encodeSamples(s, timeMs, 1 << 20).at(0)};
}

std::string expose(const std::string& path, ExpositionOptions options)
{
    StoreReader store(path);
    Exposition e(store, options);
    e.prepare();
    std::string out;
    while (e.next(out, 1000)) {
    }
    return out;
}

const Sample* find(const std::vector<Sample>& v, const std::string& name, const std::string& node,
                   const std::string& label = {}, const std::string& value = {})
{
    for (const auto& s : v) {
        if (s.name != name)
            continue;
        bool nodeOk = false, labelOk = label.empty();
        for (const auto& l : s.labels) {
            nodeOk |= l.name == "node" && l.value == node;
            labelOk |= l.name == label && l.value == value;
        }
        if (nodeOk && labelOk)
            return &s;
    }
    return nullptr;
}

class AnExposition : public ::testing::Test {
protected:
    ferry::test::TempDir dir;
    std::string path = dir / "master.db";
    std::int64_t now = ferry::nowMs();
};

TEST_F(AnExposition, ServesTheNewestRunOfEachNodeWithItsTimestampAndNodeLabel)
{
    {
        ferry::MasterStore store(path);
        store.addNode("alpha", "s1");
        store.addNode("beta", "s2");
        const std::int64_t t1 = now - 120000, t2 = now - 60000;
        store.storeBatch("alpha", ferry::Epoch(),
                         {record(1, t1, "metrics", {{"node_load1", MetricType::Gauge, {}, 1.5, 0}}),
                          record(2, t1, "metrics:app", {{"app_up", MetricType::Gauge, {}, 1, 0}}),
                          record(3, t2, "metrics", {{"node_load1", MetricType::Gauge, {}, 2.5, 0},
                                                    {"node_cpu_seconds_total", MetricType::Counter,
                                                     {{"cpu", "0"}, {"mode", "idle"}}, 10.25, 0}})},
                         "push");
        store.storeBatch("beta", ferry::Epoch(),
                         {record(1, t2, "metrics", {{"node_load1", MetricType::Gauge, {}, 0.5, 0},
                                                    {"node_cpu_seconds_total", MetricType::Counter,
                                                     {{"cpu", "0"}, {"mode", "idle"}}, 99, 0}}),
                          {2, t2, "load", "load1 0.75\nload5 0.5\nload15 0.25\n"}},
                         "pull");
    }
    ExpositionOptions options;
    options.nowMs = now;
    const std::string text = expose(path, options);
    const auto parsed = ferry::metrics::parseText(text);
    ASSERT_TRUE(parsed.errors.empty()) << parsed.errors.front().reason << ": " << parsed.errors.front().text;
    const auto& s = parsed.samples;

    ASSERT_TRUE(find(s, "node_load1", "alpha"));
    EXPECT_EQ(find(s, "node_load1", "alpha")->value, 2.5) << "the newest run, not an older one";
    EXPECT_EQ(find(s, "node_load1", "alpha")->timeMs, now - 60000) << "its original timestamp";
    ASSERT_TRUE(find(s, "app_up", "alpha")) << "a plugin's kind from an older run is still fresh";
    EXPECT_EQ(find(s, "node_cpu_seconds_total", "beta", "mode", "idle")->value, 99);
    EXPECT_EQ(find(s, "node_cpu_seconds_total", "beta")->type, MetricType::Counter);
    EXPECT_EQ(find(s, "node_load1", "beta")->value, 0.5) << "the binary record wins over a legacy one";
    EXPECT_FALSE(find(s, "node_load5", "beta")) << "legacy records give way when the new sampler runs";

    std::set<std::string> typed;
    std::size_t pos = 0;
    while ((pos = text.find("# TYPE ", pos)) != std::string::npos) {
        const auto end = text.find(' ', pos + 7);
        EXPECT_TRUE(typed.insert(text.substr(pos + 7, end - pos - 7)).second)
            << "one # TYPE line per family: " << text.substr(pos, 60);
        pos = end;
    }
    EXPECT_EQ(find(s, "ferry_nodes", "", "state", "accepted") ? 0 : 1, 1);
    bool accepted = false;
    for (const auto& x : s)
        accepted |= x.name == "ferry_nodes" && x.labels.at(0).value == "accepted" && x.value == 2;
    EXPECT_TRUE(accepted) << text;
    ASSERT_TRUE(find(s, "ferry_node_lag_seconds", "alpha"));
    EXPECT_NEAR(find(s, "ferry_node_lag_seconds", "alpha")->value, 60, 0.01);
    EXPECT_EQ(find(s, "ferry_node_records_stored_total", "beta")->value, 2);
    EXPECT_GT(find(s, "ferry_node_last_pull_timestamp_seconds", "beta")->value, 0);
    EXPECT_FALSE(find(s, "ferry_node_last_push_timestamp_seconds", "beta"));

    {
        ferry::MasterStore store(path);
        store.addNode("gamma", "s3");
        store.storeBatch("gamma", ferry::Epoch(), {{1, now, "load", "load1 0.75\nload5 0.5\nload15 0.25\n"}}, "push");
    }
    const auto withLegacy = ferry::metrics::parseText(expose(path, options)).samples;
    ASSERT_TRUE(find(withLegacy, "node_load5", "gamma")) << "an old node's text record is served";
    EXPECT_EQ(find(withLegacy, "node_load5", "gamma")->value, 0.5);

    options.onlyNode = "beta";
    const auto one = ferry::metrics::parseText(expose(path, options)).samples;
    EXPECT_FALSE(find(one, "node_load1", "alpha"));
    EXPECT_TRUE(find(one, "node_load1", "beta"));
}

TEST_F(AnExposition, LeavesOutStaleKindsOldSamplesAndUnreadableRecordsButSaysSo)
{
    {
        ferry::MasterStore store(path);
        store.addNode("n", "s");
        store.addNode("old", "s");
        store.storeBatch("n", ferry::Epoch(),
                         {record(1, now - 3600000, "metrics:removed-plugin", {{"gone", MetricType::Gauge, {}, 1, 0}}),
                          record(2, now - 1000, "metrics", {{"node_load1", MetricType::Gauge, {}, 1, 0}}),
                          {3, now - 1000, "metrics:bad", std::string("\xF1\x05\x01", 3)}},
                         "push");
        store.storeBatch("old", ferry::Epoch(), {record(1, now - 7200000, "metrics", {{"node_load1", MetricType::Gauge, {}, 3, 0}})},
                         "push");
    }
    ExpositionOptions options;
    options.nowMs = now;
    const auto s = ferry::metrics::parseText(expose(path, options)).samples;
    EXPECT_TRUE(find(s, "node_load1", "n"));
    EXPECT_FALSE(find(s, "gone", "n")) << "a kind not written for an hour before the newest is stale";
    EXPECT_EQ(find(s, "ferry_node_unreadable_records", "n")->value, 1);
    EXPECT_FALSE(find(s, "node_load1", "old")) << "older than max age";
    EXPECT_NEAR(find(s, "ferry_node_lag_seconds", "old")->value, 7200, 1);
}

TEST_F(AnExposition, ReadsTheEpochSchemaAndNodeReports)
{
    // The (node, epoch, seq) schema of the store's next version, made by hand.
    {
        ferry::Database db(path);
        db.exec("CREATE TABLE nodes (name TEXT PRIMARY KEY, secret TEXT NOT NULL, state TEXT NOT NULL DEFAULT 'accepted',"
                " mode TEXT NOT NULL DEFAULT 'push', public_key TEXT NOT NULL DEFAULT '', ssh_host TEXT NOT NULL DEFAULT '',"
                " ssh_port INTEGER NOT NULL DEFAULT 22, first_seen INTEGER NOT NULL DEFAULT 0, last_seen INTEGER NOT NULL DEFAULT 0,"
                " last_push INTEGER NOT NULL DEFAULT 0, last_pull INTEGER NOT NULL DEFAULT 0,"
                " records_stored INTEGER NOT NULL DEFAULT 0, reason TEXT NOT NULL DEFAULT '');"
                "CREATE TABLE records (node TEXT NOT NULL, epoch BLOB NOT NULL, seq INTEGER NOT NULL,"
                " time_ms INTEGER NOT NULL, kind TEXT NOT NULL, payload BLOB NOT NULL, received_ms INTEGER NOT NULL,"
                " via TEXT NOT NULL, PRIMARY KEY (node, epoch, seq)) WITHOUT ROWID;"
                "CREATE TABLE node_reports (node TEXT PRIMARY KEY, spool_records INTEGER, oldest_unsent_ms INTEGER,"
                " transport TEXT);"
                "INSERT INTO nodes (name, secret) VALUES ('e', 'x');"
                "INSERT INTO node_reports VALUES ('e', 42, 90000, 'push');");
        ferry::Statement ins(db, "INSERT INTO records VALUES ('e', ?1, ?2, ?3, 'metrics', ?4, 0, 'push')");
        // The old epoch has the higher sequence; the newer epoch's record is newer in time.
        ins.bindBlob(1, std::string(16, 'A')).bind(2, 500).bind(3, now - 600000);
        ins.bindBlob(4, record(0, now - 600000, "metrics", {{"node_load1", MetricType::Gauge, {}, 9, 0}}).payload).run();
        ins.reset();
        ins.bindBlob(1, std::string(16, 'B')).bind(2, 1).bind(3, now - 1000);
        ins.bindBlob(4, record(0, now - 1000, "metrics", {{"node_load1", MetricType::Gauge, {}, 1, 0}}).payload).run();
    }
    StoreReader reader(path);
    EXPECT_TRUE(reader.hasEpochs());
    ExpositionOptions options;
    options.nowMs = now;
    const auto s = ferry::metrics::parseText(expose(path, options)).samples;
    ASSERT_TRUE(find(s, "node_load1", "e"));
    EXPECT_EQ(find(s, "node_load1", "e")->value, 1) << "the newest epoch's run";
    ASSERT_TRUE(find(s, "ferry_node_report_spool_records", "e"));
    EXPECT_EQ(find(s, "ferry_node_report_spool_records", "e")->value, 42);
    EXPECT_EQ(find(s, "ferry_node_report_oldest_unsent_seconds", "e")->value, 90);
}

} // namespace
} // namespace metricsd
