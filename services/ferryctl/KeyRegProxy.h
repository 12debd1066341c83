#pragma once
// A client of org.ferry.KeyReg1 through the generated proxy.

#include <sdbus-c++/sdbus-c++.h>

#include "org.ferry.KeyReg1-proxy.h"

namespace ferryctl {

class KeyRegProxy final : public sdbus::ProxyInterfaces<org::ferry::KeyReg1_proxy> {
public:
    explicit KeyRegProxy(sdbus::IConnection& bus) : ProxyInterfaces(bus, "org.ferry.KeyReg1", "/org/ferry/KeyReg1")
    {
        registerProxy();
    }
    ~KeyRegProxy() { unregisterProxy(); }

private:
    void onStateChanged(const std::string&, const std::string&) override {}
};

} // namespace ferryctl
