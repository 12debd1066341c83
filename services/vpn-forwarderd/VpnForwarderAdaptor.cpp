#include "VpnForwarderAdaptor.h"

#include "ferry/Error.h"

namespace vpnfwd {

namespace {
const std::string kErrorApplyFailed = "org.ferry.VpnForwarder1.Error.ApplyFailed";
const std::string kErrorRefused = "org.ferry.VpnForwarder1.Error.Refused";
} // namespace

VpnForwarderAdaptor::VpnForwarderAdaptor(sdbus::IConnection& bus, ferry::EventLoop& loop, Manager& manager)
    : AdaptorInterfaces(bus, kObjectPath), m_loop(loop), m_manager(manager)
{
    registerAdaptor();
}

VpnForwarderAdaptor::~VpnForwarderAdaptor()
{
    unregisterAdaptor();
}

void VpnForwarderAdaptor::emitChanged(const std::vector<std::string>& properties)
{
    try {
        emitPropertiesChangedSignal(org::ferry::VpnForwarder1_adaptor::INTERFACE_NAME, properties);
    } catch (const sdbus::Error& e) {
        spdlog::warn("Ignoring a failure to emit PropertiesChanged: {}", e.getMessage());
    }
}

void VpnForwarderAdaptor::SetLanAccess(const bool& enabled)
{
    call("SetLanAccess", [&] {
        try {
            m_manager.setLanAccess(enabled);
        } catch (const ferry::Error& e) {
            throw ferry::BusError(kErrorApplyFailed, e.what());
        }
    });
}

void VpnForwarderAdaptor::SetHostControl(const bool& enabled)
{
    call("SetHostControl", [&] {
        try {
            m_manager.setHostControl(enabled);
        } catch (const ferry::Error& e) {
            throw ferry::BusError(kErrorApplyFailed, e.what());
        }
    });
}

void VpnForwarderAdaptor::Reapply()
{
    call("Reapply", [&] {
        m_manager.refresh(true);
        const auto& s = m_manager.status();
        if (!s.lastError.empty())
            throw ferry::BusError(s.refused ? kErrorRefused : kErrorApplyFailed, s.lastError);
    });
}

bool VpnForwarderAdaptor::LinkUp()
{
    return call("LinkUp", [&] { return m_manager.status().linkUp; });
}

bool VpnForwarderAdaptor::Forwarding()
{
    return call("Forwarding", [&] { return m_manager.status().forwarding; });
}

std::string VpnForwarderAdaptor::VpnInterface()
{
    return call("VpnInterface", [&] { return m_manager.config().vpnInterface; });
}

std::string VpnForwarderAdaptor::VpnAddress()
{
    return call("VpnAddress", [&] {
        const auto& a = m_manager.status().vpnAddress;
        return a ? a->text() : std::string{};
    });
}

std::string VpnForwarderAdaptor::ContainerAddress()
{
    return call("ContainerAddress", [&] { return formatIpv4(m_manager.config().containerAddress); });
}

std::vector<sdbus::Struct<uint16_t, uint16_t>> VpnForwarderAdaptor::ForwardedPorts()
{
    return call("ForwardedPorts", [&] {
        std::vector<sdbus::Struct<uint16_t, uint16_t>> out;
        for (const auto& r : m_manager.config().forwardedPorts)
            out.emplace_back(r.first, r.last);
        return out;
    });
}

uint16_t VpnForwarderAdaptor::HostControlPort()
{
    return call("HostControlPort", [&] { return m_manager.config().hostControlPort; });
}

bool VpnForwarderAdaptor::LanAccess()
{
    return call("LanAccess", [&] { return m_manager.status().toggles.lanAccess; });
}

bool VpnForwarderAdaptor::HostControl()
{
    return call("HostControl", [&] { return m_manager.status().toggles.hostControl; });
}

std::string VpnForwarderAdaptor::LastError()
{
    return call("LastError", [&] { return m_manager.status().lastError; });
}

} // namespace vpnfwd
