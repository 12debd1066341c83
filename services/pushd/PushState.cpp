#include "PushState.h"

#include <charconv>
#include <sstream>

#include <spdlog/spdlog.h>

#include "ferry/Files.h"

namespace pushd {

namespace {
std::int64_t toInt(const std::string& s)
{
    std::int64_t v = 0;
    std::from_chars(s.data(), s.data() + s.size(), v);
    return v;
}
std::string oneLine(std::string s)
{
    for (char& c : s)
        if (c == '\n' || c == '\r')
            c = ' ';
    return s;
}
} // namespace

PushState loadPushState(const std::string& path)
{
    PushState st;
    std::optional<std::string> text;
    try {
        text = ferry::readFileIfExists(path, 64 * 1024);
    } catch (const std::exception& e) {
        spdlog::warn("Ignoring unreadable state file: {}", e.what());
    }
    if (!text)
        return st;
    std::istringstream in(*text);
    std::string line;
    while (std::getline(in, line)) {
        const auto eq = line.find('=');
        if (eq == std::string::npos)
            continue;
        const std::string key = line.substr(0, eq);
        const std::string value = line.substr(eq + 1);
        if (key == "last_push_ms")
            st.lastPushMs = toInt(value);
        else if (key == "last_success_ms")
            st.lastSuccessMs = toInt(value);
        else if (key == "last_result")
            st.lastResult = value;
        else if (key == "master")
            st.master = value;
        else if (key == "last_pull_ms")
            st.lastPullMs = toInt(value);
        else if (key == "watch_start_ms")
            st.watchStartMs = toInt(value);
        else if (key == "active")
            st.active = value == "1";
        else if (key == "reason")
            st.reason = value;
        else if (key == "not_before_ms")
            st.notBeforeMs = toInt(value);
        else if (key == "not_before_reason")
            st.notBeforeReason = value;
        else if (key == "active_since_ms")
            st.activeSinceMs = toInt(value);
        else if (key == "fwcheck_request_ms")
            st.fwcheckRequestMs = toInt(value);
    }
    return st;
}

void savePushState(const std::string& path, const PushState& st)
{
    std::ostringstream out;
    out << "last_push_ms=" << st.lastPushMs << "\n"
        << "last_success_ms=" << st.lastSuccessMs << "\n"
        << "last_result=" << oneLine(st.lastResult) << "\n"
        << "master=" << oneLine(st.master) << "\n"
        << "last_pull_ms=" << st.lastPullMs << "\n"
        << "watch_start_ms=" << st.watchStartMs << "\n"
        << "active=" << (st.active ? 1 : 0) << "\n"
        << "reason=" << oneLine(st.reason) << "\n"
        << "not_before_ms=" << st.notBeforeMs << "\n"
        << "not_before_reason=" << oneLine(st.notBeforeReason) << "\n"
        << "active_since_ms=" << st.activeSinceMs << "\n"
        << "fwcheck_request_ms=" << st.fwcheckRequestMs << "\n";
    ferry::writeFileAtomic(path, out.str(), 0644);
}

} // namespace pushd
