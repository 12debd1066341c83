#pragma once
// One registration exchange with one master over TCP (RegistryProtocol.h):
// connect, send the signed request, read and authenticate the answer.

#include <chrono>
#include <string>

#include "ferry/Error.h"
#include "ferry/NodeConfig.h"
#include "ferry/RegistryProtocol.h"

namespace keyregd {

struct MasterAnswer {
    ferry::RegistrationState state = ferry::RegistrationState::Pending;
    std::string reason;
    std::vector<std::string> hostKeys;  // only from a signed answer
    std::string pullKey;                // the master's pull key; only from a signed answer
    bool signedByMaster = false;        // the answer carried a valid MAC with our secret
    // The master's period floor for this node (signed answers of version 2 only; 0: none).
    std::uint32_t minPushPeriodS = 0;
    std::uint32_t minPullIntervalS = 0;
    std::string certificate;  // signed answers only
};

// The master answered with an Error frame ("not-accepted", "hostkey-changed", …).
class RegistrationRefused : public ferry::Error {
public:
    RegistrationRefused(std::string code, const std::string& message) : Error(message), m_code(std::move(code)) {}
    const std::string& code() const { return m_code; }

private:
    std::string m_code;
};

struct ClientTimeouts {
    std::chrono::milliseconds connect{10000};
    std::chrono::milliseconds io{30000};
};

// Throws RegistrationRefused for an error answer, ferry::AuthError for an
// answer that fails authentication, other ferry::Error for network and
// protocol failures; every message names the master.
// mode and sshPort tell the master how to pull this node, sshdHostKeys
// ("type base64") let it pin this node's sshd for those pulls.
MasterAnswer registerWithMaster(const ferry::MasterAddress& master, const std::string& node,
                                const std::string& publicKey, const std::string& mode, std::uint16_t sshPort,
                                const std::vector<std::string>& sshdHostKeys, const std::string& secret,
                                ClientTimeouts timeouts);

// "host:port" as used in messages and the state file.
std::string masterLabel(const ferry::MasterAddress& master);

} // namespace keyregd
