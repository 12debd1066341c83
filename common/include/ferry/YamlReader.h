#pragma once
// Strict reading of a YAML mapping, for config loaders only: every key is
// type-checked, every unknown key is refused, and every error names file,
// line, column and key path. yaml-cpp types stay inside loader .cpp files.

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include <yaml-cpp/yaml.h>

namespace ferry {

class YamlMap {
public:
    // node must be a mapping (or null/absent, which reads as empty).
    YamlMap(std::string file, YAML::Node node, std::string keyPath);

    // Parses a whole file; a missing file gives std::nullopt. Syntax errors
    // and a top level that is not a mapping throw ConfigError.
    static std::optional<YamlMap> loadFile(const std::string& path);
    static YamlMap loadString(const std::string& name, const std::string& text);

    std::optional<std::string> string(const std::string& key);
    std::optional<std::int64_t> integer(const std::string& key, std::int64_t min, std::int64_t max);
    std::optional<bool> boolean(const std::string& key);
    // A duration in seconds: a plain integer, or a number with s/m/h/d.
    std::optional<std::int64_t> seconds(const std::string& key, std::int64_t min, std::int64_t max);
    // A size in bytes: a plain integer, or a number with K/M/G (powers of 1024).
    std::optional<std::int64_t> bytes(const std::string& key, std::int64_t min, std::int64_t max);
    std::optional<YamlMap> map(const std::string& key);
    std::optional<std::vector<std::string>> stringList(const std::string& key);
    std::optional<std::vector<YamlMap>> mapList(const std::string& key);
    // A list whose items are either scalars or mappings; scalars are returned
    // as a YamlMap holding the single key "" (see scalarItem()).
    std::optional<std::vector<YAML::Node>> rawList(const std::string& key);

    // Throws ConfigError for the first key that was never asked for.
    void finish() const;

    // Throws ConfigError naming this map's file, the key's line and path.
    [[noreturn]] void fail(const std::string& key, const std::string& message) const;
    [[noreturn]] void failAt(const YAML::Node& node, const std::string& keyPath, const std::string& message) const;

    const std::string& file() const { return m_file; }
    std::string pathOf(const std::string& key) const;
    // "file:line:column" of key in this map (the map's own place when absent).
    std::string locationOf(const std::string& key) const;
    bool has(const std::string& key) const;

private:
    YAML::Node get(const std::string& key);
    YAML::Node scalar(const std::string& key, const char* what);

    std::string m_file;
    YAML::Node m_node;
    std::string m_path;
    std::vector<std::string> m_seen;
};

} // namespace ferry
