#include "ferry/RegistryStore.h"

#include <algorithm>

#include <spdlog/spdlog.h>

#include "ferry/AuthorizedKeysView.h"
#include "ferry/Crypto.h"
#include "ferry/Error.h"
#include "ferry/MasterQueries.h"
#include "ferry/RegistryProtocol.h"
#include "ferry/Wire.h"

namespace ferry {

namespace {

constexpr const char* kColumns =
    "SELECT name, state, mode, public_key, ssh_host, first_seen, last_seen, reason,"
    " CASE WHEN EXISTS (SELECT 1 FROM node_keys k WHERE k.node = nodes.name AND k.secret <> '') THEN 1 ELSE 0 END,"
    " c.keys, c.seen_ms, p.min_push_period_s, p.min_pull_interval_s FROM nodes"
    " LEFT JOIN node_host_key_changes c ON c.node = nodes.name LEFT JOIN node_policy p ON p.node = nodes.name";

RegistryNode rowToNode(const SqlStatement& s)
{
    RegistryNode n;
    n.name = s.text(0);
    n.state = s.text(1);
    n.mode = s.text(2);
    n.publicKey = s.text(3);
    n.sshHost = s.text(4);
    n.firstSeenMs = s.int64(5);
    n.lastSeenMs = s.int64(6);
    n.reason = s.text(7);
    n.hasSecret = s.int64(8) != 0;
    if (!s.isNull(9)) {
        std::string keys = s.text(9);
        std::size_t start = 0;
        while (start < keys.size()) {
            const auto end = keys.find('\n', start);
            n.pendingHostKeys.push_back(keys.substr(start, end - start));
            if (end == std::string::npos)
                break;
            start = end + 1;
        }
        n.pendingHostKeysSeenMs = s.int64(10);
    }
    if (!s.isNull(11))
        n.minPushPeriodS = static_cast<std::uint32_t>(s.int64(11));
    if (!s.isNull(12))
        n.minPullIntervalS = static_cast<std::uint32_t>(s.int64(12));
    return n;
}

std::string fingerprintOrNone(const std::string& key)
{
    return keyFingerprintOrNote(key);
}

std::string joinFingerprints(const std::vector<std::string>& keys)
{
    std::string out;
    for (const auto& k : keys)
        out += (out.empty() ? "" : ", ") + keyFingerprintOrNote(k);
    return out.empty() ? "(none)" : out;
}

std::string joinLines(const std::vector<std::string>& keys)
{
    std::string out;
    for (const auto& k : keys)
        out += k + "\n";
    return out;
}

std::vector<std::string> splitLines(const std::string& text)
{
    std::vector<std::string> out;
    std::size_t start = 0;
    while (start < text.size()) {
        const auto end = text.find('\n', start);
        out.push_back(text.substr(start, end - start));
        if (end == std::string::npos)
            break;
        start = end + 1;
    }
    return out;
}

std::vector<std::string> sorted(std::vector<std::string> v)
{
    std::sort(v.begin(), v.end());
    return v;
}

std::vector<std::string> queryHostKeys(SqlConnection& db, const std::string& name)
{
    SqlStatement s(db, "SELECT key FROM node_host_keys WHERE node = ?1 ORDER BY position");
    s.bind(1, name);
    std::vector<std::string> out;
    while (s.step())
        out.push_back(s.text(0));
    return out;
}

} // namespace

RegistryStore::RegistryStore(const std::string& databasePath)
    : RegistryStore(std::make_unique<SqliteConnection>(databasePath))
{}

RegistryStore::RegistryStore(std::unique_ptr<SqlConnection> connection)
    : m_connection(std::move(connection)), m_db(m_connection.get())
{
    // Every table and column registration uses was created or migrated
    // when the connection was opened (MasterSchema.h version 3 for master.db,
    // PgStore's schema version 2 for PostgreSQL).
}

RegistryStore::RegistryStore(std::function<std::unique_ptr<SqlConnection>()> connect)
    : m_connect(std::move(connect)), m_connection(m_connect()), m_db(m_connection.get())
{}

void RegistryStore::reopen()
{
    if (!m_connect)
        throw Error("Failed to reopen the registry: it was given one connection and no way to open another");
    // The old one goes first: a pool of one must have it back to lend again.
    m_connection.reset();
    m_db = nullptr;
    m_connection = m_connect();
    m_db = m_connection.get();
}

std::string knownHostsText(const std::string& host, std::uint16_t port, const std::vector<std::string>& keys)
{
    // OpenSSH's form: the bare name for port 22 (IPv6 too), "[host]:port" otherwise.
    const std::string pattern = port == 22 ? host : "[" + host + "]:" + std::to_string(port);
    std::string text;
    for (const auto& k : keys)
        text += pattern + " " + k + "\n";
    return text;
}

PeriodPolicy effectivePolicy(const RegistryNode& node, PeriodPolicy defaults)
{
    PeriodPolicy p = defaults;
    if (node.minPushPeriodS)
        p.minPushPeriodS = *node.minPushPeriodS;
    if (node.minPullIntervalS)
        p.minPullIntervalS = *node.minPullIntervalS;
    return p;
}

std::vector<std::string> RegistryStore::pinnedHostKeys(SqlConnection& connection, const std::string& node)
{
    return queryHostKeys(connection, node);
}

std::vector<std::string> RegistryStore::pinnedHostKeys(const std::string& databasePath, const std::string& node)
{
    Database file(databasePath, true);
    SqliteConnection db(file);
    {
        SqlStatement t(db, "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'node_host_keys'");
        if (!t.step())
            return {};
    }
    return queryHostKeys(db, node);
}

std::vector<std::string> RegistryStore::hostKeys(const std::string& name)
{
    return queryHostKeys(*m_db, name);
}

void RegistryStore::pinHostKeys(const std::string& name, const std::vector<std::string>& keys)
{
    SqlStatement del(*m_db, "DELETE FROM node_host_keys WHERE node = ?1");
    del.bind(1, name).run();
    for (std::size_t i = 0; i < keys.size(); ++i) {
        SqlStatement ins(*m_db,
                         "INSERT INTO node_host_keys (node, key, position) VALUES (?1, ?2, ?3) ON CONFLICT DO NOTHING");
        ins.bind(1, name).bind(2, keys[i]).bind(3, static_cast<std::int64_t>(i)).run();
    }
    SqlStatement clear(*m_db, "DELETE FROM node_host_key_changes WHERE node = ?1");
    clear.bind(1, name).run();
}

HostKeyCheck RegistryStore::checkHostKeys(const std::string& name, const std::vector<std::string>& keys,
                                          std::int64_t nowMs)
{
    HostKeyCheck check;
    if (keys.empty())
        return check;
    check.pinned = hostKeys(name);
    if (check.pinned.empty()) {
        pinHostKeys(name, keys);
        check.outcome = HostKeyCheck::Outcome::Pinned;
        return check;
    }
    if (sorted(check.pinned) == sorted(keys)) {
        SqlStatement clear(*m_db, "DELETE FROM node_host_key_changes WHERE node = ?1");
        clear.bind(1, name).run();
        check.outcome = HostKeyCheck::Outcome::Unchanged;
        return check;
    }
    check.outcome = HostKeyCheck::Outcome::Changed;
    SqlStatement s(*m_db, "INSERT INTO node_host_key_changes (node, keys, seen_ms) VALUES (?1, ?2, ?3)"
                          " ON CONFLICT(node) DO UPDATE SET keys = excluded.keys, seen_ms = excluded.seen_ms");
    s.bind(1, name).bind(2, joinLines(keys)).bind(3, nowMs).run();
    return check;
}

void RegistryStore::acceptHostKeys(const std::string& name)
{
    SqlTransaction tx(*m_db);
    if (!node(name))
        throw NoSuchNode("Failed to accept the new host keys of node " + name + ": no such node");
    SqlStatement q(*m_db, "SELECT keys FROM node_host_key_changes WHERE node = ?1");
    q.bind(1, name);
    if (!q.step())
        throw NoHostKeyChange("Failed to accept the new host keys of node " + name +
                              ": no host key change is pending");
    const auto keys = splitLines(q.text(0));
    const auto before = hostKeys(name);
    pinHostKeys(name, keys);
    tx.commit();
    spdlog::info("Node {}: the operator accepted its new sshd host keys {} (were {})", name, joinFingerprints(keys),
                 joinFingerprints(before));
}

std::optional<RegistryStore::Certificate> RegistryStore::certificate(const std::string& name)
{
    SqlStatement s(*m_db, "SELECT serial, public_key, certificate, valid_to_ms FROM node_certificates WHERE node = ?1");
    s.bind(1, name);
    if (!s.step())
        return std::nullopt;
    return Certificate{static_cast<std::uint64_t>(s.int64(0)), s.text(1), s.text(2), s.int64(3)};
}

std::uint64_t RegistryStore::nextCertificateSerial()
{
    SqlStatement s(*m_db, "SELECT COALESCE(MAX(serial), 0) + 1 FROM (SELECT serial FROM node_certificates"
                          " UNION ALL SELECT serial FROM revoked_certificates) s");
    s.step();
    return static_cast<std::uint64_t>(s.int64(0));
}

bool RegistryStore::storeCertificate(const std::string& name, const Certificate& certificate, std::int64_t nowMs)
{
    SqlTransaction tx(*m_db);
    // Masters sharing a database pick serials one at a time from here on.
    m_db->lockUntilCommit("ferry-certificate-serial");
    {
        SqlStatement taken(*m_db, "SELECT 1 FROM node_certificates WHERE serial = ?1 AND node <> ?2"
                                  " UNION ALL SELECT 1 FROM revoked_certificates WHERE serial = ?1");
        taken.bind(1, static_cast<std::int64_t>(certificate.serial)).bind(2, name);
        if (taken.step())
            return false;
    }
    if (const auto old = this->certificate(name); old && old->publicKey != certificate.publicKey)
        revokeCertificate(name, nowMs);
    SqlStatement s(*m_db, "INSERT INTO node_certificates (node, serial, public_key, certificate, valid_to_ms)"
                          " VALUES (?1, ?2, ?3, ?4, ?5) ON CONFLICT(node) DO UPDATE SET serial = excluded.serial,"
                          " public_key = excluded.public_key, certificate = excluded.certificate,"
                          " valid_to_ms = excluded.valid_to_ms");
    s.bind(1, name).bind(2, static_cast<std::int64_t>(certificate.serial)).bind(3, certificate.publicKey);
    s.bind(4, certificate.line).bind(5, certificate.validToMs).run();
    tx.commit();
    return true;
}

bool RegistryStore::revokeCertificate(const std::string& name, std::int64_t nowMs)
{
    const auto current = certificate(name);
    if (!current)
        return false;
    SqlStatement r(
        *m_db,
        "INSERT INTO revoked_certificates (serial, node, revoked_ms) VALUES (?1, ?2, ?3) ON CONFLICT DO NOTHING");
    r.bind(1, static_cast<std::int64_t>(current->serial)).bind(2, name).bind(3, nowMs).run();
    SqlStatement d(*m_db, "DELETE FROM node_certificates WHERE node = ?1");
    d.bind(1, name).run();
    return true;
}

std::vector<std::pair<std::uint64_t, std::string>> RegistryStore::revokedCertificates()
{
    SqlStatement s(*m_db, "SELECT serial, node FROM revoked_certificates ORDER BY serial");
    std::vector<std::pair<std::uint64_t, std::string>> out;
    while (s.step())
        out.emplace_back(static_cast<std::uint64_t>(s.int64(0)), s.text(1));
    return out;
}

std::vector<std::uint64_t> RegistryStore::revokedSerials(std::int64_t revokedSinceMs)
{
    SqlStatement s(*m_db, "SELECT serial FROM revoked_certificates WHERE revoked_ms >= ?1 ORDER BY serial");
    s.bind(1, revokedSinceMs);
    std::vector<std::uint64_t> out;
    while (s.step())
        out.push_back(static_cast<std::uint64_t>(s.int64(0)));
    return out;
}

std::uint64_t RegistryStore::revocationCount()
{
    SqlStatement s(*m_db, "SELECT COUNT(*) FROM revoked_certificates");
    s.step();
    return static_cast<std::uint64_t>(s.int64(0));
}

void RegistryStore::setPolicy(const std::string& name, std::optional<std::uint32_t> minPushPeriodS,
                              std::optional<std::uint32_t> minPullIntervalS)
{
    SqlTransaction tx(*m_db);
    if (!node(name))
        throw NoSuchNode("Failed to set the period floor of node " + name + ": no such node");
    if (!minPushPeriodS && !minPullIntervalS) {
        SqlStatement d(*m_db, "DELETE FROM node_policy WHERE node = ?1");
        d.bind(1, name).run();
    } else {
        SqlStatement s(*m_db,
                       "INSERT INTO node_policy (node, min_push_period_s, min_pull_interval_s) VALUES (?1, ?2, ?3)"
                       " ON CONFLICT(node) DO UPDATE SET min_push_period_s = excluded.min_push_period_s,"
                       " min_pull_interval_s = excluded.min_pull_interval_s");
        s.bind(1, name);
        if (minPushPeriodS)
            s.bind(2, static_cast<std::int64_t>(*minPushPeriodS));
        else
            s.bindNull(2);
        if (minPullIntervalS)
            s.bind(3, static_cast<std::int64_t>(*minPullIntervalS));
        else
            s.bindNull(3);
        s.run();
    }
    tx.commit();
}

std::optional<RegistryNode> RegistryStore::node(const std::string& name)
{
    SqlStatement s(*m_db, std::string(kColumns) + " WHERE name = ?1");
    s.bind(1, name);
    if (!s.step())
        return std::nullopt;
    auto n = rowToNode(s);
    n.hostKeys = hostKeys(name);
    return n;
}

std::vector<RegistryNode> RegistryStore::nodes()
{
    SqlStatement s(*m_db, std::string(kColumns) + " ORDER BY name");
    std::vector<RegistryNode> out;
    while (s.step())
        out.push_back(rowToNode(s));
    for (auto& n : out)
        n.hostKeys = hostKeys(n.name);
    return out;
}

std::optional<std::string> RegistryStore::secret(const std::string& name)
{
    SqlStatement s(*m_db, "SELECT secret FROM node_keys WHERE node = ?1");
    s.bind(1, name);
    if (!s.step() || s.text(0).empty())
        return std::nullopt;
    return s.text(0);
}

bool RegistryStore::rememberNonce(const std::string& name, const std::string& nonce, std::int64_t nowMs,
                             std::int64_t keepMs)
{
    SqlStatement prune(*m_db, "DELETE FROM registry_nonces WHERE time_ms < ?1");
    prune.bind(1, nowMs - keepMs).run();
    SqlStatement ins(*m_db,
                     "INSERT INTO registry_nonces (node, nonce, time_ms) VALUES (?1, ?2, ?3) ON CONFLICT DO NOTHING");
    return ins.bind(1, name).bindBlob(2, nonce).bind(3, nowMs).run() > 0;
}

void RegistryStore::recordKey(const std::string& name, const std::string& publicKey, const std::string& mode,
                              const std::string& peerHost, std::uint16_t sshPort, std::int64_t nowMs)
{
    // Only the key: node() would read the pinned host keys as well.
    SqlStatement q(*m_db, "SELECT public_key FROM nodes WHERE name = ?1");
    q.bind(1, name);
    const bool exists = q.step();
    const std::string before = exists ? q.text(0) : std::string();
    // The address a node registers from is where the master pulls it: it is
    // refreshed at every registration, as node addresses change.
    SqlStatement s(*m_db, "UPDATE nodes SET public_key = ?2, last_seen = ?3,"
                          " first_seen = CASE WHEN first_seen = 0 THEN ?3 ELSE first_seen END,"
                          " ssh_host = ?4, ssh_port = ?5, mode = ?6,"
                          " pending_request = NULL, pending_mac = NULL WHERE name = ?1");
    s.bind(1, name).bind(2, publicKey).bind(3, nowMs).bind(4, peerHost).bind(5, static_cast<std::int64_t>(sshPort));
    s.bind(6, mode).run();
    if (exists && before != publicKey)
        viewChanged();
}

void RegistryStore::touch(const std::string& name, std::int64_t nowMs)
{
    SqlStatement s(*m_db, "UPDATE nodes SET last_seen = ?2 WHERE name = ?1");
    s.bind(1, name).bind(2, nowMs).run();
}

bool RegistryStore::addPending(const std::string& name, const std::string& publicKey, const std::string& mode,
                               std::uint16_t sshPort, const std::string& signedRequest, const std::string& mac,
                               const std::string& peerHost, std::int64_t nowMs)
{
    // First come, kept: whoever sent it, the operator's later accept with
    // the node's secret checks the stored request (applySecret), so a
    // squatter's key is dropped then and the node's next registration
    // brings the real one.
    SqlStatement s(
        *m_db, "INSERT INTO nodes (name, secret, state, public_key, mode, ssh_host, ssh_port, first_seen, last_seen,"
               " pending_request, pending_mac, reason)"
               " VALUES (?1, '', 'pending', ?2, ?7, ?3, ?8, ?4, ?4, ?5, ?6, 'waiting for the master operator')"
               " ON CONFLICT (name) DO NOTHING");
    s.bind(1, name).bind(2, publicKey).bind(3, peerHost).bind(4, nowMs).bindBlob(5, signedRequest).bindBlob(6, mac);
    s.bind(7, mode).bind(8, static_cast<std::int64_t>(sshPort));
    return s.run() > 0;
}

std::size_t RegistryStore::countUnsignedPending()
{
    SqlStatement s(*m_db, "SELECT COUNT(*) FROM nodes WHERE state = 'pending'"
                          " AND NOT EXISTS (SELECT 1 FROM node_keys k WHERE k.node = nodes.name AND k.secret <> '')");
    s.step();
    return static_cast<std::size_t>(s.int64(0));
}

namespace {

// Whether two stored credentials prove the same: equal text, or a legacy
// secret and the key derived from it for the other's id.
bool sameNodeCredential(const std::string& a, const std::string& b)
{
    if (a == b)
        return true;
    try {
        const NodeCredential x = parseNodeCredential(a);
        const NodeCredential y = parseNodeCredential(b);
        if (x.legacy == y.legacy)
            return false;
        const NodeCredential& derived = x.legacy ? y : x;
        const NodeCredential& legacy = x.legacy ? x : y;
        return constantTimeEqual(deriveMasterKey(legacy.key, derived.masterId), derived.key);
    } catch (const Error&) {
        return false;
    }
}

} // namespace

void RegistryStore::applySecret(const std::string& name, const std::string& secret)
{
    // A key that arrived while the master had no secret is trusted only if
    // the node's signed request verifies with the secret the operator gives
    // now; anyone could have sent it under this name.
    SqlStatement q(*m_db, "SELECT public_key, pending_request, pending_mac,"
                          " COALESCE((SELECT k.secret FROM node_keys k WHERE k.node = nodes.name), '')"
                          " FROM nodes WHERE name = ?1");
    q.bind(1, name);
    std::string key;
    std::string stored = secret;
    bool keep = false;
    if (q.step()) {
        key = q.text(0);
        if (!q.isNull(1) && !q.isNull(2)) {
            try {
                Encoder outer;
                outer.bytes(q.text(1)).bytes(q.text(2));
                const auto decoded = decodeRegistrationRequest(outer.take(), "the stored pending request");
                const auto macKey = registrationKey(secret, decoded.request);
                keep = macKey && verifyRegistrationRequest(decoded, *macKey);
                if (keep) {
                    // The host keys in a request that verifies came from the node too.
                    if (!decoded.request.hostKeys.empty() && hostKeys(name).empty())
                        pinHostKeys(name, decoded.request.hostKeys);
                    // A node secret given for a node that proved itself for a
                    // master id: keep only the key derived for that id.
                    if (decoded.request.version3 && parseNodeCredential(secret).legacy)
                        stored = formatNodeCredential(decoded.request.masterId, *macKey);
                }
            } catch (const ProtocolError& e) {
                spdlog::warn("Ignoring node {}'s stored request: {}", name, e.what());
            }
            if (!keep && !key.empty())
                spdlog::warn("Dropping the pending key {} of node {}: its request does not verify with the "
                                "node's secret; the node's next registration will bring its real key",
                                fingerprintOrNone(key), name);
        } else {
            // A key the node proved with the secret it had here before: it
            // stays only while that secret does. A new secret means a new
            // install (or a leaked old one): the old install's key must stop
            // logging in, and the node's next registration brings its key.
            keep = sameNodeCredential(q.text(3), secret);
            if (!keep && !key.empty())
                spdlog::info("Node {} has a new secret: dropped its old key {}", name, fingerprintOrNone(key));
        }
    }
    // The key is cleared before the new secret is stored: on SQLite,
    // master.db commits before node-keys.db, so a crash in between leaves
    // the old key cleared and the old secret, never the new secret with a
    // key from before it.
    SqlStatement u(*m_db, "UPDATE nodes SET public_key = CASE WHEN ?2 = 1 THEN public_key ELSE '' END,"
                          " pending_request = NULL, pending_mac = NULL WHERE name = ?1");
    u.bind(1, name).bind(2, static_cast<std::int64_t>(keep ? 1 : 0)).run();
    SqlStatement k(*m_db, "INSERT INTO node_keys (node, secret) VALUES (?1, ?2)"
                          " ON CONFLICT (node) DO UPDATE SET secret = excluded.secret");
    k.bind(1, name).bind(2, stored).run();
}

void RegistryStore::replaceLegacySecret(const std::string& name, const std::string& credential)
{
    SqlStatement u(*m_db, "UPDATE node_keys SET secret = ?2 WHERE node = ?1");
    u.bind(1, name).bind(2, credential).run();
}

void RegistryStore::addCounters(const std::vector<CounterDelta>& deltas)
{
    if (deltas.empty())
        return;
    SqlTransaction tx(*m_db);
    MasterQueries(*m_db).addCounters(deltas);
    tx.commit();
}

void RegistryStore::addNode(const std::string& name, const std::string& secret)
{
    if (!isValidNodeName(name))
        throw Error("Failed to add node '" + name + "': a node name is 1–64 of A-Z a-z 0-9 . _ -");
    try {
        parseNodeCredential(secret);
    } catch (const Error& e) {
        throw Error("Failed to add node " + name + ": " + e.what());
    }
    SqlTransaction tx(*m_db);
    SqlStatement ins(*m_db, "INSERT INTO nodes (name, secret, state, first_seen) VALUES (?1, '', 'accepted', 0)"
                            " ON CONFLICT (name) DO NOTHING");
    ins.bind(1, name).run();
    applySecret(name, secret);
    setState(name, "accepted", "");
    tx.commit();
    viewChanged();
}

void RegistryStore::accept(const std::string& name, const std::string& secret)
{
    SqlTransaction tx(*m_db);
    const auto n = node(name);
    if (!n)
        throw NoSuchNode("Failed to accept node " + name + ": no such node");
    if (!secret.empty())
        applySecret(name, secret);
    else if (!n->hasSecret)
        throw SecretRequired("Failed to accept node " + name +
                             ": the master has no secret for it; give the node's secret (ferryctl secret on the node)");
    setState(name, "accepted", "");
    tx.commit();
    viewChanged();
}

void RegistryStore::decline(const std::string& name, const std::string& reason)
{
    SqlTransaction tx(*m_db);
    if (!node(name))
        throw NoSuchNode("Failed to decline node " + name + ": no such node");
    setState(name, "declined", reason.empty() ? "declined by the master operator" : reason);
    tx.commit();
    viewChanged();
}

void RegistryStore::revoke(const std::string& name, const std::string& reason)
{
    SqlTransaction tx(*m_db);
    if (!node(name))
        throw NoSuchNode("Failed to revoke node " + name + ": no such node");
    setState(name, "revoked", reason.empty() ? "revoked by the master operator" : reason);
    tx.commit();
    viewChanged();
}

void RegistryStore::keepAuthorizedKeysView(std::string path)
{
    m_viewPath = std::move(path);
}

std::size_t RegistryStore::writeAuthorizedKeysView()
{
    return m_viewPath.empty() ? 0 : ferry::writeAuthorizedKeysView(*m_db, m_viewPath);
}

void RegistryStore::deferAuthorizedKeysView()
{
    m_viewDeferred = true;
}

AuthorizedKeysRows RegistryStore::authorizedKeysViewRows()
{
    return readAuthorizedKeysRows(*m_db);
}

void RegistryStore::viewChanged()
{
    // After the commit (the operations that call this commit their own
    // transaction), so the view never shows what could still roll back. In
    // registryd, recordKey runs inside a group's transaction; the deferred
    // view is read only once that committed (registryd::Manager).
    if (m_viewPath.empty())
        return;
    if (m_viewDeferred)
        ++m_viewWanted;
    else
        writeAuthorizedKeysView();
}

void RegistryStore::setState(const std::string& name, const std::string& state, const std::string& reason)
{
    SqlStatement s(*m_db, "UPDATE nodes SET state = ?2, reason = ?3 WHERE name = ?1");
    s.bind(1, name).bind(2, state).bind(3, reason.substr(0, kMaxReason)).run();
}

} // namespace ferry
