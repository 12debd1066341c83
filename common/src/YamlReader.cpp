#include "ferry/YamlReader.h"

#include <algorithm>
#include <charconv>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string_view>
#include <utility>
#include <vector>

#include "ferry/Error.h"

namespace ferry {

namespace {

std::string location(const std::string& file, const YAML::Mark& mark)
{
    if (mark.is_null())
        return file;
    return file + ":" + std::to_string(mark.line + 1) + ":" + std::to_string(mark.column + 1);
}

std::optional<std::int64_t> parseInt(const std::string& s)
{
    std::int64_t v = 0;
    const auto* end = s.data() + s.size();
    auto [p, ec] = std::from_chars(s.data(), end, v);
    if (ec != std::errc{} || p != end || s.empty())
        return std::nullopt;
    return v;
}

// Splits "90s" into 90 and "s"; the number must be non-negative.
std::optional<std::pair<std::int64_t, std::string>> numberWithUnit(const std::string& s)
{
    std::size_t i = 0;
    while (i < s.size() && s[i] >= '0' && s[i] <= '9')
        ++i;
    if (i == 0 || i > 18)
        return std::nullopt;
    auto n = parseInt(s.substr(0, i));
    if (!n)
        return std::nullopt;
    std::string unit = s.substr(i);
    unit.erase(0, unit.find_first_not_of(' '));
    return std::make_pair(*n, unit);
}

// The key a line defines ("  - name: x" -> "name"), or "" for none.
std::string keyOnLine(std::string_view line)
{
    const auto start = line.find_first_not_of(" \t-");
    if (start == std::string_view::npos)
        return {};
    line.remove_prefix(start);
    const auto colon = line.find(':');
    if (colon == std::string_view::npos || line.front() == '#')
        return {};
    std::string key(line.substr(0, colon));
    while (!key.empty() && (key.back() == ' ' || key.back() == '\t'))
        key.pop_back();
    if (key.size() >= 2 && (key.front() == '"' || key.front() == '\'') && key.back() == key.front())
        key = key.substr(1, key.size() - 2);
    return key;
}

// The dotted path of the key on line index `at`, from the lines above it
// that are indented less (a tab counts as one column here: it is refused
// anyway, this only names what was meant).
std::string keyPathAt(const std::vector<std::string_view>& lines, std::size_t at)
{
    auto indent = [](std::string_view l) { return l.find_first_not_of(" \t-"); };
    std::string path = keyOnLine(lines[at]);
    std::size_t level = indent(lines[at]);
    for (std::size_t i = at; i-- > 0 && level > 0;) {
        const auto key = keyOnLine(lines[i]);
        const auto in = indent(lines[i]);
        if (key.empty() || in == std::string_view::npos || in >= level)
            continue;
        // Only a key that opens a block ("sender:") is a parent; one with a
        // value on its line means the tab-indented key stands on its own.
        auto after = lines[i].substr(lines[i].find(':') + 1);
        after.remove_prefix(std::min(after.size(), after.find_first_not_of(" \t")));
        if (!after.empty() && after.front() != '#')
            break;
        path = path.empty() ? key : key + "." + path;
        level = in;
    }
    return path;
}

// YAML forbids tabs in indentation; a tab anywhere is refused here, naming
// the line and the key it is on (or under).
[[noreturn]] void refuseTab(const std::string& name, const std::string& text, std::size_t pos)
{
    std::vector<std::string_view> lines;
    std::string_view rest(text);
    while (!rest.empty()) {
        const auto nl = rest.find('\n');
        lines.push_back(rest.substr(0, nl));
        if (nl == std::string_view::npos)
            break;
        rest.remove_prefix(nl + 1);
    }
    const auto lineIndex =
        static_cast<std::size_t>(std::count(text.begin(), text.begin() + static_cast<long>(pos), '\n'));
    const std::string_view line = lines[lineIndex];
    const bool inIndent = line.find_first_not_of(" \t") > line.find('\t');
    std::string key = keyPathAt(lines, lineIndex);
    throw ConfigError(name + ":" + std::to_string(lineIndex + 1) + ": " +
                      (key.empty() ? std::string() : "key '" + key + "': ") +
                      (inIndent ? "tab character in the indentation: YAML indentation must use spaces"
                                : "tab character: use spaces"));
}

// yaml-cpp keeps both entries of a key given twice and answers lookups with
// the first, so the second block would be silently ignored: refuse it.
void refuseDuplicateKeys(const std::string& name, const YAML::Node& node, const std::string& path)
{
    if (node.IsSequence()) {
        for (const auto& item : node)
            refuseDuplicateKeys(name, item, path);
        return;
    }
    if (!node.IsMap())
        return;
    std::vector<std::pair<std::string, YAML::Mark>> seen;
    for (const auto& kv : node) {
        const std::string key = kv.first.IsScalar() ? kv.first.Scalar() : std::string();
        const std::string keyPath = path.empty() ? key : path + "." + key;
        for (const auto& [other, mark] : seen) {
            if (other == key && kv.first.IsScalar())
                throw ConfigError(location(name, kv.first.Mark()) + ": key '" + keyPath + "' appears twice (lines " +
                                  std::to_string(mark.line + 1) + " and " + std::to_string(kv.first.Mark().line + 1) +
                                  "); the second would be ignored");
        }
        seen.emplace_back(key, kv.first.Mark());
        refuseDuplicateKeys(name, kv.second, keyPath);
    }
}

} // namespace

YamlMap::YamlMap(std::string file, YAML::Node node, std::string keyPath)
    : m_file(std::move(file)), m_node(std::move(node)), m_path(std::move(keyPath))
{
    if (m_node && !m_node.IsNull() && !m_node.IsMap())
        throw ConfigError(location(m_file, m_node.Mark()) + ": " +
                          (m_path.empty() ? std::string("top level") : "key '" + m_path + "'") +
                          ": expected a mapping of keys to values");
}

std::optional<YamlMap> YamlMap::loadFile(const std::string& path)
{
    std::error_code ec;
    if (!std::filesystem::exists(path, ec))
        return std::nullopt;
    std::ifstream in(path);
    if (!in)
        throw ConfigError("Failed to read " + path + ": cannot open file");
    std::stringstream ss;
    ss << in.rdbuf();
    return loadString(path, ss.str());
}

YamlMap YamlMap::loadString(const std::string& name, const std::string& text)
{
    if (const auto tab = text.find('\t'); tab != std::string::npos)
        refuseTab(name, text, tab);
    YAML::Node root;
    try {
        root = YAML::Load(text);
    } catch (const YAML::Exception& e) {
        throw ConfigError(name + ":" + std::to_string(e.mark.line + 1) + ":" + std::to_string(e.mark.column + 1) +
                          ": invalid YAML: " + e.msg);
    }
    refuseDuplicateKeys(name, root, "");
    return YamlMap(name, root, "");
}

std::string YamlMap::pathOf(const std::string& key) const
{
    return m_path.empty() ? key : m_path + "." + key;
}

std::string YamlMap::locationOf(const std::string& key) const
{
    YAML::Mark mark = m_node ? m_node.Mark() : YAML::Mark::null_mark();
    if (m_node && m_node.IsMap()) {
        for (const auto& kv : m_node) {
            if (kv.first.IsScalar() && kv.first.Scalar() == key) {
                mark = kv.first.Mark();
                break;
            }
        }
    }
    return location(m_file, mark);
}

bool YamlMap::has(const std::string& key) const
{
    return m_node && m_node.IsMap() && m_node[key];
}

YAML::Node YamlMap::get(const std::string& key)
{
    m_seen.push_back(key);
    if (!m_node || !m_node.IsMap())
        return YAML::Node(YAML::NodeType::Undefined);
    const YAML::Node& constNode = m_node;
    YAML::Node n = constNode[key];
    if (!n || n.IsNull())
        return YAML::Node(YAML::NodeType::Undefined);
    return n;
}

void YamlMap::fail(const std::string& key, const std::string& message) const
{
    YAML::Mark mark = m_node ? m_node.Mark() : YAML::Mark::null_mark();
    if (m_node && m_node.IsMap()) {
        for (const auto& kv : m_node) {
            if (kv.first.Scalar() == key) {
                mark = kv.first.Mark();
                break;
            }
        }
    }
    throw ConfigError(location(m_file, mark) + ": key '" + pathOf(key) + "': " + message);
}

void YamlMap::failAt(const YAML::Node& node, const std::string& keyPath, const std::string& message) const
{
    throw ConfigError(location(m_file, node.Mark()) + ": key '" + keyPath + "': " + message);
}

YAML::Node YamlMap::scalar(const std::string& key, const char* what)
{
    YAML::Node n = get(key);
    if (n && !n.IsScalar())
        fail(key, std::string("expected ") + what);
    return n;
}

std::optional<std::string> YamlMap::string(const std::string& key)
{
    YAML::Node n = scalar(key, "a string");
    if (!n)
        return std::nullopt;
    return n.Scalar();
}

std::optional<std::int64_t> YamlMap::integer(const std::string& key, std::int64_t min, std::int64_t max)
{
    YAML::Node n = scalar(key, "an integer");
    if (!n)
        return std::nullopt;
    auto v = parseInt(n.Scalar());
    if (!v || *v < min || *v > max)
        fail(key, "expected an integer from " + std::to_string(min) + " to " + std::to_string(max) + ", got '" +
                      n.Scalar() + "'");
    return v;
}

std::optional<bool> YamlMap::boolean(const std::string& key)
{
    YAML::Node n = scalar(key, "true or false");
    if (!n)
        return std::nullopt;
    const std::string& s = n.Scalar();
    if (s == "true" || s == "yes" || s == "on")
        return true;
    if (s == "false" || s == "no" || s == "off")
        return false;
    fail(key, "expected true or false, got '" + s + "'");
}

namespace {

struct Unit {
    const char* suffix;
    std::int64_t factor;
};

// A non-negative number with an optional unit suffix, scaled and checked
// against [min, max]; std::nullopt when the text does not parse.
std::optional<std::int64_t> scaled(const std::string& text, std::initializer_list<Unit> units, std::int64_t min,
                                   std::int64_t max)
{
    auto parsed = numberWithUnit(text);
    if (!parsed)
        return std::nullopt;
    for (const auto& u : units) {
        if (parsed->second != u.suffix)
            continue;
        if (parsed->first > max / u.factor)
            return std::nullopt;
        const std::int64_t v = parsed->first * u.factor;
        return v < min || v > max ? std::nullopt : std::optional<std::int64_t>(v);
    }
    return std::nullopt;
}

} // namespace

std::optional<std::int64_t> YamlMap::seconds(const std::string& key, std::int64_t min, std::int64_t max)
{
    YAML::Node n = scalar(key, "a duration");
    if (!n)
        return std::nullopt;
    const auto v = scaled(n.Scalar(), {{"", 1}, {"s", 1}, {"m", 60}, {"min", 60}, {"h", 3600}, {"d", 86400}}, min, max);
    if (!v)
        fail(key, "expected a duration from " + std::to_string(min) + "s to " + std::to_string(max) +
                      "s (a number of seconds, or with s, m, h or d), got '" + n.Scalar() + "'");
    return v;
}

std::optional<std::int64_t> YamlMap::bytes(const std::string& key, std::int64_t min, std::int64_t max)
{
    YAML::Node n = scalar(key, "a size");
    if (!n)
        return std::nullopt;
    const auto v = scaled(n.Scalar(),
                          {{"", 1}, {"B", 1}, {"K", 1024}, {"KiB", 1024}, {"M", 1 << 20}, {"MiB", 1 << 20},
                           {"G", 1 << 30}, {"GiB", 1 << 30}},
                          min, max);
    if (!v)
        fail(key, "expected a size from " + std::to_string(min) + " to " + std::to_string(max) +
                      " bytes (a number, or with K, M or G), got '" + n.Scalar() + "'");
    return v;
}

std::optional<YamlMap> YamlMap::map(const std::string& key)
{
    YAML::Node n = get(key);
    if (!n)
        return std::nullopt;
    if (!n.IsMap())
        fail(key, "expected a mapping of keys to values");
    return YamlMap(m_file, n, pathOf(key));
}

std::optional<std::vector<std::string>> YamlMap::stringList(const std::string& key)
{
    YAML::Node n = get(key);
    if (!n)
        return std::nullopt;
    if (n.IsScalar())
        return std::vector<std::string>{n.Scalar()};
    if (!n.IsSequence())
        fail(key, "expected a list of strings");
    std::vector<std::string> out;
    for (std::size_t i = 0; i < n.size(); ++i) {
        if (!n[i].IsScalar())
            failAt(n[i], pathOf(key) + "[" + std::to_string(i) + "]", "expected a string");
        out.push_back(n[i].Scalar());
    }
    return out;
}

std::optional<std::vector<YamlMap>> YamlMap::mapList(const std::string& key)
{
    YAML::Node n = get(key);
    if (!n)
        return std::nullopt;
    if (!n.IsSequence())
        fail(key, "expected a list");
    std::vector<YamlMap> out;
    for (std::size_t i = 0; i < n.size(); ++i) {
        const auto path = pathOf(key) + "[" + std::to_string(i) + "]";
        if (!n[i].IsMap())
            failAt(n[i], path, "expected a mapping of keys to values");
        out.emplace_back(m_file, n[i], path);
    }
    return out;
}

std::optional<std::vector<YAML::Node>> YamlMap::rawList(const std::string& key)
{
    YAML::Node n = get(key);
    if (!n)
        return std::nullopt;
    if (!n.IsSequence())
        fail(key, "expected a list");
    std::vector<YAML::Node> out;
    for (std::size_t i = 0; i < n.size(); ++i)
        out.push_back(n[i]);
    return out;
}

void YamlMap::finish() const
{
    if (!m_node || !m_node.IsMap())
        return;
    for (const auto& kv : m_node) {
        const std::string k = kv.first.Scalar();
        if (std::find(m_seen.begin(), m_seen.end(), k) == m_seen.end())
            throw ConfigError(location(m_file, kv.first.Mark()) + ": key '" + pathOf(k) + "': unknown key");
    }
}

} // namespace ferry
