#pragma once
// Firewall over libnftables: one context per transaction, errors buffered and
// returned in the exception message.

#include "Network.h"

namespace vpnfwd {

class NftFirewall final : public Firewall {
public:
    void run(const std::string& script) override;
};

} // namespace vpnfwd
