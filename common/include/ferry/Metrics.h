#pragma once
// Ferry's metric model: samples named, labelled and in the units of
// prometheus-node-exporter, and the Prometheus text exposition format
// (version 0.0.4) in both directions.
//
// Parsing is for untrusted text (plugins, *.prom files): every line that is
// not valid gets a ParseError naming the line (the caller logs it, escaped)
// and is skipped; the rest of the text is kept. Bounds (Limits) cap the
// number of series and the size of names and labels; what goes over a bound
// is dropped and counted, never truncated silently.

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace ferry::metrics {

enum class MetricType : std::uint8_t { Untyped = 0, Counter = 1, Gauge = 2, Histogram = 3, Summary = 4 };
const char* toString(MetricType type);

struct Label {
    std::string name;
    std::string value;
    bool operator==(const Label&) const = default;
};
// Kept sorted by name; names are unique.
using Labels = std::vector<Label>;

struct Sample {
    std::string name;  // the series' metric name, e.g. node_cpu_seconds_total
    MetricType type = MetricType::Untyped;
    Labels labels;
    double value = 0;
    std::int64_t timeMs = 0;  // 0: the time of the record that carries it
};

struct Limits {
    std::size_t maxSeries = 10000;       // per parsed text (one plugin run, one .prom file)
    std::size_t maxNameBytes = 200;      // metric and label names
    std::size_t maxLabelValueBytes = 1024;
    std::size_t maxLabels = 32;          // per series
    std::size_t maxLineBytes = 16 * 1024;
};

struct ParseError {
    std::size_t line = 0;  // 1-based
    std::string text;      // the offending line, raw (escape before logging)
    std::string reason;
};

struct ParseResult {
    std::vector<Sample> samples;
    std::vector<ParseError> errors;
    std::size_t droppedSeries = 0;  // valid series beyond Limits::maxSeries
};

ParseResult parseText(std::string_view text, const Limits& limits = {});

bool isValidMetricName(std::string_view name);
bool isValidLabelName(std::string_view name);

// The family a series belongs to for # TYPE lines: foo_bucket/_sum/_count of
// a histogram or summary belong to foo; everything else to its own name.
std::string_view familyName(std::string_view seriesName, MetricType type);

// Shortest text that reads back as the same double; +Inf, -Inf, NaN.
std::string formatValue(double value);
// Appends `name{labels,extra} value [timeMs]\n`; extra (e.g. node="…") is
// placed among the labels in name order; an existing label of that name is
// renamed exported_<name>, as Prometheus does on a clash.
void appendSeriesLine(std::string& out, std::string_view name, const Labels& labels, const Label* extra, double value,
                      std::int64_t timeMs);
void appendLabelValue(std::string& out, std::string_view value);
// Appends a whole exposition (TYPE lines, families grouped) of samples.
void appendText(std::string& out, std::vector<Sample> samples, const Label* extra = nullptr);

// Sorts labels by name (the model's invariant).
void sortLabels(Labels& labels);

} // namespace ferry::metrics
