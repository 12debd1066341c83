#pragma once
// org.ferry.Pull1 on /org/ferry/Pull1, over the Puller. Pulls run on worker
// threads; results go back through the event loop.

#include <atomic>
#include <functional>
#include <memory>
#include <thread>
#include <vector>

#include <sdbus-c++/sdbus-c++.h>

#include "Puller.h"
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

    // Runs work on its own thread while holding the loop; the reply is sent
    // from the loop thread.
    template <typename Work>
    void inWorker(Work work);

    struct Worker {
        std::thread thread;
        std::shared_ptr<std::atomic<bool>> done;
    };

    ferry::EventLoop& m_loop;
    Puller& m_puller;
    std::function<bool()> m_startRound;
    // Joined when finished (on the next call) and at destruction, so that no
    // pull outlives the objects it uses. Touched on the loop thread only.
    std::vector<Worker> m_workers;
};

} // namespace pulld
