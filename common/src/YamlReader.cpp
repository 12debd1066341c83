#include "ferry/YamlReader.h"

#include <algorithm>
#include <charconv>
#include <filesystem>
#include <fstream>
#include <sstream>

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
    if (text.find('\t') != std::string::npos) {
        const auto pos = text.find('\t');
        const auto line = std::count(text.begin(), text.begin() + static_cast<long>(pos), '\n') + 1;
        throw ConfigError(name + ":" + std::to_string(line) + ": tab character: YAML indentation must use spaces");
    }
    YAML::Node root;
    try {
        root = YAML::Load(text);
    } catch (const YAML::Exception& e) {
        throw ConfigError(name + ":" + std::to_string(e.mark.line + 1) + ":" + std::to_string(e.mark.column + 1) +
                          ": invalid YAML: " + e.msg);
    }
    return YamlMap(name, root, "");
}

std::string YamlMap::pathOf(const std::string& key) const
{
    return m_path.empty() ? key : m_path + "." + key;
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
