#pragma once
// org.ferry.Pull1 on /org/ferry/Pull1, over the Puller. Pulls run on worker
// threads; results go back through the event loop.

#include <sdbus-c++/sdbus-c++.h>

#include "Puller.h"
#include "ferry/Bus.h"
#include "org.ferry.Pull1-adaptor.h"

namespace pulld {

class PullAdaptor final : public sdbus::AdaptorInterfaces<org::ferry::Pull1_adaptor> {
public:
    PullAdaptor(sdbus::IConnection& bus, ferry::EventLoop& loop, Puller& puller);
    ~PullAdaptor();

private:
    void PullNow(sdbus::Result<uint64_t, std::string>&& result, std::string node) override;
    void PullAll(sdbus::Result<uint32_t, uint32_t>&& result) override;
    std::vector<sdbus::Struct<std::string, uint64_t, uint64_t, std::string, uint64_t, uint64_t, uint64_t>> Nodes() override;
    uint64_t LastRound() override;
    uint32_t Concurrency() override;

    // Runs work on its own thread while holding the loop; the reply is sent
    // from the loop thread.
    template <typename Work>
    void inWorker(Work work);

    ferry::EventLoop& m_loop;
    Puller& m_puller;
};

} // namespace pulld
