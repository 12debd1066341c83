#include "Manager.h"

#include <spdlog/spdlog.h>

#include "ferry/Error.h"
#include "ferry/Files.h"
#include "ferry/RegistryProtocol.h"
#include "ferry/SshSession.h"

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

std::string fingerprintOrText(const std::string& key)
{
    try {
        return ferry::fingerprintOf(key);
    } catch (const std::exception&) {
        return "(unparsable key)";
    }
}

} // namespace

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

ferry::Frame Manager::handle(const ferry::Frame& request, const std::string& peer)
{
    try {
        if (request.type != ferry::MessageType::Request)
            throw Refusal{"bad-request", std::string("expected a registration Request, got ") +
                                             ferry::toString(request.type)};
        return registerNode(request, peer);
    } catch (const Refusal& r) {
        spdlog::warn("Refused registration from {}: {}", peer, r.message);
        return errorFrame(r.code, r.message);
    } catch (const ferry::ProtocolError& e) {
        spdlog::warn("Refused registration from {}: {}", peer, e.what());
        return errorFrame("bad-request", e.what());
    } catch (const std::exception& e) {
        spdlog::error("Failed to handle the registration from {}: {}", peer, e.what());
        return errorFrame("internal", "the master failed to process the registration; try again later");
    }
}

ferry::Frame Manager::registerNode(const ferry::Frame& request, const std::string& peer)
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

    std::lock_guard lock(m_mutex);
    const auto secret = m_registry.secret(r.node);
    if (!secret) {
        const auto existing = m_registry.node(r.node);
        if (!existing && !m_options.acceptUnknown)
            throw Refusal{"unknown-node", "node " + r.node +
                                              " is not known to this master; enrol it there with `ferryctl master "
                                              "add-node " + r.node + "` and the node's secret"};
        ferry::RegistrationResponse response;
        response.requestNonce = r.nonce;
        response.serverTimeMs = now;
        if (existing && (existing->state == "declined" || existing->state == "revoked")) {
            response.state = ferry::RegistrationState::Declined;
            response.reason = existing->reason;
        } else {
            if (!existing && m_registry.countUnsignedPending() >= m_options.maxPending)
                throw Refusal{"busy", "too many registrations are waiting for the master operator"};
            m_registry.addPending(r.node, r.publicKey, r.mode, r.sshPort, signedRequest.signedBytes, signedRequest.mac,
                                  hostOfPeer(peer), now);
            response.state = ferry::RegistrationState::Pending;
            response.reason = "waiting for the master operator to accept node " + r.node;
            if (!existing)
                spdlog::info("Node {} from {} asks to register key {}; it waits for the operator: "
                             "`ferryctl master accept {} --with-secret` with the node's secret on stdin",
                             r.node, peer, fingerprintOrText(r.publicKey), r.node);
        }
        // Without the node's secret the answer cannot be signed; the node
        // pins nothing from it.
        return {ferry::MessageType::Response, ferry::encodeRegistrationResponse(response, {})};
    }

    if (!ferry::verifyRegistrationRequest(signedRequest, *secret))
        throw Refusal{"auth-failed", "registration of node " + r.node +
                                         " does not carry a valid proof of the node's secret (wrong secret?)"};
    // Twice the skew: a nonce must be remembered as long as its timestamp could pass.
    if (!m_registry.rememberNonce(r.node, r.nonce, now, 2 * skew + 1000))
        throw Refusal{"replay", "registration of node " + r.node + " reuses a nonce already seen: replay refused"};

    const auto node = m_registry.node(r.node);
    ferry::RegistrationResponse response;
    response.requestNonce = r.nonce;
    response.serverTimeMs = now;
    if (node->state == "accepted" || node->state == "pending") {
        m_registry.recordKey(r.node, r.publicKey, r.mode, hostOfPeer(peer), r.sshPort, now);
        if (node->state == "accepted") {
            response.state = ferry::RegistrationState::Accepted;
            response.hostKeys = m_options.hostKeys;
            response.pullKey = pullKey();
            spdlog::debug("Node {} registered from {} with key {}", r.node, peer, fingerprintOrText(r.publicKey));
        } else {
            response.state = ferry::RegistrationState::Pending;
            response.reason = node->reason.empty() ? "waiting for the master operator" : node->reason;
        }
    } else {
        // Declined and revoked nodes keep their recorded key: a restart of
        // keyregd must not undo the operator's decision.
        m_registry.touch(r.node, now);
        response.state = ferry::RegistrationState::Declined;
        response.reason = node->state == "revoked" ? "revoked: " + node->reason : node->reason;
        spdlog::info("Node {} from {} is {}: {}", r.node, peer, node->state, node->reason);
    }
    return {ferry::MessageType::Response, ferry::encodeRegistrationResponse(response, *secret)};
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
    std::lock_guard lock(m_mutex);
    return m_registry.nodes();
}

void Manager::addNode(const std::string& name, const std::string& secret)
{
    std::lock_guard lock(m_mutex);
    m_registry.addNode(name, secret);
    spdlog::info("Node {} enrolled with its secret by the operator", name);
}

void Manager::accept(const std::string& name, const std::string& secret)
{
    std::lock_guard lock(m_mutex);
    m_registry.accept(name, secret);
    spdlog::info("Node {} accepted by the operator", name);
}

void Manager::decline(const std::string& name, const std::string& reason)
{
    std::lock_guard lock(m_mutex);
    m_registry.decline(name, reason);
    spdlog::info("Node {} declined by the operator: {}", name, reason);
}

void Manager::revoke(const std::string& name, const std::string& reason)
{
    std::lock_guard lock(m_mutex);
    m_registry.revoke(name, reason);
    spdlog::info("Node {} revoked by the operator: {}", name, reason);
}

} // namespace registryd
