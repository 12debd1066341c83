#pragma once
// org.ferry.Registry1 over the registryd Manager: argument checks and error
// names only; every call runs through ferry::busCall.

#include "org.ferry.Registry1-adaptor.h"

#include "Manager.h"
#include "ferry/Bus.h"

namespace registryd {

class RegistryAdaptor final : public sdbus::AdaptorInterfaces<org::ferry::Registry1_adaptor> {
public:
    static constexpr const char* kObjectPath = "/org/ferry/Registry1";
    static constexpr const char* kInterface = "org.ferry.Registry1";

    RegistryAdaptor(sdbus::IConnection& bus, ferry::EventLoop& loop, Manager& manager);
    ~RegistryAdaptor();

private:
    std::vector<sdbus::Struct<std::string, std::string, std::string, std::string, std::string, std::string, int64_t,
                              int64_t, std::string, bool>>
    ListNodes() override;
    void AddNode(const std::string& name, const std::string& secret) override;
    void Accept(const std::string& name, const std::string& secret) override;
    void Decline(const std::string& name, const std::string& reason) override;
    void Revoke(const std::string& name, const std::string& reason) override;
    void AcceptHostKeys(const std::string& name) override;
    void SetNodePolicy(const std::string& name, const int64_t& minPushPeriodS, const int64_t& minPullIntervalS) override;

    template <typename F>
    auto call(const char* member, F&& f);

    ferry::EventLoop& m_loop;
    Manager& m_manager;
};

} // namespace registryd
