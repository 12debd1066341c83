#include "RegistryAdaptor.h"

#include "ferry/RegistryStore.h"
#include "ferry/RegistryProtocol.h"

namespace registryd {

namespace {

const std::string kErrorPrefix = "org.ferry.Registry1.Error.";

void checkName(const std::string& name)
{
    if (!ferry::isValidNodeName(name))
        throw ferry::BusError(kErrorPrefix + "InvalidArgument",
                              "'" + name.substr(0, 80) + "' is not a node name (1–64 of A-Z a-z 0-9 . _ -)");
}

} // namespace

RegistryAdaptor::RegistryAdaptor(sdbus::IConnection& bus, ferry::EventLoop& loop, Manager& manager)
    : AdaptorInterfaces(bus, kObjectPath), m_loop(loop), m_manager(manager)
{
    registerAdaptor();
}

RegistryAdaptor::~RegistryAdaptor()
{
    unregisterAdaptor();
}

template <typename F>
auto RegistryAdaptor::call(const char* member, F&& f)
{
    return ferry::busCall(m_loop, kInterface, member, [&] {
        try {
            return f();
        } catch (const ferry::NoSuchNode& e) {
            throw ferry::BusError(kErrorPrefix + "NoSuchNode", e.what());
        } catch (const ferry::SecretRequired& e) {
            throw ferry::BusError(kErrorPrefix + "SecretRequired", e.what());
        } catch (const ferry::NoHostKeyChange& e) {
            throw ferry::BusError(kErrorPrefix + "NoHostKeyChange", e.what());
        }
    });
}

std::vector<sdbus::Struct<std::string, std::string, std::string, std::string, std::string, std::string, int64_t,
                          int64_t, std::string, bool>>
RegistryAdaptor::ListNodes()
{
    return call("ListNodes", [&] {
        std::vector<sdbus::Struct<std::string, std::string, std::string, std::string, std::string, std::string,
                                  int64_t, int64_t, std::string, bool>>
            out;
        for (const auto& n : m_manager.nodes()) {
            std::string fingerprint;
            if (!n.publicKey.empty()) {
                fingerprint = ferry::keyFingerprintOrNote(n.publicKey);
            }
            out.emplace_back(n.name, n.state, n.mode, n.publicKey, fingerprint, n.sshHost, n.firstSeenMs,
                             n.lastSeenMs, n.reason, n.hasSecret);
        }
        return out;
    });
}

void RegistryAdaptor::AddNode(const std::string& name, const std::string& secret)
{
    call("AddNode", [&] {
        checkName(name);
        if (secret.size() < 32 || secret.size() > 128 ||
            secret.find_first_not_of("0123456789abcdefABCDEF") != std::string::npos)
            throw ferry::BusError(kErrorPrefix + "InvalidArgument",
                                  "the secret of node " + name + " must be 32–128 hex characters (from `ferryctl secret`)");
        m_manager.addNode(name, secret);
        emitNodeChanged(name, "accepted");
    });
}

void RegistryAdaptor::Accept(const std::string& name, const std::string& secret)
{
    call("Accept", [&] {
        checkName(name);
        if (!secret.empty() && (secret.size() < 32 || secret.size() > 128 ||
                                secret.find_first_not_of("0123456789abcdefABCDEF") != std::string::npos))
            throw ferry::BusError(kErrorPrefix + "InvalidArgument",
                                  "the secret of node " + name + " must be 32–128 hex characters (from `ferryctl secret`)");
        m_manager.accept(name, secret);
        emitNodeChanged(name, "accepted");
    });
}

void RegistryAdaptor::Decline(const std::string& name, const std::string& reason)
{
    call("Decline", [&] {
        checkName(name);
        m_manager.decline(name, reason);
        emitNodeChanged(name, "declined");
    });
}

void RegistryAdaptor::Revoke(const std::string& name, const std::string& reason)
{
    call("Revoke", [&] {
        checkName(name);
        m_manager.revoke(name, reason);
        emitNodeChanged(name, "revoked");
    });
}

} // namespace registryd

namespace registryd {

void RegistryAdaptor::AcceptHostKeys(const std::string& name)
{
    call("AcceptHostKeys", [&] {
        checkName(name);
        m_manager.acceptHostKeys(name);
        emitNodeChanged(name, "hostkeys-accepted");
    });
}

void RegistryAdaptor::SetNodePolicy(const std::string& name, const int64_t& minPushPeriodS,
                                    const int64_t& minPullIntervalS)
{
    call("SetNodePolicy", [&] {
        checkName(name);
        auto value = [&](int64_t v, const char* what) -> std::optional<std::uint32_t> {
            if (v == -1)
                return std::nullopt;
            if (v < 0 || v > ferry::kMaxPolicySeconds)
                throw ferry::BusError(kErrorPrefix + "InvalidArgument",
                                      std::string(what) + " must be -1 (the default) or 0–" +
                                          std::to_string(ferry::kMaxPolicySeconds) + " seconds");
            return static_cast<std::uint32_t>(v);
        };
        m_manager.setPolicy(name, value(minPushPeriodS, "the minimum push period"),
                            value(minPullIntervalS, "the minimum pull interval"));
    });
}

} // namespace registryd
