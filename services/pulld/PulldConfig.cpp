#include "PulldConfig.h"

#include "ferry/YamlReader.h"

namespace pulld {

namespace {

PulldConfig fromYaml(const ferry::Paths& paths, std::optional<ferry::YamlMap> map)
{
    PulldConfig c;
    c.keyFile = paths.stateDir + "/pull_id_ed25519";
    c.knownHostsFile = paths.stateDir + "/pull_known_hosts";
    if (!map)
        return c;
    if (auto v = map->integer("concurrency", 1, 256))
        c.concurrency = static_cast<unsigned>(*v);
    if (auto v = map->seconds("min_interval", 0, 24 * 3600))
        c.minInterval = std::chrono::seconds(*v);
    if (auto v = map->seconds("connect_timeout", 1, 600))
        c.connectTimeout = std::chrono::seconds(*v);
    if (auto v = map->seconds("io_timeout", 1, 3600))
        c.ioTimeout = std::chrono::seconds(*v);
    if (auto v = map->string("user")) {
        if (v->empty() || v->find_first_not_of("abcdefghijklmnopqrstuvwxyz0123456789_-") != std::string::npos)
            map->fail("user", "must be a plain user name");
        c.user = *v;
    }
    if (auto v = map->string("key")) {
        if (v->empty() || v->front() != '/')
            map->fail("key", "must be an absolute path");
        c.keyFile = *v;
    }
    if (auto v = map->string("known_hosts")) {
        if (v->empty() || v->front() != '/')
            map->fail("known_hosts", "must be an absolute path");
        c.knownHostsFile = *v;
    }
    map->finish();
    return c;
}

} // namespace

PulldConfig loadPulldConfig(const ferry::Paths& paths)
{
    return fromYaml(paths, ferry::YamlMap::loadFile(paths.configDir + "/pulld.yml"));
}

PulldConfig parsePulldConfig(const ferry::Paths& paths, const std::string& name, const std::string& text)
{
    return fromYaml(paths, ferry::YamlMap::loadString(name, text));
}

} // namespace pulld
