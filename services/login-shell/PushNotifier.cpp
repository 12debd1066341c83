#include "PushNotifier.h"

#include <sdbus-c++/sdbus-c++.h>
#include <spdlog/spdlog.h>

#include "org.ferry.Push1-proxy.h"

namespace pullshell {

namespace {

// The generated proxy declares the PushFinished signal handler; the shell
// never runs an event loop, so it never receives one.
class Push1Proxy final : public sdbus::ProxyInterfaces<org::ferry::Push1_proxy> {
public:
    explicit Push1Proxy(sdbus::IConnection& bus) : ProxyInterfaces(bus, "org.ferry.Push1", "/org/ferry/Push1")
    {
        registerProxy();
    }
    ~Push1Proxy() { unregisterProxy(); }

private:
    void onPushFinished(const bool&, const std::string&) override {}
    void onPushProgress(const uint64_t&, const uint64_t&, const uint64_t&, const uint64_t&) override {}
};

} // namespace

void PushNotifier::notePull()
{
    try {
        auto bus = sdbus::createSystemBusConnection();
        bus->setMethodCallTimeout(m_timeout);
        Push1Proxy push{*bus};
        push.NotePull();
        spdlog::debug("Told pushd about the pull");
    } catch (const std::exception& e) {
        spdlog::debug("Failed to tell pushd about the pull, ignoring: {}", e.what());
    }
}

} // namespace pullshell
