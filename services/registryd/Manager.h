#pragma once
// registryd's core: answers registration requests from nodes and carries
// out the operator's list/add/accept/decline/revoke, all over one Registry.
// Knows nothing of sockets or D-Bus; thread-safe (one lock around the
// registry, whose operations are short).
//
// Registrations are committed in groups (handle()): RegistryServer serves
// each connection on its own thread, and each thread queues its request.
// One of them at a time executes the queued requests into one transaction,
// each request in a nested one (a savepoint: a request that fails is undone
// alone, never half-stored), then commits the group with one synced COMMIT.
// Requests that arrive while a group executes or commits wait for the next
// group. Every request of a group is answered only after its group's COMMIT
// returned and the authorized keys view covers it, so an answer still means
// "durable, and its key logs in". The bounds: kMaxGroup requests and
// kMaxGroupTime of execution per group, kMaxWaiting queued requests.

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <functional>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include "ferry/AuthorizedKeysView.h"
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
    // (true) or are refused with "not-accepted" (false).
    bool acceptUnknown = true;
    // The period floor for nodes without their own (registry.yml).
    ferry::PeriodPolicy policy;
    // OpenSSH certificates (issue 15): with a CA key, accepted nodes get a
    // user certificate valid for certValidity, renewed at a registration
    // once less than half of it is left; revoked serials go to krlFile.
    std::string caKeyFile;  // "" = no certificates
    std::chrono::seconds certValidity{std::chrono::hours(24 * 7)};
    std::string certPrincipal = "ferry-tunnel"; // the tunnel user on the masters' sshd
    std::string krlFile;                  // default <state>/revoked_keys.krl
    // How often a running registryd asks the store whether another master
    // revoked a certificate (ferry-krl-sync.timer covers the time it is not
    // running). 0: only at start and at this master's own revocations.
    std::chrono::milliseconds krlRefresh{std::chrono::seconds(5)};
    // How far a node's clock may be from ours; requests outside are refused.
    std::chrono::milliseconds maxClockSkew{std::chrono::minutes(5)};
    // Bound on unsigned pending registrations, so that strangers cannot fill the table.
    std::size_t maxPending = 1000;
};

class Manager {
public:
    Manager(ferry::RegistryStore& registry, ManagerOptions options, std::function<std::int64_t()> clock);

    // Writes the KRL when certificates are on (sshd refuses every key while
    // its RevokedKeys file is missing). I/O, so not in the constructor.
    void prepare();

    // Rewrites the KRL when the store holds revocations it lacks (made by
    // another master sharing the store), or when it is older than
    // kKrlMaxAge (so that expired certificates drop out of it). Returns
    // whether it wrote. Without certificates: nothing.
    bool refreshKrl();

    // One Request frame from a node → the Response or Error frame to send.
    // Bad input becomes an Error frame and a log line, never an exception.
    ferry::Frame handle(const ferry::Frame& request, const std::string& peer);

    std::vector<ferry::RegistryNode> nodes();
    void addNode(const std::string& name, const std::string& secret);
    void accept(const std::string& name, const std::string& secret);
    void decline(const std::string& name, const std::string& reason);
    void revoke(const std::string& name, const std::string& reason);
    void acceptHostKeys(const std::string& name);
    void setPolicy(const std::string& name, std::optional<std::uint32_t> minPushPeriodS,
                   std::optional<std::uint32_t> minPullIntervalS);

    // How many times this Manager rewrote the authorized keys view (a
    // deferred view only: RegistryStore::deferAuthorizedKeysView).
    std::size_t viewWrites();
    // How many groups of registrations this Manager committed, and how many
    // registrations they held.
    std::uint64_t groupCommits();
    std::uint64_t groupedRegistrations();
    // Requests queued and not yet taken into a group.
    std::size_t waiting();

private:
    // A registration waiting for its group (handle()).
    struct Waiting {
        Waiting(const ferry::Frame& r, const std::string& p) : request(r), peer(p) {}
        const ferry::Frame& request;
        const std::string& peer;
        ferry::Frame answer;
        std::string outcome;
        std::string note;             // logged once its group committed
        bool done = false;            // committed and in the view (or failed): answer it
        std::condition_variable wake; // with m_groupMutex: done, or lead the next group
    };
    // Executes requests queued in m_waiting into one transaction and commits
    // it; with m_grouping set by the caller. Never throws: a failure becomes
    // the answers. The requests taken are appended to group.
    void runGroup(std::vector<Waiting*>& group);
    // After runGroup: waits until the view covers the group's changes.
    void finishGroup(const std::vector<Waiting*>& group);

    // With m_mutex held and a transaction open: one request in a nested
    // transaction, undone when it fails. internalFailure: the failure was
    // not a refusal (the store, most likely).
    // note: a line to log once the group committed ("" for none).
    ferry::Frame answer(const ferry::Frame& request, const std::string& peer, std::string& outcome, std::string& note,
                        bool& internalFailure);
    // outcome: accepted | pending | declined | unsigned (no valid proof of a
    // secret) | an Error frame's code; counted as registrations{outcome}.
    ferry::Frame registerNode(const ferry::Frame& request, const std::string& peer, std::string& outcome,
                              std::string& note);
    // The one answer to every registration the master cannot authenticate.
    ferry::Frame unauthenticatedAnswer(const std::string& nonce, std::int64_t now);
    // Logs a refusal of an unauthenticated peer: the first in each
    // 10-second window in full, the rest as one summary line.
    void logRefusal(const std::string& line);
    // The node's certificate, issued or renewed as needed ("" without a CA).
    std::string certificateFor(const std::string& name, const std::string& publicKey, std::int64_t now);
    void writeKrl();
    bool krlIsCurrent(std::uint64_t revocations);
    std::string pullKey() const;
    // With m_mutex held: opens the store again when a request failed since
    // it was last opened (a PostgreSQL server that dropped the connection,
    // a master.db replaced on disk). Throws like opening does, and then the
    // next request tries again.
    void reopenIfFailed();
    // fn() on the store under m_mutex, after reopenIfFailed(); any exception
    // marks the store for reopening and goes to the caller.
    template <typename Fn>
    auto withStore(Fn&& fn) -> decltype(fn());
    // Returns once the authorized keys view shows every change made to the
    // store before the call (a deferred view; otherwise at once). One
    // caller rewrites it, outside m_mutex, for all changes made so far;
    // callers that arrive meanwhile wait for the next rewrite, which covers
    // theirs. So a registration is answered only once its key can log in,
    // and N registrations at once cost a few rewrites, not N. Throws when
    // the rewrite failed (the change itself stays; the next rewrite shows
    // it). A rewrite reads every key (O(keys)); so that a storm of changes
    // does not rewrite it back to back, the next rewrite starts no sooner
    // than kViewSpacing times the last one's duration after it ended, and
    // no sooner than kMinViewGap, but at most kMaxViewGap later: rewriting
    // takes at most about a quarter of the time (and of a core), at most
    // 1 / kMinViewGap rewrites a second, and each covers every change made
    // meanwhile. A change after a quiet spell is written at once.
    void flushView();

    std::mutex m_mutex;
    ferry::RegistryStore& m_registry;
    ManagerOptions m_options;
    std::function<std::int64_t()> m_clock;
    std::int64_t m_refusalWindowStart = 0;
    std::size_t m_refusalsSuppressed = 0;
    bool m_storeFailed = false;

    std::mutex m_groupMutex;        // after m_mutex, never the other way round
    std::deque<Waiting*> m_waiting; // queued, not yet taken into a group
    bool m_grouping = false;        // a thread runs runGroup
    std::uint64_t m_groupCommits = 0;
    std::uint64_t m_groupedRegistrations = 0;

    std::mutex m_viewMutex; // after m_mutex, never the other way round
    std::condition_variable m_viewDone;
    bool m_viewWriting = false;
    std::uint64_t m_viewWritten = 0; // the generation the file on disk shows
    std::size_t m_viewWrites = 0;
    ferry::AuthorizedKeysViewWriter m_viewWriter;            // used by the one writer (m_viewWriting)
    std::chrono::steady_clock::time_point m_viewNextStart{}; // the next rewrite starts no sooner
};

// Group commit bounds (Manager::handle). A group takes queued requests
// until it holds kMaxGroup or has executed for kMaxGroupTime (the SQLite
// write lock, which collectord and pulld wait for, is held that long plus
// the COMMIT); it is never held open waiting for more. Beyond kMaxWaiting
// queued requests (RegistryServer's connection limit keeps it far lower) a
// request is answered busy.
inline constexpr std::size_t kMaxGroup = 256;
inline constexpr std::chrono::milliseconds kMaxGroupTime{50};
inline constexpr std::size_t kMaxWaiting = 4096;

// The spacing of the authorized keys view's rewrites (Manager::flushView).
inline constexpr int kViewSpacing = 3;
inline constexpr std::chrono::milliseconds kMinViewGap{20};
inline constexpr std::chrono::milliseconds kMaxViewGap{250};

// A KRL older than this is written again even without a new revocation.
inline constexpr std::chrono::hours kKrlMaxAge{1};

// The key ID of a node's certificate: unique per certificate, so that a KRL
// may revoke one by ID. sshd logs it with each login.
std::string certificateKeyId(const std::string& node, std::uint64_t serial);

// "192.0.2.1" from "192.0.2.1:4242", "2001:db8::1" from "[2001:db8::1]:4242".
std::string hostOfPeer(const std::string& peer);

} // namespace registryd
