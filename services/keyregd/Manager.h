#pragma once
// keyregd's core: the node's key pair, one registration round with every
// configured master, the pinned master host keys (known_hosts for pushd),
// the persisted status, and the backoff between rounds. No D-Bus here.

#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <mutex>
#include <random>
#include <string>
#include <vector>

#include "RegistrationClient.h"
#include "ferry/Error.h"
#include "ferry/NodeCertificates.h"
#include "ferry/NodeConfig.h"
#include "ferry/RegistryProtocol.h"

namespace keyregd {

struct Status {
    std::string state = "unregistered";  // unregistered | accepted | pending | declined | failing
    std::string reason;
    std::string fingerprint;
    std::string masterHostKeyFingerprint;
    std::int64_t lastAttemptMs = 0;
    std::string lastError;

    bool operator==(const Status&) const = default;
};

// What one master last said, persisted so that a fresh keyregd answers at
// once and keeps the pins of a master it cannot reach right now.
struct MasterRecord {
    std::string host;
    std::uint16_t sshPort = 22;
    std::uint16_t registryPort = 50010;
    std::string state = "unregistered";  // accepted | pending | declined | failing | unregistered
    std::string reason;
    std::vector<std::string> hostKeys;  // pinned; only ever from a signed "accepted"
    std::uint32_t minPushPeriodS = 0;   // the master's floor, from its last signed answer
    std::uint32_t minPullIntervalS = 0;
    std::string certificate;            // the node's SSH certificate from this master's CA ("" none)
    // The master's pull key, from the same signed answer. keyregd cannot
    // install it (it is not root): `ferryctl node trust-master`, started by
    // ferry-trust-master.path when registration.json changes, renders it into
    // the root-owned /etc/ferry/pull_authorized_keys.
    std::string pullKey;
};

// The node's SSH certificate (<key>-cert.pub) as of some moment.
struct CertificateState {
    bool present = false;
    ferry::CertificateInfo info;
    bool due = false; // less than a third of its lifetime is left (or it is expired)
    bool expired = false;
    std::int64_t dueFromMs = 0; // when less than a third will be left
};

struct Renewal {
    bool renewed = false; // a new certificate was stored
    std::string summary;
};

// Thrown when the certificate could not be renewed in time; the message
// names the node, the certificate and why.
class CertificateError : public ferry::Error {
public:
    using ferry::Error::Error;
};

struct ManagerOptions {
    std::chrono::milliseconds retryInitial{2000};
    std::chrono::milliseconds retryMax{std::chrono::minutes(10)};
    // Where this node's sshd host keys are (ssh_host_*_key.pub), sent to the
    // masters so that they pin them for pulls.
    std::string sshdHostKeyDir = "/etc/ssh";
};

// The node's sshd public host keys ("type base64") from dir/ssh_host_*_key.pub,
// sorted by file name; unreadable or malformed ones are skipped with a warning.
// The strictest floor of the accepted masters (0: none).
ferry::PeriodFloor strictestFloor(const std::vector<MasterRecord>& masters);

class Manager {
public:
    Manager(ferry::Paths paths, ferry::NodeConfig config, ManagerOptions options);

    // Creates the secret and the key pair if missing, loads the persisted
    // status. Separate from the constructor: it does I/O.
    void prepare();

    Status status() const;
    // One round with every master. Returns true when another round is
    // needed (a master unreachable, or still pending). Serialised.
    bool registerOnce();
    // Key rotation: a new key pair replaces the current one and is registered
    // with every master at once. When no master accepts the new key, the
    // previous pair is put back (pushes keep working with it). Returns as
    // registerOnce.
    bool rotateKey();
    // Certificate renewal (ferry-cert-renew.timer, through RenewCertificate):
    // the certificate as of nowMs, and, when it is due, a registration round
    // (the registry signs a new certificate once less than half of the
    // current one is left, so a third here is always past that). Returns a
    // one-line summary; throws CertificateError naming the node when the
    // certificate is still due or expired afterwards, or unreadable.
    CertificateState certificateState(std::int64_t nowMs) const;
    Renewal renewCertificate(std::int64_t nowMs);
    // The wait before the next round: exponential with jitter; reset by a
    // round that needs no retry.
    std::chrono::milliseconds nextDelay();

    // Runs (on the registering thread) whenever the status changed.
    void setOnChange(std::function<void(const Status& before, const Status& after)> fn);

    // known_hosts text for the accepted masters ("" when none).
    static std::string knownHostsText(const std::vector<MasterRecord>& masters);

private:
    // acceptedNow: how many masters accepted the key in this very round.
    bool registerLocked(std::size_t* acceptedNow = nullptr);
    void load();
    void save();
    void writeKnownHosts();
    // Stores the masters' period floor for ferry-push-generator and says,
    // once per change, when it overrides the configured push period.
    void writePeriodFloor();
    // <key>-cert.pub: the certificate of the first accepted master that sent
    // one (pushd's SSH login offers it first); removed when there is none.
    void writeCertificate();
    void update(const std::function<void(Status&)>& change);
    std::string stateFile() const { return m_paths.stateDir + "/registration.json"; }

    ferry::Paths m_paths;
    ferry::NodeConfig m_config;
    ManagerOptions m_options;

    std::mutex m_roundMutex;       // one round at a time
    mutable std::mutex m_mutex;    // guards the members below
    Status m_status;
    std::vector<MasterRecord> m_masters;
    int m_failures = 0;
    std::mt19937_64 m_random;
    std::function<void(const Status&, const Status&)> m_onChange;
};

} // namespace keyregd
