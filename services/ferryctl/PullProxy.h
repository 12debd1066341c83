#pragma once
// A client of org.ferry.Pull1 (the master's ferry-pulld) through the
// generated proxy.

#include <chrono>
#include <cstdint>
#include <functional>
#include <future>
#include <string>
#include <tuple>

#include <sdbus-c++/sdbus-c++.h>

#include "org.ferry.Pull1-proxy.h"

namespace ferryctl {

class PullProxy final : public sdbus::ProxyInterfaces<org::ferry::Pull1_proxy> {
public:
    explicit PullProxy(sdbus::IConnection& bus) : ProxyInterfaces(bus, "org.ferry.Pull1", "/org/ferry/Pull1")
    {
        registerProxy();
    }
    ~PullProxy() { unregisterProxy(); }

    // Called with each NodePulled signal, on the connection's event-loop thread.
    std::function<void(const std::string& node, bool success, std::uint64_t records, const std::string& summary,
                       std::uint32_t done, std::uint32_t total)>
        nodePulled;

    // PullAll with the reply taken on the event-loop thread (SignalThread
    // must be running), so that every NodePulled signal pulld sent before
    // its reply is handled before this returns.
    std::tuple<std::uint32_t, std::uint32_t> pullAllInOrder(std::chrono::seconds timeout)
    {
        std::promise<std::tuple<std::uint32_t, std::uint32_t>> done;
        auto answer = done.get_future();
        getProxy()
            .callMethodAsync("PullAll")
            .onInterface(INTERFACE_NAME)
            .withTimeout(timeout)
            .uponReplyInvoke([&done](const sdbus::Error* error, std::uint32_t pulled, std::uint32_t failed) {
                if (error != nullptr)
                    done.set_exception(std::make_exception_ptr(*error));
                else
                    done.set_value({pulled, failed});
            });
        return answer.get();
    }

private:
    void onNodePulled(const std::string& node, const bool& success, const uint64_t& records, const std::string& summary,
                      const uint32_t& done, const uint32_t& total) override
    {
        if (nodePulled)
            nodePulled(node, success, records, summary, done, total);
    }
};

} // namespace ferryctl
