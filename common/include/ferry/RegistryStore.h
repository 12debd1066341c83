#pragma once
// The node registry on the master (registryd, ferryctl master): the `nodes` table of master.db (shared
// with collectord and pulld through MasterStore) plus what registration
// needs on top of it — the pending request of a node the master has no
// secret for yet, and the nonces already used. Not thread-safe: the Manager
// serialises access.

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "ferry/Error.h"
#include "ferry/MasterStore.h"

namespace ferry {

struct RegistryNode {
    std::string name;
    std::string state;  // accepted | pending | declined | revoked
    std::string mode;
    std::string publicKey;
    std::string sshHost;
    std::int64_t firstSeenMs = 0;
    std::int64_t lastSeenMs = 0;
    std::string reason;
    bool hasSecret = false;
};

class RegistryStore {
public:
    explicit RegistryStore(const std::string& databasePath);

    std::optional<RegistryNode> node(const std::string& name);
    std::vector<RegistryNode> nodes();
    // The node's secret, or nullopt when the master has none (unknown or
    // enrolled only by an unsigned pending registration).
    std::optional<std::string> secret(const std::string& name);

    // Records a nonce; false when (node, nonce) was seen before. Forgets
    // nonces older than keepMs, which must exceed the accepted clock skew.
    bool rememberNonce(const std::string& name, const std::string& nonce, std::int64_t nowMs, std::int64_t keepMs);
    // Stores what a node proved with its secret (key, mode, where its sshd
    // is: the address it registered from and the port it gave) and updates
    // last_seen.
    void recordKey(const std::string& name, const std::string& publicKey, const std::string& mode,
                   const std::string& peerHost, std::uint16_t sshPort, std::int64_t nowMs);
    void touch(const std::string& name, std::int64_t nowMs);
    // A registration from a node without a secret here: kept as pending with
    // the signed request, so that accepting it later with the node's secret
    // can check that the key really came from that node.
    void addPending(const std::string& name, const std::string& publicKey, const std::string& mode,
                    std::uint16_t sshPort, const std::string& signedRequest, const std::string& mac,
                    const std::string& peerHost, std::int64_t nowMs);
    std::size_t countUnsignedPending();

    // Operator actions. Each throws NoSuchNode (addNode excepted).
    // addNode enrols (or re-keys) a node with its secret, state accepted.
    // A pending key is kept only if its stored request verifies with the secret.
    void addNode(const std::string& name, const std::string& secret);
    // Accepts a node; secret may be empty when the master already has one.
    void accept(const std::string& name, const std::string& secret);
    void decline(const std::string& name, const std::string& reason);
    void revoke(const std::string& name, const std::string& reason);

private:
    void setState(const std::string& name, const std::string& state, const std::string& reason);
    void applySecret(const std::string& name, const std::string& secret);

    MasterStore m_store;
    Database& m_db;
};

// Thrown for operator actions on a node the registry does not have.
class NoSuchNode : public Error {
public:
    using Error::Error;
};
// Thrown when a node must be accepted with its secret (the master has none).
class SecretRequired : public Error {
public:
    using Error::Error;
};

} // namespace ferry
