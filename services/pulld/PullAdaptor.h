#pragma once
// org.ferry.Pull1 on /org/ferry/Pull1, over the Puller. Pulls run as
// background jobs (ferry::BackgroundJobs); results go back through the event
// loop.

#include <functional>

#include <sdbus-c++/sdbus-c++.h>

#include "Puller.h"
#include "ferry/BackgroundJobs.h"
#include "ferry/Bus.h"
#include "org.ferry.Pull1-adaptor.h"

namespace pulld {

class PullAdaptor final : public sdbus::AdaptorInterfaces<org::ferry::Pull1_adaptor> {
public:
    // startRound starts the round of due nodes (false: one is running).
    PullAdaptor(sdbus::IConnection& bus, ferry::EventLoop& loop, Puller& puller, std::function<bool()> startRound);
    ~PullAdaptor();

private:
    void PullNow(sdbus::Result<uint64_t, std::string>&& result, std::string node) override;
    void PullAll(sdbus::Result<uint32_t, uint32_t>&& result) override;
    std::string RunRound() override;
    std::vector<sdbus::Struct<std::string, uint64_t, uint64_t, std::string, uint64_t, uint64_t, uint64_t>> Nodes() override;
    uint64_t LastRound() override;
    uint32_t Concurrency() override;

    ferry::EventLoop& m_loop;
    Puller& m_puller;
    std::function<bool()> m_startRound;
    // Last: its destructor waits for running pulls, which use the above.
    ferry::BackgroundJobs m_jobs;
};

} // namespace pulld
