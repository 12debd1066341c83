#pragma once
// org.ferry.Collector1 on /org/ferry/Collector1, over Collector and the store.

#include <sdbus-c++/sdbus-c++.h>

#include "Collector.h"
#include "ferry/Bus.h"
#include "org.ferry.Collector1-adaptor.h"

namespace collectord {

class CollectorAdaptor final : public sdbus::AdaptorInterfaces<org::ferry::Collector1_adaptor> {
public:
    CollectorAdaptor(sdbus::IConnection& bus, ferry::EventLoop& loop, Collector& collector);
    ~CollectorAdaptor();

private:
    std::vector<sdbus::Struct<std::string, std::string, uint64_t, uint64_t, uint64_t, uint64_t>> ListNodes() override;
    std::tuple<std::string, uint64_t, uint64_t, uint64_t, uint64_t> GetNode(const std::string& name) override;
    uint64_t Sessions() override;
    uint64_t RecordsStored() override;

    ferry::EventLoop& m_loop;
    Collector& m_collector;
};

} // namespace collectord
