#pragma once
// org.ferry.FwCheck1 on /org/ferry/FwCheck1: a thin layer over Manager.
// Checks run one at a time as a background job (ferry::BackgroundJobs with
// a limit of one; they list the firewall and run iptables-save and sshd -T);
// results come back through the event loop, which alone touches the bus.
// Callers who ask while a check runs share the next one, which starts when
// the running one ends: at most one worker thread and kMaxWaiting callers
// exist at any time.

#include <memory>
#include <vector>

#include <sdbus-c++/sdbus-c++.h>

#include "Manager.h"
#include "ferry/BackgroundJobs.h"
#include "ferry/Bus.h"
#include "org.ferry.FwCheck1-adaptor.h"

namespace fwcheck {

class FwCheckAdaptor final : public sdbus::AdaptorInterfaces<org::ferry::FwCheck1_adaptor> {
public:
    using FindingStruct = sdbus::Struct<std::string, std::string, std::string, std::string>;

    FwCheckAdaptor(sdbus::IConnection& bus, ferry::EventLoop& loop, Manager& manager);
    ~FwCheckAdaptor();

    // More callers than this waiting for one check get Error.Busy.
    static constexpr std::size_t kMaxWaiting = 64;

    // Checks now (or right after the running check) and only updates the
    // properties (used at start-up when the timer or a path unit started us).
    void checkInBackground();
    // The same, logged as a reaction to a changed file.
    void recheckAfterChange();
    // The same, logged as asked for through the request file (pushd writes
    // it when push turns on because pulls stopped coming).
    void checkOnRequest();

private:
    void Check(sdbus::Result<std::vector<FindingStruct>>&& result) override;
    std::string Verdict() override;
    uint64_t LastCheck() override;
    std::vector<FindingStruct> Findings() override;
    std::vector<sdbus::Struct<std::string, std::string, std::string, std::string, std::string>> Masters() override;

    using Caller = std::shared_ptr<sdbus::Result<std::vector<FindingStruct>>>;
    void requestCheck();
    void startCheck();
    // after on success, else error.
    void finishCheck(const std::vector<Caller>& callers, const Report& before, const Report* after,
                     const sdbus::Error* error);
    void publish(const Report& before, const Report& after);

    ferry::EventLoop& m_loop;
    Manager& m_manager;
    // Loop thread only.
    bool m_checking = false;
    bool m_checkAgain = false;       // a request came in while checking
    std::vector<Caller> m_waiting;   // callers of the next check
    // Last: its destructor waits for a running check, which uses the above.
    ferry::BackgroundJobs m_jobs;
};

} // namespace fwcheck
