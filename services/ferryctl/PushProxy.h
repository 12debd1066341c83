#pragma once
// A client of org.ferry.Push1 through the generated proxy.

#include <memory>

#include <sdbus-c++/sdbus-c++.h>

#include "org.ferry.Push1-proxy.h"

namespace ferryctl {

class PushProxy final : public sdbus::ProxyInterfaces<org::ferry::Push1_proxy> {
public:
    explicit PushProxy(sdbus::IConnection& bus)
        : ProxyInterfaces(bus, "org.ferry.Push1", "/org/ferry/Push1")
    {
        registerProxy();
    }
    ~PushProxy() { unregisterProxy(); }

private:
    void onPushFinished(const bool&, const std::string&) override {}
};

// The system bus, with a method timeout long enough for a push cycle.
std::unique_ptr<sdbus::IConnection> connectBus();
// "2026-11-22 21:03:11" from µs since the epoch, "never" for 0.
std::string formatUsec(uint64_t usec);

} // namespace ferryctl
