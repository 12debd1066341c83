#pragma once
// org.ferry.Push1 on /org/ferry/Push1: a thin layer over Manager. Push
// cycles run as background jobs (ferry::BackgroundJobs); results return
// through the event loop so that only the loop thread touches the bus.

#include <sdbus-c++/sdbus-c++.h>

#include "Manager.h"
#include "ferry/BackgroundJobs.h"
#include "ferry/Bus.h"
#include "org.ferry.Push1-adaptor.h"

namespace pushd {

class PushAdaptor final : public sdbus::AdaptorInterfaces<org::ferry::Push1_adaptor> {
public:
    PushAdaptor(sdbus::IConnection& bus, ferry::EventLoop& loop, Manager& manager);
    ~PushAdaptor();

private:
    void PushNow(sdbus::Result<std::string>&& result) override;
    void RunScheduled(sdbus::Result<std::string>&& result) override;
    std::tuple<bool, std::string> Evaluate() override;
    void NotePull() override;
    uint64_t LastPush() override;
    std::string LastResult() override;
    uint64_t LastSuccess() override;
    uint64_t QueuedRecords() override;
    uint64_t QueuedBytes() override;
    uint64_t DroppedRecords() override;
    std::string SpoolEpoch() override;
    uint64_t SpoolResets() override;
    std::string SpoolLastReset() override;
    uint64_t SpoolOlderEpochRecords() override;
    uint64_t Period() override;
    uint64_t NotBefore() override;
    std::string NotBeforeReason() override;
    std::string Master() override;
    std::vector<std::string> Masters() override;
    std::string Mode() override;
    bool Active() override;
    std::string Reason() override;
    uint64_t LastPull() override;
    bool Registered() override;

    void runCycle(sdbus::Result<std::string>&& result, bool scheduled, const char* member);
    void finished(bool success, const std::string& summary);
    template <typename F>
    auto call(const char* member, F&& f)
    {
        return ferry::busCall(m_loop, INTERFACE_NAME, member, std::forward<F>(f));
    }

    ferry::EventLoop& m_loop;
    Manager& m_manager;
    // Last: its destructor waits for running cycles, which use the above.
    ferry::BackgroundJobs m_jobs;
};

} // namespace pushd
