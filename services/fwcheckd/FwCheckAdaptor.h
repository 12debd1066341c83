#pragma once
// org.ferry.FwCheck1 on /org/ferry/FwCheck1: a thin layer over Manager.
// Checks run on a worker thread (they run iptables-save, nft and sshd -T);
// results come back through the event loop, which alone touches the bus.

#include <list>
#include <thread>

#include <sdbus-c++/sdbus-c++.h>

#include "Manager.h"
#include "ferry/Bus.h"
#include "org.ferry.FwCheck1-adaptor.h"

namespace fwcheck {

class FwCheckAdaptor final : public sdbus::AdaptorInterfaces<org::ferry::FwCheck1_adaptor> {
public:
    using FindingStruct = sdbus::Struct<std::string, std::string, std::string, std::string>;

    FwCheckAdaptor(sdbus::IConnection& bus, ferry::EventLoop& loop, Manager& manager);
    ~FwCheckAdaptor();

    // Starts a check whose result only updates the properties (used at
    // start-up: the daemon was started by its timer or a path unit).
    void checkInBackground();
    // Like checkInBackground, but folds changes during a running check into
    // one more check afterwards.
    void recheckAfterChange();

private:
    void Check(sdbus::Result<std::vector<FindingStruct>>&& result) override;
    std::string Verdict() override;
    uint64_t LastCheck() override;
    std::vector<FindingStruct> Findings() override;
    std::vector<sdbus::Struct<std::string, std::string, std::string, std::string, std::string>> Masters() override;

    void startCheck(std::shared_ptr<sdbus::Result<std::vector<FindingStruct>>> result);
    void publish(const Report& before, const Report& after);

    ferry::EventLoop& m_loop;
    Manager& m_manager;
    std::list<std::thread> m_workers;
    bool m_checking = false;     // loop thread only
    bool m_checkAgain = false;   // a change came in while checking
};

} // namespace fwcheck
