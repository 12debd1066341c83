#pragma once
// registryd's core: answers registration requests from nodes and carries
// out the operator's list/add/accept/decline/revoke, all over one Registry.
// Knows nothing of sockets or D-Bus; thread-safe (one lock around the
// registry, whose operations are short).

#include <chrono>
#include <cstdint>
#include <functional>
#include <mutex>
#include <string>
#include <vector>

#include "ferry/RegistryStore.h"
#include "ferry/Wire.h"

namespace registryd {

struct ManagerOptions {
    std::vector<std::string> hostKeys;  // the master sshd's public host keys, "type base64"
    // pulld's public key (made by ferry-master's postinst, or by pulld at its
    // first start), handed to accepted nodes so that they let pulls in. Read
    // at each answer: it may appear after registryd started. Empty: none.
    std::string pullKeyFile;
    // Registrations from nodes the master has no secret for wait as pending
    // (true) or are refused with "unknown-node" (false).
    bool acceptUnknown = true;
    // How far a node's clock may be from ours; requests outside are refused.
    std::chrono::milliseconds maxClockSkew{std::chrono::minutes(5)};
    // Bound on unsigned pending registrations, so that strangers cannot fill the table.
    std::size_t maxPending = 1000;
};

class Manager {
public:
    Manager(ferry::RegistryStore& registry, ManagerOptions options, std::function<std::int64_t()> clock);

    // One Request frame from a node → the Response or Error frame to send.
    // Bad input becomes an Error frame and a log line, never an exception.
    ferry::Frame handle(const ferry::Frame& request, const std::string& peer);

    std::vector<ferry::RegistryNode> nodes();
    void addNode(const std::string& name, const std::string& secret);
    void accept(const std::string& name, const std::string& secret);
    void decline(const std::string& name, const std::string& reason);
    void revoke(const std::string& name, const std::string& reason);

private:
    ferry::Frame registerNode(const ferry::Frame& request, const std::string& peer);
    std::string pullKey() const;

    std::mutex m_mutex;
    ferry::RegistryStore& m_registry;
    ManagerOptions m_options;
    std::function<std::int64_t()> m_clock;
};

// "192.0.2.1" from "192.0.2.1:4242", "2001:db8::1" from "[2001:db8::1]:4242".
std::string hostOfPeer(const std::string& peer);

} // namespace registryd
