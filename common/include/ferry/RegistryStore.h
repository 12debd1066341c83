#pragma once
// The node registry on the master (registryd, ferryctl master): the `nodes`
// table (shared with collectord and pulld) plus what registration needs on
// top of it — the pending request of a node the master has no secret for
// yet, the nonces already used, host keys, policies and certificates. On
// either backend (SqlConnection.h): master.db, or a PostgreSQL database that
// several masters' registryds share, so a node registered at one master is
// known to all. Not thread-safe: the Manager serialises access.

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "ferry/AuthorizedKeysView.h"
#include "ferry/Error.h"
#include "ferry/SessionStore.h"
#include "ferry/SqlConnection.h"

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
    // The node's sshd host keys pinned for pulls, and a changed set that a
    // later signed registration brought and the operator has not accepted.
    std::vector<std::string> hostKeys;
    std::vector<std::string> pendingHostKeys;
    std::int64_t pendingHostKeysSeenMs = 0;
    // The operator's per-node period floor (seconds; nullopt: the master default).
    std::optional<std::uint32_t> minPushPeriodS;
    std::optional<std::uint32_t> minPullIntervalS;
};

// What a signed registration's host keys did to the pins (checkHostKeys).
struct HostKeyCheck {
    enum class Outcome { NotSent, Pinned, Unchanged, Changed } outcome = Outcome::NotSent;
    std::vector<std::string> pinned;  // the keys pinned before this registration
};

class RegistryStore {
public:
    // master.db at databasePath (created or migrated).
    explicit RegistryStore(const std::string& databasePath);
    // Any backend (MasterStoreOpener::tables()).
    explicit RegistryStore(std::unique_ptr<SqlConnection> connection);
    // Any backend, with a way to open the connection again (reopen()).
    explicit RegistryStore(std::function<std::unique_ptr<SqlConnection>()> connect);

    // Drops the connection and opens a new one (registryd, after a request
    // failed: a PostgreSQL server that dropped the connection, or a
    // master.db replaced on disk, must not leave it answering "internal"
    // until it restarts). Throws like opening does; without a way to
    // connect again (the other constructors) it only throws Error.
    void reopen();

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
    // last_seen. The caller logs a new or rotated key (once its transaction
    // committed), from the node it read before.
    void recordKey(const std::string& name, const std::string& publicKey, const std::string& mode,
                   const std::string& peerHost, std::uint16_t sshPort, std::int64_t nowMs);
    void touch(const std::string& name, std::int64_t nowMs);
    // A registration from a node without a secret here: kept as pending with
    // the signed request, so that accepting it later with the node's secret
    // can check that the key really came from that node.
    // The first unsigned registration of a name creates the pending row;
    // later unsigned ones change nothing (nobody can prove they are the node),
    // so a stranger cannot rewrite a pending node's key, mode, port or
    // address. Returns true when it created the row.
    bool addPending(const std::string& name, const std::string& publicKey, const std::string& mode,
                    std::uint16_t sshPort, const std::string& signedRequest, const std::string& mac,
                    const std::string& peerHost, std::int64_t nowMs);
    std::size_t countUnsignedPending();

    // Host keys (issue 13): the keys a node proved with its secret are
    // pinned at its first registration that carries any (outcome Pinned:
    // the caller logs it); a later signed
    // registration with a different set is not pinned but kept as a pending
    // change for the operator (acceptHostKeys). Keys are "type base64".
    HostKeyCheck checkHostKeys(const std::string& name, const std::vector<std::string>& keys, std::int64_t nowMs);
    std::vector<std::string> hostKeys(const std::string& name);
    // Pins the pending change; throws NoSuchNode, or Error when there is none.
    void acceptHostKeys(const std::string& name);

    // Certificates (issue 15): the node's current certificate, if any.
    struct Certificate {
        std::uint64_t serial = 0;
        std::string publicKey;  // the key it certifies
        std::string line;
        std::int64_t validToMs = 0;
    };
    std::optional<Certificate> certificate(const std::string& name);
    std::uint64_t nextCertificateSerial();
    // Replaces the node's certificate; a previous one is revoked (its key
    // may have been rotated away because it was stolen). False, storing
    // nothing, when another master took the serial meanwhile: sign again
    // with a new one.
    bool storeCertificate(const std::string& name, const Certificate& certificate, std::int64_t nowMs);
    // Revokes the node's current certificate (decline, revoke). Returns true
    // when there was one.
    bool revokeCertificate(const std::string& name, std::int64_t nowMs);
    // Every revoked certificate: serial and node.
    std::vector<std::pair<std::uint64_t, std::string>> revokedCertificates();
    // The serials of certificates revoked at or after revokedSinceMs: those
    // that may not have expired yet, which is all a KRL must hold.
    std::vector<std::uint64_t> revokedSerials(std::int64_t revokedSinceMs);
    // How many revocations there have ever been. Revocations are only ever
    // added, so every master sees this grow at each one (it is the KRL's
    // version): the cheap question a master asks to keep its KRL current.
    std::uint64_t revocationCount();

    // Period floor (issue 15): the per-node override, nullopt to use the
    // master's default. Throws NoSuchNode.
    void setPolicy(const std::string& name, std::optional<std::uint32_t> minPushPeriodS,
                   std::optional<std::uint32_t> minPullIntervalS);

    // Operator actions. Each throws NoSuchNode (addNode excepted).
    // addNode enrols (or re-keys) a node with its secret, state accepted.
    // A pending key is kept only if its stored request verifies with the secret.
    void addNode(const std::string& name, const std::string& secret);
    // Accepts a node; secret may be empty when the master already has one.
    void accept(const std::string& name, const std::string& secret);
    // Replaces a legacy credential (the node secret) with the key derived
    // from it for one master id, once the node proved itself for that id.
    void replaceLegacySecret(const std::string& name, const std::string& credential);
    void decline(const std::string& name, const std::string& reason);
    void revoke(const std::string& name, const std::string& reason);

    // The master's counters (master_counters), on either backend.
    void addCounters(const std::vector<CounterDelta>& deltas);

    // The pinned host keys of node in the master database at databasePath,
    // read without creating or migrating anything (for pulld); empty when
    // the node has none or the registry tables do not exist yet.
    static std::vector<std::string> pinnedHostKeys(const std::string& databasePath, const std::string& node);
    // The same on any backend (whose schema is current).
    static std::vector<std::string> pinnedHostKeys(SqlConnection& connection, const std::string& node);

    SqlConnection& connection() { return *m_db; }

    // Keeps the AuthorizedKeysCommand helper's view (AuthorizedKeysView.h)
    // at path current: rewritten after every operation above that changes
    // which key may log in (recordKey with a new key, addNode, accept,
    // decline, revoke). Only for master.db: on PostgreSQL the helper reads
    // the shared registry, which every master changes.
    void keepAuthorizedKeysView(std::string path);
    // Rewrites the view now (at start: after an upgrade or a crash between
    // a change and its view); the number of keys in it, 0 without a view.
    std::size_t writeAuthorizedKeysView();
    // registryd: a change no longer rewrites the view itself; it only
    // counts a generation (authorizedKeysViewWanted), and the caller writes
    // the view from authorizedKeysViewRows() before it answers anyone about
    // that change (registryd::Manager::flushView groups the rewrites of
    // changes made at once: a storm of first registrations would otherwise
    // rewrite the whole view once per node).
    void deferAuthorizedKeysView();
    // Changes made so far that the view must show (0 when none, or no
    // deferred view).
    std::uint64_t authorizedKeysViewWanted() const { return m_viewWanted; }
    const std::string& authorizedKeysViewFile() const { return m_viewPath; }
    AuthorizedKeysRows authorizedKeysViewRows();

private:
    void viewChanged();
    void pinHostKeys(const std::string& name, const std::vector<std::string>& keys);
    void setState(const std::string& name, const std::string& state, const std::string& reason);
    void applySecret(const std::string& name, const std::string& secret);

    std::function<std::unique_ptr<SqlConnection>()> m_connect;
    std::unique_ptr<SqlConnection> m_connection;
    SqlConnection* m_db;
    std::string m_viewPath;
    bool m_viewDeferred = false;
    std::uint64_t m_viewWanted = 0;
};

// known_hosts text pinning keys for an sshd at host:port, in OpenSSH's
// form ("host" for port 22, "[host]:port" otherwise), one line per key.
std::string knownHostsText(const std::string& host, std::uint16_t port, const std::vector<std::string>& keys);

// registry.yml's period floor for nodes without their own (seconds; 0: none).
struct PeriodPolicy {
    std::uint32_t minPushPeriodS = 0;
    std::uint32_t minPullIntervalS = 0;
};
// The floor that applies to node: its own override, else the default.
PeriodPolicy effectivePolicy(const RegistryNode& node, PeriodPolicy defaults);

// Thrown for operator actions on a node the registry does not have.
class NoSuchNode : public Error {
public:
    using Error::Error;
};
// Thrown by acceptHostKeys when the node has no changed host key waiting.
class NoHostKeyChange : public Error {
public:
    using Error::Error;
};
// Thrown when a node must be accepted with its secret (the master has none).
class SecretRequired : public Error {
public:
    using Error::Error;
};

} // namespace ferry
