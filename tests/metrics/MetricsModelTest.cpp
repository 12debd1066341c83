// The metric model without any process: the exposition parser on good and
// bad text, the writer, and the binary sample encoding (round trips, bounds,
// corrupted payloads, legacy text records).

#include <gtest/gtest.h>

#include <cmath>
#include <limits>
#include <map>
#include <random>

#include "ferry/Error.h"
#include "ferry/Metrics.h"
#include "ferry/SampleCodec.h"

namespace ferry::metrics {
namespace {

TEST(AnExpositionParser, ReadsTypesLabelsEscapesAndTimestamps)
{
    const auto r = parseText("# HELP http_requests_total The total.\n"
                             "# TYPE http_requests_total counter\n"
                             "http_requests_total{method=\"post\",code=\"200\"} 1027 1395066363000\n"
                             "  # a comment\n"
                             "msdos_file_access_time_seconds{path=\"C:\\\\DIR\\\\FILE.TXT\",error=\"Cannot find \\\"x\\\"\\n\"} 1.458255915e9\n"
                             "metric_without_timestamp_and_labels 12.47\n"
                             "# TYPE rpc histogram\n"
                             "rpc_bucket{le=\"+Inf\"} 3\nrpc_sum 1.5\nrpc_count 3\n"
                             "inf_value -Inf\nnan_value NaN\n");
    ASSERT_TRUE(r.errors.empty()) << r.errors.front().reason;
    ASSERT_EQ(r.samples.size(), 8u);
    const auto& a = r.samples[0];
    EXPECT_EQ(a.name, "http_requests_total");
    EXPECT_EQ(a.type, MetricType::Counter);
    ASSERT_EQ(a.labels.size(), 2u);
    EXPECT_EQ(a.labels[0].name, "code") << "labels are kept sorted by name";
    EXPECT_EQ(a.timeMs, 1395066363000);
    EXPECT_EQ(r.samples[1].labels[1].value, "C:\\DIR\\FILE.TXT");
    EXPECT_EQ(r.samples[1].labels[0].value, "Cannot find \"x\"\n");
    EXPECT_EQ(r.samples[1].value, 1.458255915e9);
    EXPECT_EQ(r.samples[2].type, MetricType::Untyped);
    EXPECT_EQ(r.samples[3].type, MetricType::Histogram) << "rpc_bucket belongs to the histogram rpc";
    EXPECT_EQ(r.samples[5].type, MetricType::Histogram);
    EXPECT_TRUE(std::isinf(r.samples[6].value) && r.samples[6].value < 0);
    EXPECT_TRUE(std::isnan(r.samples[7].value));
}

TEST(AnExpositionParser, ReportsEachBadLineByNumberAndKeepsTheRest)
{
    const auto r = parseText("good 1\n"
                             "bad{ 2\n"
                             "1bad 3\n"
                             "no_value\n"
                             "bad_value abc\n"
                             "dup{a=\"1\",a=\"2\"} 1\n"
                             "# TYPE x sometype\n"
                             "reserved{__name__=\"x\"} 1\n"
                             "good 5\n"
                             "also_good{x=\"y\"} 2 17\n"
                             "trailing 1 2 3\n");
    ASSERT_EQ(r.samples.size(), 2u);
    EXPECT_EQ(r.samples[0].name, "good");
    EXPECT_EQ(r.samples[1].name, "also_good");
    ASSERT_EQ(r.errors.size(), 9u);
    EXPECT_EQ(r.errors[0].line, 2u);
    EXPECT_EQ(r.errors[0].text, "bad{ 2");
    EXPECT_EQ(r.errors[7].line, 9u);
    EXPECT_NE(r.errors[7].reason.find("duplicate"), std::string::npos) << r.errors[7].reason;
    EXPECT_EQ(r.errors[8].line, 11u);
}

TEST(AnExpositionParser, RefusesAHugeLabelAndBoundsTheSeriesCount)
{
    Limits limits;
    limits.maxSeries = 1000;
    std::string text = "huge{l=\"" + std::string(5000, 'x') + "\"} 1\n";
    for (int i = 0; i < 100000; ++i)
        text += "many{i=\"" + std::to_string(i) + "\"} " + std::to_string(i) + "\n";
    const auto r = parseText(text, limits);
    ASSERT_EQ(r.errors.size(), 1u);
    EXPECT_EQ(r.errors[0].line, 1u);
    EXPECT_NE(r.errors[0].reason.find("longer than 1024"), std::string::npos) << r.errors[0].reason;
    EXPECT_EQ(r.samples.size(), 1000u);
    EXPECT_EQ(r.droppedSeries, 99000u);
}

TEST(AnExpositionWriter, GroupsFamiliesAndReadsBackTheSameSamples)
{
    std::vector<Sample> in = {
        {"b_total", MetricType::Counter, {{"x", "1"}}, 3, 0},
        {"a", MetricType::Gauge, {{"q", "with \"quote\" and \\ and\nnewline"}}, 0.1, 1700000000123},
        {"b_total", MetricType::Counter, {{"x", "2"}}, 1e300, 0},
        {"c", MetricType::Untyped, {{"node", "theirs"}}, -2.5, 0},
    };
    std::string text;
    const Label node{"node", "n1"};
    appendText(text, in, &node);
    EXPECT_EQ(text.find("# TYPE b_total counter"), text.rfind("# TYPE b_total counter")) << text;
    const auto r = parseText(text);
    ASSERT_TRUE(r.errors.empty()) << r.errors.front().reason << ": " << r.errors.front().text;
    ASSERT_EQ(r.samples.size(), 4u);
    EXPECT_EQ(r.samples[0].name, "a");
    EXPECT_EQ(r.samples[0].timeMs, 1700000000123);
    EXPECT_EQ(r.samples[0].labels.at(1).value, "with \"quote\" and \\ and\nnewline");
    EXPECT_EQ(r.samples[2].value, 1e300);
    const auto& c = r.samples[3].labels;
    ASSERT_EQ(c.size(), 2u);
    EXPECT_EQ(c[0].name, "exported_node");
    EXPECT_EQ(c[0].value, "theirs");
    EXPECT_EQ(c[1].value, "n1");
}

std::vector<Sample> randomSamples(std::mt19937_64& rng, int n)
{
    std::vector<Sample> out;
    std::uniform_int_distribution<int> pick(0, 9);
    for (int i = 0; i < n; ++i) {
        Sample s;
        s.name = i % 3 == 0 ? "node_cpu_seconds_total" : "custom_metric_" + std::to_string(i % 7);
        s.type = static_cast<MetricType>(i % 5);
        s.labels = {{"cpu", std::to_string(i % 4)}, {"mode", i % 2 ? "idle" : "weird mode"}};
        if (i % 5 == 0)
            s.labels.push_back({"zz", std::string(static_cast<std::size_t>(pick(rng)), 'z')});
        if (i % 11 == 0)
            s.labels.clear();
        switch (pick(rng)) {
        case 0: s.value = static_cast<double>(rng() % 100000) / 100.0; break;
        case 1: s.value = static_cast<double>(rng() % (1ull << 40)) * 1024.0; break;
        case 2: s.value = std::numeric_limits<double>::quiet_NaN(); break;
        case 3: s.value = -std::numeric_limits<double>::infinity(); break;
        case 4: s.value = std::ldexp(static_cast<double>(rng() % 1000000), -30); break;
        case 5: s.value = -static_cast<double>(rng() % 1000); break;
        case 6: s.value = 1e-300; break;
        case 7: s.value = -0.0; break;
        default: s.value = static_cast<double>(rng()) / 3.0;
        }
        if (i % 13 == 0)
            s.timeMs = 1700000000000 + static_cast<std::int64_t>(rng() % 100000) - 50000;
        sortLabels(s.labels);
        out.push_back(std::move(s));
    }
    return out;
}

bool sameValue(double a, double b)
{
    return (std::isnan(a) && std::isnan(b)) || (a == b && std::signbit(a) == std::signbit(b));
}

TEST(ASampleEncoding, RoundTripsEveryValueExactly)
{
    std::mt19937_64 rng(42);
    for (int round = 0; round < 20; ++round) {
        const auto in = randomSamples(rng, 500);
        const auto payloads = encodeSamples(in, 1700000000000, 1 << 20);
        ASSERT_EQ(payloads.size(), 1u);
        auto out = decodeSamples(payloads[0], 1700000000000);
        ASSERT_EQ(out.size(), in.size());
        // The encoding groups series by name; compare as multisets keyed by name+labels.
        auto key = [](const Sample& s) {
            std::string k = s.name;
            for (const auto& l : s.labels)
                k += "|" + l.name + "=" + l.value;
            return k;
        };
        std::multimap<std::string, const Sample*> expected;
        for (const auto& s : in)
            expected.emplace(key(s), &s);
        for (const auto& s : out) {
            auto range = expected.equal_range(key(s));
            bool found = false;
            for (auto it = range.first; it != range.second; ++it) {
                if (sameValue(it->second->value, s.value) && it->second->timeMs == s.timeMs &&
                    it->second->type == s.type) {
                    expected.erase(it);
                    found = true;
                    break;
                }
            }
            ASSERT_TRUE(found) << key(s) << " " << s.value;
        }
    }
}

TEST(ASampleEncoding, SplitsIntoPayloadsWithinTheBound)
{
    std::mt19937_64 rng(7);
    const auto in = randomSamples(rng, 5000);
    const auto payloads = encodeSamples(in, 1700000000000, 4096);
    ASSERT_GT(payloads.size(), 2u);
    std::size_t total = 0;
    for (const auto& p : payloads) {
        EXPECT_LE(p.size(), 4096u);
        total += decodeSamples(p, 1700000000000).size();
    }
    EXPECT_EQ(total, in.size());
}

TEST(ASampleEncoding, RefusesCorruptedPayloadsWithAnErrorNeverACrash)
{
    std::mt19937_64 rng(3);
    const auto payload = encodeSamples(randomSamples(rng, 300), 1700000000000, 1 << 20).at(0);
    std::size_t refused = 0;
    for (std::size_t cut = 0; cut < payload.size(); ++cut) {
        try {
            decodeSamples(payload.substr(0, cut), 0);
        } catch (const ProtocolError&) {
            ++refused;
        }
    }
    EXPECT_EQ(refused, payload.size()) << "every truncation is detected";
    for (int i = 0; i < 3000; ++i) {
        std::string bad = payload;
        bad[rng() % bad.size()] = static_cast<char>(rng());
        bad[rng() % bad.size()] = static_cast<char>(rng());
        try {
            const auto out = decodeSamples(bad, 0);
            EXPECT_LE(out.size(), bad.size());
        } catch (const ProtocolError&) {
        }
    }
    EXPECT_THROW(decodeSamples("load1 0.5\n", 0), ProtocolError);
    EXPECT_THROW(decodeSamples(std::string("\xF1\xFF\xFF\xFF\xFF\x0F", 6), 0), ProtocolError);
}

TEST(ALegacyTextRecord, IsReadWithNodeExporterNames)
{
    auto load = decodeRecord("load", "load1 0.5\nload5 0.25\nload15 0.125\ntasks 1/100\n", 1000);
    ASSERT_EQ(load.size(), 3u);
    EXPECT_EQ(load[0].name, "node_load1");
    EXPECT_EQ(load[2].value, 0.125);
    auto mem = decodeRecord("memory", "MemTotal_kB 1000\nMemAvailable_kB 500\n", 1000);
    ASSERT_EQ(mem.size(), 2u);
    EXPECT_EQ(mem[0].name, "node_memory_MemTotal_bytes");
    EXPECT_EQ(mem[0].value, 1024000);
    auto net = decodeRecord("network", "eth0 rx_bytes 10 tx_bytes 20\n", 1000);
    ASSERT_EQ(net.size(), 2u);
    EXPECT_EQ(net[1].name, "node_network_transmit_bytes_total");
    EXPECT_EQ(net[1].labels.at(0).value, "eth0");
    EXPECT_EQ(net[1].value, 20);
    auto plugin = decodeRecord("plugin:x", "queue_length 7\n", 1000);
    ASSERT_EQ(plugin.size(), 1u);
    EXPECT_EQ(plugin[0].value, 7);
}

} // namespace
} // namespace ferry::metrics

namespace ferry::metrics {
namespace {

TEST(ASampleEncoding, RefusesARecordWhoseReferencesExpandBeyondTheBound)
{
    // One 16 KiB string referred to by every label of 10,000 series: 64 KB
    // that would expand to about 1.3 GB.
    std::vector<Sample> in;
    const std::string big(16 * 1024, 'x');
    for (int i = 0; i < 10000; ++i)
        in.push_back({"m", MetricType::Gauge, {{"a", big}, {"b", big}, {"c", big}, {"i", std::to_string(i % 100)}}, 1, 0});
    const auto payloads = encodeSamples(in, 0, 64 << 20);
    ASSERT_EQ(payloads.size(), 1u);
    EXPECT_LT(payloads[0].size(), 200u * 1024);
    EXPECT_THROW(decodeSamples(payloads[0], 0), ProtocolError);
}

} // namespace
} // namespace ferry::metrics
