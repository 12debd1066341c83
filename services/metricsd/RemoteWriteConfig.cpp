#include "RemoteWriteConfig.h"

#include "ferry/Error.h"
#include "ferry/Files.h"
#include "ferry/YamlReader.h"

namespace metricsd {

namespace {

std::string secretFrom(ferry::YamlMap& map, const std::string& key, const std::string& path)
{
    try {
        auto text = ferry::readFile(path, 64 * 1024);
        while (!text.empty() && (text.back() == '\n' || text.back() == '\r'))
            text.pop_back();
        if (text.empty())
            map.fail(key, "the file " + path + " is empty");
        return text;
    } catch (const ferry::ConfigError&) {
        throw;
    } catch (const std::exception& e) {
        map.fail(key, e.what());
    }
}

} // namespace

RemoteWriteConfig parseRemoteWriteConfig(const std::string& name, const std::string& text)
{
    RemoteWriteConfig c;
    auto top = ferry::YamlMap::loadString(name, text);
    if (auto rw = top.map("remote_write")) {
        if (auto v = rw->string("url")) {
            if (!v->starts_with("http://") && !v->starts_with("https://"))
                rw->fail("url", "must start with http:// or https://");
            c.url = *v;
        }
        if (auto v = rw->string("bearer_token_file"))
            c.bearerToken = secretFrom(*rw, "bearer_token_file", *v);
        if (auto auth = rw->map("basic_auth")) {
            if (auto v = auth->string("username"))
                c.basicUser = *v;
            if (auto v = auth->string("password_file"))
                c.basicPassword = secretFrom(*auth, "password_file", *v);
            if (c.basicUser.empty())
                auth->fail("username", "basic_auth needs a username");
            auth->finish();
        }
        if (!c.bearerToken.empty() && !c.basicUser.empty())
            rw->fail("basic_auth", "use either bearer_token_file or basic_auth, not both");
        if (auto v = rw->string("ca_file"))
            c.caFile = *v;
        if (auto v = rw->seconds("timeout", 1, 600))
            c.timeout = std::chrono::seconds(*v);
        if (auto v = rw->integer("max_samples_per_send", 1, 1000000))
            c.maxSamplesPerSend = static_cast<std::size_t>(*v);
        if (auto v = rw->seconds("min_backoff", 0, 3600))
            c.minBackoff = std::chrono::seconds(*v);
        if (auto v = rw->seconds("max_backoff", 1, 3600))
            c.maxBackoff = std::chrono::seconds(*v);
        if (auto v = rw->seconds("retry_for", 0, 86400))
            c.retryFor = std::chrono::seconds(*v);
        rw->finish();
    }
    top.finish();
    return c;
}

RemoteWriteConfig loadRemoteWriteConfig(const std::string& path)
{
    const auto text = ferry::readFileIfExists(path, 1024 * 1024);
    return parseRemoteWriteConfig(path, text.value_or(""));
}

} // namespace metricsd
