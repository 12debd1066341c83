#pragma once
// org.ferry.VpnForwarder1 on /org/ferry/VpnForwarder1: a thin layer over
// Manager. Every member runs through ferry::busCall.

#include <string>
#include <vector>

#include <sdbus-c++/sdbus-c++.h>

#include "Manager.h"
#include "ferry/Bus.h"
#include "org.ferry.VpnForwarder1-adaptor.h"

namespace vpnfwd {

inline constexpr const char* kBusName = "org.ferry.VpnForwarder1";
inline constexpr const char* kObjectPath = "/org/ferry/VpnForwarder1";

class VpnForwarderAdaptor final
    : public sdbus::AdaptorInterfaces<org::ferry::VpnForwarder1_adaptor, sdbus::Properties_adaptor> {
public:
    VpnForwarderAdaptor(sdbus::IConnection& bus, ferry::EventLoop& loop, Manager& manager);
    ~VpnForwarderAdaptor();

    void emitChanged(const std::vector<std::string>& properties);

private:
    void SetLanAccess(const bool& enabled) override;
    void SetHostControl(const bool& enabled) override;
    void Reapply() override;
    bool LinkUp() override;
    bool Forwarding() override;
    std::string VpnInterface() override;
    std::string VpnAddress() override;
    std::string ContainerAddress() override;
    std::vector<sdbus::Struct<uint16_t, uint16_t>> ForwardedPorts() override;
    uint16_t HostControlPort() override;
    bool LanAccess() override;
    bool HostControl() override;
    std::string LastError() override;

    template <typename F>
    auto call(const char* member, F&& f)
    {
        return ferry::busCall(m_loop, org::ferry::VpnForwarder1_adaptor::INTERFACE_NAME, member, std::forward<F>(f));
    }

    ferry::EventLoop& m_loop;
    Manager& m_manager;
};

} // namespace vpnfwd
