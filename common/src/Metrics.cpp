#include "ferry/Metrics.h"

#include <algorithm>
#include <charconv>
#include <cmath>
#include <limits>
#include <map>
#include <set>
#include <unordered_map>

namespace ferry::metrics {

const char* toString(MetricType type)
{
    switch (type) {
    case MetricType::Counter: return "counter";
    case MetricType::Gauge: return "gauge";
    case MetricType::Histogram: return "histogram";
    case MetricType::Summary: return "summary";
    case MetricType::Untyped: break;
    }
    return "untyped";
}

namespace {

bool isNameStart(char c, bool colonAllowed)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_' || (colonAllowed && c == ':');
}
bool isNameChar(char c, bool colonAllowed)
{
    return isNameStart(c, colonAllowed) || (c >= '0' && c <= '9');
}

bool validUtf8(std::string_view s)
{
    std::size_t i = 0;
    while (i < s.size()) {
        const auto c = static_cast<unsigned char>(s[i]);
        std::size_t n = 0;
        std::uint32_t cp = 0;
        if (c < 0x80) {
            ++i;
            continue;
        } else if ((c & 0xE0) == 0xC0) {
            n = 1;
            cp = c & 0x1F;
        } else if ((c & 0xF0) == 0xE0) {
            n = 2;
            cp = c & 0x0F;
        } else if ((c & 0xF8) == 0xF0) {
            n = 3;
            cp = c & 0x07;
        } else {
            return false;
        }
        for (std::size_t k = 1; k <= n; ++k) {
            if (i + k >= s.size())
                return false;
            const auto cc = static_cast<unsigned char>(s[i + k]);
            if ((cc & 0xC0) != 0x80)
                return false;
            cp = (cp << 6) | (cc & 0x3F);
        }
        if ((n == 1 && cp < 0x80) || (n == 2 && cp < 0x800) || (n == 3 && cp < 0x10000) || cp > 0x10FFFF ||
            (cp >= 0xD800 && cp <= 0xDFFF))
            return false;
        i += n + 1;
    }
    return true;
}

bool parseDouble(std::string_view s, double& out)
{
    if (s == "+Inf" || s == "Inf" || s == "+inf" || s == "inf") {
        out = std::numeric_limits<double>::infinity();
        return true;
    }
    if (s == "-Inf" || s == "-inf") {
        out = -std::numeric_limits<double>::infinity();
        return true;
    }
    if (s == "NaN" || s == "nan") {
        out = std::numeric_limits<double>::quiet_NaN();
        return true;
    }
    if (!s.empty() && s.front() == '+')
        s.remove_prefix(1);
    if (s.empty())
        return false;
    const auto [p, ec] = std::from_chars(s.data(), s.data() + s.size(), out, std::chars_format::general);
    return ec == std::errc{} && p == s.data() + s.size() && std::isfinite(out);
}

// One line's parser; throws nothing, reports by returning a reason.
class LineParser {
public:
    explicit LineParser(std::string_view line) : m_s(line) {}

    void skipSpace()
    {
        while (m_i < m_s.size() && (m_s[m_i] == ' ' || m_s[m_i] == '\t'))
            ++m_i;
    }
    bool atEnd() const { return m_i >= m_s.size(); }
    char peek() const { return atEnd() ? '\0' : m_s[m_i]; }
    bool eat(char c)
    {
        if (peek() != c)
            return false;
        ++m_i;
        return true;
    }
    std::string_view name(bool colonAllowed)
    {
        const std::size_t start = m_i;
        if (!isNameStart(peek(), colonAllowed))
            return {};
        while (!atEnd() && isNameChar(m_s[m_i], colonAllowed))
            ++m_i;
        return m_s.substr(start, m_i - start);
    }
    // A quoted label value with \\, \" and \n escapes; false when malformed.
    bool quoted(std::string& out)
    {
        if (!eat('"'))
            return false;
        while (!atEnd()) {
            const char c = m_s[m_i++];
            if (c == '"')
                return true;
            if (c == '\\') {
                if (atEnd())
                    return false;
                const char e = m_s[m_i++];
                if (e == 'n')
                    out += '\n';
                else if (e == '\\' || e == '"')
                    out += e;
                else
                    return false;
            } else {
                out += c;
            }
        }
        return false;
    }
    std::string_view token()
    {
        const std::size_t start = m_i;
        while (!atEnd() && m_s[m_i] != ' ' && m_s[m_i] != '\t')
            ++m_i;
        return m_s.substr(start, m_i - start);
    }

private:
    std::string_view m_s;
    std::size_t m_i = 0;
};

std::string seriesKey(const Sample& s)
{
    std::string k = s.name;
    for (const auto& l : s.labels) {
        k += '\0';
        k += l.name;
        k += '\0';
        k += l.value;
    }
    return k;
}

} // namespace

bool isValidMetricName(std::string_view name)
{
    if (name.empty() || !isNameStart(name.front(), true))
        return false;
    return std::all_of(name.begin(), name.end(), [](char c) { return isNameChar(c, true); });
}

bool isValidLabelName(std::string_view name)
{
    if (name.empty() || !isNameStart(name.front(), false))
        return false;
    return std::all_of(name.begin(), name.end(), [](char c) { return isNameChar(c, false); });
}

std::string_view familyName(std::string_view seriesName, MetricType type)
{
    if (type != MetricType::Histogram && type != MetricType::Summary)
        return seriesName;
    for (std::string_view suffix : {"_bucket", "_sum", "_count"}) {
        if (seriesName.size() > suffix.size() && seriesName.ends_with(suffix))
            return seriesName.substr(0, seriesName.size() - suffix.size());
    }
    return seriesName;
}

void sortLabels(Labels& labels)
{
    std::sort(labels.begin(), labels.end(), [](const Label& a, const Label& b) { return a.name < b.name; });
}

ParseResult parseText(std::string_view text, const Limits& limits)
{
    ParseResult result;
    std::unordered_map<std::string, MetricType> types;
    std::set<std::string> seen;
    std::size_t lineNo = 0;
    std::size_t pos = 0;
    while (pos < text.size()) {
        std::size_t end = text.find('\n', pos);
        if (end == std::string_view::npos)
            end = text.size();
        std::string_view line = text.substr(pos, end - pos);
        pos = end + 1;
        ++lineNo;
        if (!line.empty() && line.back() == '\r')
            line.remove_suffix(1);
        auto fail = [&](std::string reason) {
            result.errors.push_back({lineNo, std::string(line.substr(0, std::min(line.size(), limits.maxLineBytes))),
                                     std::move(reason)});
        };
        if (line.size() > limits.maxLineBytes) {
            fail("line longer than " + std::to_string(limits.maxLineBytes) + " bytes");
            continue;
        }
        LineParser p(line);
        p.skipSpace();
        if (p.atEnd())
            continue;
        if (p.eat('#')) {
            p.skipSpace();
            const auto keyword = p.token();
            if (keyword != "TYPE" && keyword != "HELP")
                continue;  // a plain comment
            p.skipSpace();
            const auto name = p.name(true);
            if (name.empty() || (!p.atEnd() && p.peek() != ' ' && p.peek() != '\t')) {
                fail("bad metric name after # " + std::string(keyword));
                continue;
            }
            if (keyword == "HELP")
                continue;
            p.skipSpace();
            const auto word = p.token();
            p.skipSpace();
            MetricType type;
            if (word == "counter")
                type = MetricType::Counter;
            else if (word == "gauge")
                type = MetricType::Gauge;
            else if (word == "histogram")
                type = MetricType::Histogram;
            else if (word == "summary")
                type = MetricType::Summary;
            else if (word == "untyped")
                type = MetricType::Untyped;
            else {
                fail("unknown metric type '" + std::string(word) + "'");
                continue;
            }
            if (!p.atEnd()) {
                fail("text after the metric type");
                continue;
            }
            if (!types.emplace(std::string(name), type).second)
                fail("second # TYPE line for " + std::string(name) + " (the first is kept)");
            continue;
        }
        Sample s;
        const auto name = p.name(true);
        if (name.empty()) {
            fail("expected a metric name");
            continue;
        }
        if (name.size() > limits.maxNameBytes) {
            fail("metric name longer than " + std::to_string(limits.maxNameBytes) + " bytes");
            continue;
        }
        s.name = std::string(name);
        std::string reason;
        p.skipSpace();
        if (p.eat('{')) {
            for (;;) {
                p.skipSpace();
                if (p.eat('}'))
                    break;
                const auto ln = p.name(false);
                if (ln.empty()) {
                    reason = "expected a label name or '}'";
                    break;
                }
                Label l{std::string(ln), {}};
                p.skipSpace();
                if (!p.eat('=')) {
                    reason = "expected '=' after label " + l.name;
                    break;
                }
                p.skipSpace();
                if (!p.quoted(l.value)) {
                    reason = "bad quoted value of label " + l.name;
                    break;
                }
                if (l.name.size() > limits.maxNameBytes) {
                    reason = "label name longer than " + std::to_string(limits.maxNameBytes) + " bytes";
                    break;
                }
                if (l.value.size() > limits.maxLabelValueBytes) {
                    reason = "value of label " + l.name + " longer than " + std::to_string(limits.maxLabelValueBytes) +
                             " bytes";
                    break;
                }
                if (l.name.starts_with("__")) {
                    reason = "label name " + l.name + " is reserved (starts with __)";
                    break;
                }
                if (!validUtf8(l.value)) {
                    reason = "value of label " + l.name + " is not valid UTF-8";
                    break;
                }
                s.labels.push_back(std::move(l));
                if (s.labels.size() > limits.maxLabels) {
                    reason = "more than " + std::to_string(limits.maxLabels) + " labels";
                    break;
                }
                p.skipSpace();
                if (p.eat(','))
                    continue;
                if (p.eat('}'))
                    break;
                reason = "expected ',' or '}' after a label";
                break;
            }
            if (!reason.empty()) {
                fail(reason);
                continue;
            }
        }
        sortLabels(s.labels);
        if (std::adjacent_find(s.labels.begin(), s.labels.end(), [](const Label& a, const Label& b) {
                return a.name == b.name;
            }) != s.labels.end()) {
            fail("a label appears twice");
            continue;
        }
        p.skipSpace();
        const auto valueText = p.token();
        if (!parseDouble(valueText, s.value)) {
            fail(valueText.empty() ? "missing value" : "bad value '" + std::string(valueText) + "'");
            continue;
        }
        p.skipSpace();
        if (!p.atEnd()) {
            const auto ts = p.token();
            std::int64_t t = 0;
            const auto [q, ec] = std::from_chars(ts.data(), ts.data() + ts.size(), t);
            if (ec != std::errc{} || q != ts.data() + ts.size() || t == 0) {
                fail("bad timestamp '" + std::string(ts) + "'");
                continue;
            }
            s.timeMs = t;
            p.skipSpace();
            if (!p.atEnd()) {
                fail("text after the timestamp");
                continue;
            }
        }
        if (auto it = types.find(s.name); it != types.end()) {
            s.type = it->second;
        } else {
            for (std::string_view suffix : {"_bucket", "_sum", "_count"}) {
                if (!s.name.ends_with(suffix))
                    continue;
                auto base = types.find(s.name.substr(0, s.name.size() - suffix.size()));
                if (base != types.end() &&
                    (base->second == MetricType::Histogram || base->second == MetricType::Summary))
                    s.type = base->second;
            }
        }
        if (!seen.insert(seriesKey(s)).second) {
            fail("duplicate series (the first is kept)");
            continue;
        }
        if (result.samples.size() >= limits.maxSeries) {
            ++result.droppedSeries;
            continue;
        }
        result.samples.push_back(std::move(s));
    }
    return result;
}

std::string formatValue(double value)
{
    if (std::isnan(value))
        return "NaN";
    if (std::isinf(value))
        return value > 0 ? "+Inf" : "-Inf";
    char buf[64];
    const auto [p, ec] = std::to_chars(buf, buf + sizeof buf, value);
    return ec == std::errc{} ? std::string(buf, p) : "NaN";
}

void appendLabelValue(std::string& out, std::string_view value)
{
    for (char c : value) {
        if (c == '\\')
            out += "\\\\";
        else if (c == '"')
            out += "\\\"";
        else if (c == '\n')
            out += "\\n";
        else
            out += c;
    }
}

void appendSeriesLine(std::string& out, std::string_view name, const Labels& labels, const Label* extra, double value,
                      std::int64_t timeMs)
{
    out += name;
    bool first = true;
    auto put = [&](std::string_view prefix, const std::string& n, const std::string& v) {
        out += first ? '{' : ',';
        first = false;
        out += prefix;
        out += n;
        out += "=\"";
        appendLabelValue(out, v);
        out += '"';
    };
    bool extraDone = extra == nullptr;
    for (const auto& l : labels) {
        if (!extraDone && extra->name < l.name) {
            put({}, extra->name, extra->value);
            extraDone = true;
        }
        if (extra && l.name == extra->name)
            put("exported_", l.name, l.value);
        else
            put({}, l.name, l.value);
    }
    if (!extraDone)
        put({}, extra->name, extra->value);
    if (!first)
        out += '}';
    out += ' ';
    out += formatValue(value);
    if (timeMs != 0) {
        out += ' ';
        out += std::to_string(timeMs);
    }
    out += '\n';
}

void appendText(std::string& out, std::vector<Sample> samples, const Label* extra)
{
    std::stable_sort(samples.begin(), samples.end(), [](const Sample& a, const Sample& b) {
        const auto fa = familyName(a.name, a.type), fb = familyName(b.name, b.type);
        return fa != fb ? fa < fb : a.name < b.name;
    });
    std::string_view family;
    bool any = false;
    for (const auto& s : samples) {
        const auto f = familyName(s.name, s.type);
        if (!any || f != family) {
            out += "# TYPE ";
            out += f;
            out += ' ';
            out += toString(s.type);
            out += '\n';
            family = f;
            any = true;
        }
        appendSeriesLine(out, s.name, s.labels, extra, s.value, s.timeMs);
    }
}

} // namespace ferry::metrics
