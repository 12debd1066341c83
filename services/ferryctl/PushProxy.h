#pragma once
// A client of org.ferry.Push1 through the generated proxy.

#include <chrono>
#include <cstdint>
#include <functional>
#include <future>
#include <memory>
#include <string>

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

    // Called with each PushProgress signal (records done and total, bytes
    // done and total), on the connection's event-loop thread.
    std::function<void(std::uint64_t, std::uint64_t, std::uint64_t, std::uint64_t)> onProgress;

    // PushNow or RunScheduled with the reply taken on the event-loop thread
    // (SignalThread must be running): signals and reply are then handled in
    // the order pushd sent them, so every PushProgress is shown before this
    // returns. (A blocking call would leave the signals queued behind it.)
    std::string callInOrder(const std::string& method)
    {
        std::promise<std::string> done;
        auto answer = done.get_future();
        getProxy()
            .callMethodAsync(method)
            .onInterface(INTERFACE_NAME)
            .withTimeout(kCycleTimeout)
            .uponReplyInvoke([&done](const sdbus::Error* error, std::string summary) {
                if (error != nullptr)
                    done.set_exception(std::make_exception_ptr(*error));
                else
                    done.set_value(std::move(summary));
            });
        return answer.get();
    }
    static constexpr std::chrono::seconds kCycleTimeout{180};

private:
    void onPushFinished(const bool&, const std::string&) override {}
    void onPushProgress(const uint64_t& recordsDone, const uint64_t& recordsTotal, const uint64_t& bytesDone,
                        const uint64_t& bytesTotal) override
    {
        if (onProgress)
            onProgress(recordsDone, recordsTotal, bytesDone, bytesTotal);
    }
};

// The system bus, with a method timeout long enough for a push cycle
// (PushProxy::kCycleTimeout).
std::unique_ptr<sdbus::IConnection> connectBus();
// "2026-11-22 21:03:11" from µs since the epoch, "never" for 0.
std::string formatUsec(uint64_t usec);

} // namespace ferryctl
