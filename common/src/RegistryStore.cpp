#include "ferry/RegistryStore.h"

#include <spdlog/spdlog.h>

#include "ferry/Error.h"
#include "ferry/RegistryProtocol.h"
#include "ferry/SshSession.h"

namespace ferry {

namespace {

constexpr const char* kColumns =
    "SELECT name, state, mode, public_key, ssh_host, first_seen, last_seen, reason, secret != '' FROM nodes";

RegistryNode rowToNode(const Statement& s)
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
    return n;
}

std::string fingerprintOrNone(const std::string& key)
{
    if (key.empty())
        return "(none)";
    try {
        return fingerprintOf(key);
    } catch (const std::exception&) {
        return "(unparsable key)";
    }
}

} // namespace

RegistryStore::RegistryStore(const std::string& databasePath) : m_store(databasePath), m_db(m_store.database())
{
    // Every table and column registration uses is created or migrated by
    // MasterStore (MasterSchema.h), which m_store opened above.
}

std::optional<RegistryNode> RegistryStore::node(const std::string& name)
{
    Statement s(m_db, std::string(kColumns) + " WHERE name = ?1");
    s.bind(1, name);
    if (!s.step())
        return std::nullopt;
    return rowToNode(s);
}

std::vector<RegistryNode> RegistryStore::nodes()
{
    Statement s(m_db, std::string(kColumns) + " ORDER BY name");
    std::vector<RegistryNode> out;
    while (s.step())
        out.push_back(rowToNode(s));
    return out;
}

std::optional<std::string> RegistryStore::secret(const std::string& name)
{
    Statement s(m_db, "SELECT secret FROM nodes WHERE name = ?1");
    s.bind(1, name);
    if (!s.step() || s.text(0).empty())
        return std::nullopt;
    return s.text(0);
}

bool RegistryStore::rememberNonce(const std::string& name, const std::string& nonce, std::int64_t nowMs,
                             std::int64_t keepMs)
{
    Statement prune(m_db, "DELETE FROM registry_nonces WHERE time_ms < ?1");
    prune.bind(1, nowMs - keepMs).run();
    Statement ins(m_db, "INSERT OR IGNORE INTO registry_nonces (node, nonce, time_ms) VALUES (?1, ?2, ?3)");
    ins.bind(1, name).bindBlob(2, nonce).bind(3, nowMs).run();
    return m_db.changes() > 0;
}

void RegistryStore::recordKey(const std::string& name, const std::string& publicKey, const std::string& mode,
                              const std::string& peerHost, std::uint16_t sshPort, std::int64_t nowMs)
{
    const auto before = node(name);
    // The address a node registers from is where the master pulls it: it is
    // refreshed at every registration, as node addresses change.
    Statement s(m_db,
                "UPDATE nodes SET public_key = ?2, last_seen = ?3,"
                " first_seen = CASE WHEN first_seen = 0 THEN ?3 ELSE first_seen END,"
                " ssh_host = ?4, ssh_port = ?5, mode = ?6,"
                " pending_request = NULL, pending_mac = NULL WHERE name = ?1");
    s.bind(1, name).bind(2, publicKey).bind(3, nowMs).bind(4, peerHost).bind(5, static_cast<std::int64_t>(sshPort));
    s.bind(6, mode).run();
    if (before && before->publicKey != publicKey) {
        if (before->publicKey.empty())
            spdlog::info("Node {} registered key {}", name, fingerprintOrNone(publicKey));
        else
            spdlog::info("Node {} rotated its key from {} to {}; the old key no longer logs in", name,
                         fingerprintOrNone(before->publicKey), fingerprintOrNone(publicKey));
    }
}

void RegistryStore::touch(const std::string& name, std::int64_t nowMs)
{
    Statement s(m_db, "UPDATE nodes SET last_seen = ?2 WHERE name = ?1");
    s.bind(1, name).bind(2, nowMs).run();
}

void RegistryStore::addPending(const std::string& name, const std::string& publicKey, const std::string& mode,
                               std::uint16_t sshPort, const std::string& signedRequest, const std::string& mac,
                               const std::string& peerHost, std::int64_t nowMs)
{
    Statement s(m_db,
                "INSERT INTO nodes (name, secret, state, public_key, mode, ssh_host, ssh_port, first_seen, last_seen,"
                " pending_request, pending_mac, reason)"
                " VALUES (?1, '', 'pending', ?2, ?7, ?3, ?8, ?4, ?4, ?5, ?6, 'waiting for the master operator')"
                " ON CONFLICT(name) DO UPDATE SET public_key = excluded.public_key, mode = excluded.mode,"
                " ssh_host = excluded.ssh_host, ssh_port = excluded.ssh_port,"
                " last_seen = excluded.last_seen, pending_request = excluded.pending_request,"
                " pending_mac = excluded.pending_mac WHERE nodes.secret = ''");
    s.bind(1, name).bind(2, publicKey).bind(3, peerHost).bind(4, nowMs).bindBlob(5, signedRequest).bindBlob(6, mac);
    s.bind(7, mode).bind(8, static_cast<std::int64_t>(sshPort));
    s.run();
}

std::size_t RegistryStore::countUnsignedPending()
{
    Statement s(m_db, "SELECT COUNT(*) FROM nodes WHERE secret = '' AND state = 'pending'");
    s.step();
    return static_cast<std::size_t>(s.int64(0));
}

void RegistryStore::applySecret(const std::string& name, const std::string& secret)
{
    // A key that arrived while the master had no secret is trusted only if
    // the node's signed request verifies with the secret the operator gives
    // now; anyone could have sent it under this name.
    Statement q(m_db, "SELECT public_key, pending_request, pending_mac FROM nodes WHERE name = ?1");
    q.bind(1, name);
    std::string key;
    bool keep = false;
    if (q.step()) {
        key = q.text(0);
        if (!q.isNull(1) && !q.isNull(2)) {
            SignedRequest request;
            request.signedBytes = q.text(1);
            request.mac = q.text(2);
            keep = verifyRegistrationRequest(request, secret);
            if (!keep && !key.empty())
                spdlog::warn("Dropping the pending key {} of node {}: its request does not verify with the "
                                "node's secret; the node's next registration will bring its real key",
                                fingerprintOrNone(key), name);
        } else {
            keep = true;  // a key the node proved with the secret it had here before
        }
    }
    Statement u(m_db,
                       "UPDATE nodes SET secret = ?2, public_key = CASE WHEN ?3 THEN public_key ELSE '' END,"
                       " pending_request = NULL, pending_mac = NULL WHERE name = ?1");
    u.bind(1, name).bind(2, secret).bind(3, static_cast<std::int64_t>(keep ? 1 : 0)).run();
}

void RegistryStore::addNode(const std::string& name, const std::string& secret)
{
    if (!isValidNodeName(name))
        throw Error("Failed to add node '" + name + "': a node name is 1–64 of A-Z a-z 0-9 . _ -");
    if (secret.size() < 32)
        throw Error("Failed to add node " + name + ": the secret is too short (run `ferryctl secret` on the node)");
    Transaction tx(m_db);
    Statement ins(m_db,
                         "INSERT INTO nodes (name, secret, state, first_seen) VALUES (?1, ?2, 'accepted', 0)"
                         " ON CONFLICT(name) DO NOTHING");
    ins.bind(1, name).bind(2, secret).run();
    applySecret(name, secret);
    setState(name, "accepted", "");
    tx.commit();
}

void RegistryStore::accept(const std::string& name, const std::string& secret)
{
    Transaction tx(m_db);
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
}

void RegistryStore::decline(const std::string& name, const std::string& reason)
{
    Transaction tx(m_db);
    if (!node(name))
        throw NoSuchNode("Failed to decline node " + name + ": no such node");
    setState(name, "declined", reason.empty() ? "declined by the master operator" : reason);
    tx.commit();
}

void RegistryStore::revoke(const std::string& name, const std::string& reason)
{
    Transaction tx(m_db);
    if (!node(name))
        throw NoSuchNode("Failed to revoke node " + name + ": no such node");
    setState(name, "revoked", reason.empty() ? "revoked by the master operator" : reason);
    tx.commit();
}

void RegistryStore::setState(const std::string& name, const std::string& state, const std::string& reason)
{
    Statement s(m_db, "UPDATE nodes SET state = ?2, reason = ?3 WHERE name = ?1");
    s.bind(1, name).bind(2, state).bind(3, reason.substr(0, kMaxReason)).run();
}

} // namespace ferry
