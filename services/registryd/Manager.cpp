#include "Manager.h"

#include <algorithm>
#include <array>
#include <fstream>
#include <map>
#include <thread>

#include <spdlog/spdlog.h>

#include "ferry/Crypto.h"
#include "ferry/Error.h"
#include "ferry/Files.h"
#include "ferry/NodeCertificates.h"
#include "ferry/PullProtocol.h"
#include "ferry/RegistryProtocol.h"

namespace registryd {

namespace {

// A refusal with a machine-readable code for the node and a sentence for people.
struct Refusal {
    std::string code;
    std::string message;
};

ferry::Frame errorFrame(const std::string& code, const std::string& message)
{
    return {ferry::MessageType::Error, ferry::encode(ferry::ErrorMessage{code, message})};
}

// "SHA256:…, SHA256:…" for keys "type base64".
std::string fingerprints(const std::vector<std::string>& keys)
{
    std::string out;
    for (const auto& k : keys)
        out += (out.empty() ? "" : ", ") + ferry::keyFingerprintOrNote(k);
    return out;
}

} // namespace

std::string certificateKeyId(const std::string& node, std::uint64_t serial)
{
    return "ferry-node:" + node + "#" + std::to_string(serial);
}

std::string hostOfPeer(const std::string& peer)
{
    const auto colon = peer.rfind(':');
    std::string host = colon == std::string::npos ? peer : peer.substr(0, colon);
    if (host.size() >= 2 && host.front() == '[' && host.back() == ']')
        host = host.substr(1, host.size() - 2);
    // An IPv4 client on the dual-stack socket shows as ::ffff:a.b.c.d.
    if (host.rfind("::ffff:", 0) == 0 && host.find('.') != std::string::npos)
        host = host.substr(7);
    return host;
}

Manager::Manager(ferry::RegistryStore& registry, ManagerOptions options, std::function<std::int64_t()> clock)
    : m_registry(registry), m_options(std::move(options)), m_clock(std::move(clock))
{
}

void Manager::reopenIfFailed()
{
    if (!m_storeFailed)
        return;
    m_registry.reopen();
    m_storeFailed = false;
    spdlog::info("Opened the registry's database again after a failed request");
}

template <typename Fn>
auto Manager::withStore(Fn&& fn) -> decltype(fn())
{
    std::lock_guard lock(m_mutex);
    try {
        reopenIfFailed();
        return fn();
    } catch (...) {
        m_storeFailed = true;
        throw;
    }
}

void Manager::flushView()
{
    const std::uint64_t wanted = withStore([&] { return m_registry.authorizedKeysViewWanted(); });
    std::unique_lock view(m_viewMutex);
    while (m_viewWritten < wanted) {
        if (m_viewWriting) {
            m_viewDone.wait(view);
            continue;
        }
        m_viewWriting = true;
        const auto notBefore = m_viewNextStart;
        view.unlock();
        // Callers that come meanwhile wait for this rewrite, which reads the
        // store only after the pause and so covers their changes too.
        std::this_thread::sleep_until(notBefore);
        const auto started = std::chrono::steady_clock::now();
        std::uint64_t generation = 0;
        std::exception_ptr failure;
        try {
            ferry::AuthorizedKeysRows rows;
            std::string path;
            withStore([&] {
                generation = m_registry.authorizedKeysViewWanted();
                rows = m_registry.authorizedKeysViewRows();
                path = m_registry.authorizedKeysViewFile();
            });
            m_viewWriter.write(std::move(rows), path);
        } catch (...) {
            failure = std::current_exception();
        }
        const auto ended = std::chrono::steady_clock::now();
        view.lock();
        m_viewNextStart = ended + std::clamp<std::chrono::steady_clock::duration>(kViewSpacing * (ended - started),
                                                                                  kMinViewGap, kMaxViewGap);
        m_viewWriting = false;
        if (!failure) {
            m_viewWritten = std::max(m_viewWritten, generation);
            ++m_viewWrites;
        }
        m_viewDone.notify_all();
        if (failure)
            std::rethrow_exception(failure);
    }
}

std::size_t Manager::viewWrites()
{
    std::lock_guard view(m_viewMutex);
    return m_viewWrites;
}

void Manager::prepare()
{
    if (!m_options.caKeyFile.empty()) {
        std::lock_guard lock(m_mutex);
        writeKrl();
    }
}

bool Manager::refreshKrl()
{
    if (m_options.caKeyFile.empty())
        return false;
    return withStore([&] {
        if (krlIsCurrent(m_registry.revocationCount()))
            return false;
        writeKrl();
        return true;
    });
}

bool Manager::krlIsCurrent(std::uint64_t revocations)
{
    // The KRL's own header says which revocation count it was written at
    // (its krl_version) and when: no state of ours beside it.
    // (magic 8, format 4, krl_version 8, generated_date 8)
    std::array<char, 28> header{};
    std::ifstream in(m_options.krlFile, std::ios::binary);
    if (!in.read(header.data(), header.size()))
        return false;
    auto u64At = [&](std::size_t at) {
        std::uint64_t v = 0;
        for (std::size_t i = 0; i < 8; ++i)
            v = (v << 8) | static_cast<unsigned char>(header[at + i]);
        return v;
    };
    const std::uint64_t version = u64At(12), generatedS = u64At(20);
    const std::int64_t ageMs = m_clock() - static_cast<std::int64_t>(generatedS) * 1000;
    return version == revocations && ageMs >= 0 &&
           ageMs < std::chrono::duration_cast<std::chrono::milliseconds>(kKrlMaxAge).count();
}

void Manager::writeKrl()
{
    // A certificate is signed valid until issue + validity, and revoked at or
    // after its issue: one revoked longer ago than validity (and the clock
    // skew allowed between masters and nodes) has expired, and sshd refuses
    // it without the KRL. So the KRL holds the last validity's revocations.
    const std::int64_t now = m_clock();
    const std::uint64_t revocations = m_registry.revocationCount();
    const auto keepSince =
        now -
        std::chrono::duration_cast<std::chrono::milliseconds>(m_options.certValidity + m_options.maxClockSkew).count();
    const auto serials = m_registry.revokedSerials(keepSince);
    const auto shape =
        ferry::writeRevocationList(m_options.caKeyFile + ".pub", serials, m_options.krlFile, revocations, now);
    spdlog::debug("Wrote the revocation list {} (revocation {}; {})", m_options.krlFile, revocations,
                  ferry::describe(shape));
}

std::string Manager::certificateFor(const std::string& name, const std::string& publicKey, std::int64_t now)
{
    if (m_options.caKeyFile.empty())
        return {};
    const std::int64_t validityMs = std::chrono::duration_cast<std::chrono::milliseconds>(m_options.certValidity).count();
    const auto current = m_registry.certificate(name);
    if (current && current->publicKey == publicKey && current->validToMs - now > validityMs / 2)
        return current->line;
    ferry::RegistryStore::Certificate next;
    // Masters sharing one database may pick the same free serial at once;
    // the store takes only one of them, and the other signs again.
    for (int attempt = 1;; ++attempt) {
        next.serial = m_registry.nextCertificateSerial();
        next.publicKey = publicKey;
        // Five minutes back: a node whose clock is a little behind can use it at once.
        next.validToMs = now + validityMs;
        ferry::CertificateRequest request;
        request.caKeyFile = m_options.caKeyFile;
        request.publicKey = publicKey;
        request.keyId = certificateKeyId(name, next.serial);
        request.principals = {m_options.certPrincipal, "node:" + name};
        request.serial = next.serial;
        request.validity = "-5m:+" + std::to_string(m_options.certValidity.count()) + "s";
        next.line = ferry::signUserCertificate(request);
        if (m_registry.storeCertificate(name, next, now))
            break;
        if (attempt == 5)
            throw ferry::Error("Failed to issue a certificate for node " + name +
                               ": another master took each serial tried (the last " + std::to_string(next.serial) +
                               ")");
    }
    const bool rotated = current && current->publicKey != publicKey;
    if (rotated)
        writeKrl();
    spdlog::info("Node {}: issued certificate serial {} for key {}{}", name, next.serial,
                 ferry::keyFingerprintOrNote(publicKey), rotated ? " (the previous serial is revoked)" : "");
    return next.line;
}

ferry::Frame Manager::handle(const ferry::Frame& request, const std::string& peer)
{
    Waiting mine(request, peer);
    std::unique_lock lock(m_groupMutex);
    if (m_waiting.size() >= kMaxWaiting) {
        lock.unlock();
        std::lock_guard store(m_mutex);
        logRefusal("Refused registration from " + peer + ": " + std::to_string(kMaxWaiting) +
                   " registrations already wait for the database");
        return errorFrame("busy", "the master is busy with other registrations; retry later");
    }
    m_waiting.push_back(&mine);
    // Whoever finds no group running runs the next one, for every request
    // queued by then (its own included, unless kMaxGroup came first). Each
    // thread waits on its own condition: a group wakes its own requests'
    // threads and the one that leads next, not every waiting thread.
    while (!mine.done) {
        // Nothing queued: this request is in a group that is not done yet.
        if (m_grouping || m_waiting.empty()) {
            mine.wake.wait(lock);
            continue;
        }
        m_grouping = true;
        lock.unlock();
        std::vector<Waiting*> group;
        runGroup(group);
        lock.lock();
        // The next group may execute and commit while this one's view is written.
        m_grouping = false;
        if (!m_waiting.empty())
            m_waiting.front()->wake.notify_one();
        lock.unlock();
        finishGroup(group);
        lock.lock();
        for (Waiting* w : group) {
            w->done = true;
            w->wake.notify_one();
        }
    }
    return std::move(mine.answer);
}

void Manager::runGroup(std::vector<Waiting*>& group)
{
    const auto started = std::chrono::steady_clock::now();
    std::lock_guard lock(m_mutex);
    try {
        reopenIfFailed();
        ferry::SqlTransaction transaction(m_registry.connection());
        bool failed = false;
        while (!failed) {
            Waiting* next = nullptr;
            {
                std::lock_guard queue(m_groupMutex);
                if (m_waiting.empty() || group.size() >= kMaxGroup ||
                    std::chrono::steady_clock::now() - started >= kMaxGroupTime)
                    break;
                next = m_waiting.front();
                m_waiting.pop_front();
            }
            group.push_back(next);
            next->answer = answer(next->request, next->peer, next->outcome, next->note, failed);
            // After a failure of the store the transaction may be gone: the
            // group commits what it has (or fails whole), and the requests
            // still queued go to the next group, which opens the store again.
        }
        // The master's counter of registration outcomes (metricsd exports
        // it), in the same commit; the answers go out whether or not
        // counting works (addCounters' own nested transaction undoes it).
        std::map<std::string, std::int64_t> outcomes;
        for (const Waiting* w : group)
            ++outcomes[w->outcome];
        std::vector<ferry::CounterDelta> deltas;
        for (const auto& [outcome, n] : outcomes)
            deltas.push_back({"registrations", ferry::counterLabels({{"outcome", outcome}}), n});
        try {
            m_registry.addCounters(deltas);
        } catch (const std::exception& e) {
            spdlog::warn("Failed to count {} registration outcomes, ignoring: {}", group.size(), e.what());
        }
        transaction.commit();
        ++m_groupCommits;
        m_groupedRegistrations += group.size();
        for (const Waiting* w : group)
            if (!w->note.empty())
                spdlog::info("{}", w->note);
    } catch (const std::exception& e) {
        m_storeFailed = true;
        if (group.empty()) {
            // The store could not be opened or the transaction begun: the
            // requests queued now get that answer, not an endless retry.
            std::lock_guard queue(m_groupMutex);
            while (!m_waiting.empty() && group.size() < kMaxGroup) {
                group.push_back(m_waiting.front());
                m_waiting.pop_front();
            }
        }
        // One line for the group, naming the first peer; each request is
        // answered that the master failed (and retries).
        spdlog::error("Failed to handle the registration from {}{}: {}",
                      group.empty() ? std::string("(none queued)") : group.front()->peer,
                      group.size() > 1 ? " and " + std::to_string(group.size() - 1) + " more in its group" : "",
                      e.what());
        for (Waiting* w : group) {
            w->outcome = "internal";
            w->answer = errorFrame("internal", "the master failed to process the registration; try again later");
        }
    }
}

void Manager::finishGroup(const std::vector<Waiting*>& group)
{
    // A node told "accepted" logs in next: its key must be in the view sshd's
    // helper reads before the answer goes.
    try {
        flushView();
    } catch (const std::exception& e) {
        spdlog::error("Failed to write the authorized keys view after a group of {} registrations: {}", group.size(),
                      e.what());
        for (Waiting* w : group) {
            w->outcome = "internal";
            w->answer = errorFrame("internal", "the master failed to process the registration; try again later");
        }
    }
}

std::uint64_t Manager::groupCommits()
{
    std::lock_guard lock(m_mutex);
    return m_groupCommits;
}

std::uint64_t Manager::groupedRegistrations()
{
    std::lock_guard lock(m_mutex);
    return m_groupedRegistrations;
}

std::size_t Manager::waiting()
{
    std::lock_guard lock(m_groupMutex);
    return m_waiting.size();
}

ferry::Frame Manager::answer(const ferry::Frame& request, const std::string& peer, std::string& outcome,
                             std::string& note, bool& internalFailure)
{
    try {
        if (request.type != ferry::MessageType::Request)
            throw Refusal{"bad-request", std::string("expected a registration Request, got ") +
                                             ferry::toString(request.type)};
        // Nested in the group's transaction: a request that throws leaves
        // nothing behind (its nonce, a replaced secret, a host-key pin).
        ferry::SqlTransaction one(m_registry.connection());
        ferry::Frame frame = registerNode(request, peer, outcome, note);
        one.commit();
        return frame;
    } catch (const Refusal& r) {
        note.clear();
        outcome = r.code;
        logRefusal("Refused registration from " + peer + ": " + ferry::escapeForLog(r.message, 300));
        return errorFrame(r.code, r.message);
    } catch (const ferry::ProtocolError& e) {
        note.clear();
        outcome = "bad-request";
        logRefusal("Refused registration from " + peer + ": " + ferry::escapeForLog(e.what(), 300));
        return errorFrame("bad-request", e.what());
    } catch (const std::exception& e) {
        note.clear();
        outcome = "internal";
        // Most likely the database: the next group opens it again.
        m_storeFailed = true;
        internalFailure = true;
        spdlog::error("Failed to handle the registration from {}: {}", peer, e.what());
        return errorFrame("internal", "the master failed to process the registration; try again later");
    }
}

void Manager::logRefusal(const std::string& line)
{
    const std::int64_t now = m_clock();
    if (now - m_refusalWindowStart >= 10000) {
        if (m_refusalsSuppressed > 0)
            spdlog::warn("Refused {} more registrations in the last 10 s (not logged one by one)",
                         m_refusalsSuppressed);
        m_refusalWindowStart = now;
        m_refusalsSuppressed = 0;
        spdlog::warn("{}", line);
        return;
    }
    ++m_refusalsSuppressed;
    spdlog::debug("{}", line);
}

ferry::Frame Manager::unauthenticatedAnswer(const std::string& nonce, std::int64_t now)
{
    // Whatever the master knows of the name (nothing, pending, declined,
    // enrolled with another secret), the stranger gets the same answer: no
    // name oracle and no operator's reason leaves without the node's secret.
    if (!m_options.acceptUnknown)
        return errorFrame("not-accepted", "this master does not accept the registration: the node is not enrolled "
                                          "here, or the master holds a different secret for it");
    ferry::RegistrationResponse response;
    response.requestNonce = nonce;
    response.serverTimeMs = now;
    response.state = ferry::RegistrationState::Pending;
    response.reason = "not accepted yet: the master operator must accept this node with its secret (or the master "
                      "holds a different secret for it)";
    return {ferry::MessageType::Response, ferry::encodeRegistrationResponse(response, {})};
}

ferry::Frame Manager::registerNode(const ferry::Frame& request, const std::string& peer, std::string& outcome,
                                   std::string& note)
{
    const auto signedRequest = ferry::decodeRegistrationRequest(request.payload, peer);
    const auto& r = signedRequest.request;
    const std::int64_t now = m_clock();
    const std::int64_t skew = m_options.maxClockSkew.count();
    if (r.timeMs < now - skew || r.timeMs > now + skew)
        throw Refusal{"stale", "registration of node " + r.node + " is timestamped " +
                                   std::to_string((now - r.timeMs) / 1000) +
                                   " s from the master's clock (limit " + std::to_string(skew / 1000) +
                                   " s): check the clocks, or this is a replay"};
    // Twice the skew: a nonce must be remembered as long as its timestamp could pass.
    const std::int64_t nonceKeepMs = 2 * skew + 1000;

    // m_mutex is held, in the group's transaction (runGroup).
    const auto secret = m_registry.secret(r.node);
    // The key for the master id the node proved for: the one this master
    // holds, or derived from a legacy secret (Crypto.h).
    const auto key = secret ? ferry::registrationKey(*secret, r) : std::nullopt;
    if (!key || !ferry::verifyRegistrationRequest(signedRequest, *key)) {
        // Unauthenticated. Replays are refused here too (a pending node's
        // captured request must not be replayed from another address), with
        // the same answer whether the name exists or not.
        if (!m_registry.rememberNonce(r.node, r.nonce, now, nonceKeepMs))
            throw Refusal{"replay", "registration of node " + r.node + " reuses a nonce already seen: replay refused"};
        if (secret) {
            logRefusal("Refused registration of node " + r.node + " from " + peer +
                       (key ? std::string(": it does not carry a valid proof of its key (wrong secret?)")
                            : ": it proves for master id '" + ferry::escapeForLog(r.masterId) +
                                  "', and this master holds its key for another id (or the node is older than "
                                  "per-master keys)"));
        } else if (m_options.acceptUnknown && !m_registry.node(r.node)) {
            if (m_registry.countUnsignedPending() >= m_options.maxPending) {
                logRefusal("Not recording node " + r.node + " from " + peer + " as pending: " +
                           std::to_string(m_options.maxPending) + " registrations already wait for the operator");
            } else if (m_registry.addPending(r.node, r.publicKey, r.mode, r.sshPort, signedRequest.signedBytes,
                                             signedRequest.mac, hostOfPeer(peer), now)) {
                spdlog::info("Node {} from {} asks to register key {}; it waits for the operator: "
                             "`ferryctl master accept {} --with-secret` with the node's secret on stdin",
                             r.node, peer, ferry::keyFingerprintOrNote(r.publicKey), r.node);
            }
        } else if (!m_options.acceptUnknown && !m_registry.node(r.node)) {
            logRefusal("Refused registration of unknown node " + r.node + " from " + peer +
                       " (registry: unknown_nodes: refuse)");
        }
        outcome = "unsigned";
        return unauthenticatedAnswer(r.nonce, now);
    }

    if (!m_registry.rememberNonce(r.node, r.nonce, now, nonceKeepMs))
        throw Refusal{"replay", "registration of node " + r.node + " reuses a nonce already seen: replay refused"};
    // What this registration changed, for one line logged once it is
    // committed (runGroup): a storm of first registrations logs one line per
    // node, not one per change.
    std::vector<std::string> changes;
    if (r.version3 && ferry::parseNodeCredential(*secret).legacy) {
        // From now on this master holds only what it needs: the key for the
        // id the node knows it by. The node secret leaves the database.
        m_registry.replaceLegacySecret(r.node, ferry::formatNodeCredential(r.masterId, *key));
        changes.push_back("replaced its node secret with the key derived for master id '" +
                          ferry::escapeForLog(r.masterId) + "'");
    }
    auto noteChanges = [&] {
        if (changes.empty())
            return;
        note = "Node " + r.node + " from " + peer + ": ";
        for (std::size_t i = 0; i < changes.size(); ++i)
            note += (i == 0 ? "" : "; ") + changes[i];
    };

    const auto node = m_registry.node(r.node);
    ferry::RegistrationResponse response;
    response.requestNonce = r.nonce;
    response.serverTimeMs = now;
    response.version2 = r.version2;
    const auto policy = ferry::effectivePolicy(*node, m_options.policy);
    response.minPushPeriodS = policy.minPushPeriodS;
    response.minPullIntervalS = policy.minPullIntervalS;
    if (node->state == "accepted" || node->state == "pending") {
        const auto check = m_registry.checkHostKeys(r.node, r.hostKeys, now);
        if (check.outcome == ferry::HostKeyCheck::Outcome::Changed) {
            noteChanges();
            const std::string message =
                "the sshd host key of node " + r.node + " changed: pinned " + fingerprints(check.pinned) +
                ", now offered " + fingerprints(r.hostKeys) +
                "; the master keeps the pinned key (pulls of this node are refused) until the master operator "
                "checks the change and runs `ferryctl master accept-hostkey " +
                r.node + "`";
            spdlog::warn("Refused registration of node {} from {}: {}", r.node, peer, message);
            // The node proved its secret: it may hear why, and the refusal is
            // an Error frame, so it pins nothing and keeps retrying.
            outcome = "hostkey-changed";
            return errorFrame("hostkey-changed", message);
        }
        const std::string previousKey = node->publicKey;
        m_registry.recordKey(r.node, r.publicKey, r.mode, hostOfPeer(peer), r.sshPort, now);
        if (previousKey != r.publicKey)
            changes.insert(changes.begin(), previousKey.empty()
                                                ? "registered key " + ferry::keyFingerprintOrNote(r.publicKey)
                                                : "rotated its key from " + ferry::keyFingerprintOrNote(previousKey) +
                                                      " to " + ferry::keyFingerprintOrNote(r.publicKey) +
                                                      "; the old key no longer logs in");
        if (check.outcome == ferry::HostKeyCheck::Outcome::Pinned)
            changes.push_back("pinned its sshd host keys for pulls: " + fingerprints(r.hostKeys));
        noteChanges();
        if (node->state == "accepted") {
            response.state = ferry::RegistrationState::Accepted;
            response.hostKeys = m_options.hostKeys;
            // Only a version-2 node can carry (and use) a certificate.
            if (r.version2) {
                try {
                    response.certificate = certificateFor(r.node, r.publicKey, now);
                } catch (const std::exception& e) {
                    // The node still logs in through the AuthorizedKeysCommand path.
                    spdlog::error("Failed to issue a certificate for node {}: {}", r.node, e.what());
                }
            }
            response.pullKey = pullKey();
            // The fingerprint (a hash) only when the line is logged.
            if (spdlog::should_log(spdlog::level::debug))
                spdlog::debug("Node {} registered from {} with key {}", r.node, peer,
                              ferry::keyFingerprintOrNote(r.publicKey));
        } else {
            response.state = ferry::RegistrationState::Pending;
            response.reason = node->reason.empty() ? "waiting for the master operator" : node->reason;
        }
    } else {
        // Declined and revoked nodes keep their recorded key: a restart of
        // keyregd must not undo the operator's decision.
        m_registry.touch(r.node, now);
        noteChanges();
        response.state = ferry::RegistrationState::Declined;
        response.reason = node->state == "revoked" ? "revoked: " + node->reason : node->reason;
        spdlog::info("Node {} from {} is {}: {}", r.node, peer, node->state, node->reason);
    }
    outcome = response.state == ferry::RegistrationState::Accepted  ? "accepted"
              : response.state == ferry::RegistrationState::Pending ? "pending"
                                                                    : "declined";
    return {ferry::MessageType::Response, ferry::encodeRegistrationResponse(response, *key)};
}

void Manager::acceptHostKeys(const std::string& name)
{
    withStore([&] { m_registry.acceptHostKeys(name); });
    flushView();
}

void Manager::setPolicy(const std::string& name, std::optional<std::uint32_t> minPushPeriodS,
                        std::optional<std::uint32_t> minPullIntervalS)
{
    withStore([&] { m_registry.setPolicy(name, minPushPeriodS, minPullIntervalS); });
    spdlog::info("Node {}: period floor set by the operator to push {} s, pull {} s", name,
                 minPushPeriodS ? std::to_string(*minPushPeriodS) : std::string("default"),
                 minPullIntervalS ? std::to_string(*minPullIntervalS) : std::string("default"));
}

std::string Manager::pullKey() const
{
    if (m_options.pullKeyFile.empty())
        return {};
    try {
        const auto text = ferry::readFileIfExists(m_options.pullKeyFile, ferry::kMaxKeyLine);
        return text ? ferry::normalizeKeyLine(*text) : std::string();
    } catch (const std::exception& e) {
        // The node can still push; it just will not let pulls in yet.
        spdlog::warn("Failed to read the pull key {}, answering without it: {}", m_options.pullKeyFile, e.what());
        return {};
    }
}

std::vector<ferry::RegistryNode> Manager::nodes()
{
    return withStore([&] { return m_registry.nodes(); });
}

void Manager::addNode(const std::string& name, const std::string& secret)
{
    withStore([&] { m_registry.addNode(name, secret); });
    flushView();
    spdlog::info("Node {} enrolled with its secret by the operator", name);
}

void Manager::accept(const std::string& name, const std::string& secret)
{
    withStore([&] { m_registry.accept(name, secret); });
    flushView();
    spdlog::info("Node {} accepted by the operator", name);
}

void Manager::decline(const std::string& name, const std::string& reason)
{
    withStore([&] {
        m_registry.decline(name, reason);
        if (!m_options.caKeyFile.empty() && m_registry.revokeCertificate(name, m_clock()))
            writeKrl();
    });
    flushView();
    spdlog::info("Node {} declined by the operator: {}", name, reason);
}

void Manager::revoke(const std::string& name, const std::string& reason)
{
    withStore([&] {
        m_registry.revoke(name, reason);
        if (!m_options.caKeyFile.empty() && m_registry.revokeCertificate(name, m_clock()))
            writeKrl();
    });
    flushView();
    spdlog::info("Node {} revoked by the operator: {}", name, reason);
}

} // namespace registryd
