#include "KeyRegAdaptor.h"

#include <memory>

namespace keyregd {

KeyRegAdaptor::KeyRegAdaptor(sdbus::IConnection& bus, ferry::EventLoop& loop, Manager& manager, Registrar& registrar)
    : AdaptorInterfaces(bus, kObjectPath), m_loop(loop), m_manager(manager), m_registrar(registrar)
{
    registerAdaptor();
}

KeyRegAdaptor::~KeyRegAdaptor()
{
    unregisterAdaptor();
}

void KeyRegAdaptor::statusChanged(const Status& before, const Status& after)
{
    m_loop.post([this, before, after] {
        std::vector<std::string> changed;
        if (before.state != after.state)
            changed.emplace_back("State");
        if (before.reason != after.reason)
            changed.emplace_back("Reason");
        if (before.fingerprint != after.fingerprint)
            changed.emplace_back("Fingerprint");
        if (before.masterHostKeyFingerprint != after.masterHostKeyFingerprint)
            changed.emplace_back("MasterHostKeyFingerprint");
        if (before.lastAttemptMs != after.lastAttemptMs)
            changed.emplace_back("LastAttempt");
        if (before.lastError != after.lastError)
            changed.emplace_back("LastError");
        try {
            if (!changed.empty())
                getObject().emitPropertiesChangedSignal(kInterface, changed);
            if (before.state != after.state || before.reason != after.reason)
                emitStateChanged(after.state, after.reason);
        } catch (const std::exception& e) {
            spdlog::warn("Failed to signal the registration state change: {}; ignoring", e.what());
        }
    });
}

// The methods hand their work to the Registrar, whose BackgroundJobs runs it
// off the loop and answers on the loop thread (coalesced: callers that ask
// while a round runs are answered by the next one).
void KeyRegAdaptor::Register(sdbus::Result<std::string, std::string>&& result)
{
    ferry::busCall(m_loop, kInterface, "Register", [&] {
        auto shared = std::make_shared<sdbus::Result<std::string, std::string>>(std::move(result));
        m_registrar.requestNow([shared](const Status& status) { shared->returnResults(status.state, status.reason); },
                               [shared](const sdbus::Error& error) { shared->returnError(error); });
    });
}

void KeyRegAdaptor::RotateKey(sdbus::Result<std::string, std::string>&& result)
{
    ferry::busCall(m_loop, kInterface, "RotateKey", [&] {
        auto shared = std::make_shared<sdbus::Result<std::string, std::string>>(std::move(result));
        m_registrar.requestRotation(
            [shared](const Status& status) { shared->returnResults(status.state, status.reason); },
            [shared](const sdbus::Error& error) { shared->returnError(error); });
    });
}

void KeyRegAdaptor::RenewCertificate(sdbus::Result<bool, std::string>&& result)
{
    ferry::busCall(m_loop, kInterface, "RenewCertificate", [&] {
        auto shared = std::make_shared<sdbus::Result<bool, std::string>>(std::move(result));
        m_registrar.requestRenewal(
            [shared](const Renewal& renewal) { shared->returnResults(renewal.renewed, renewal.summary); },
            [shared](const sdbus::Error& error) { shared->returnError(error); });
    });
}

std::string KeyRegAdaptor::Fingerprint()
{
    return ferry::busCall(m_loop, kInterface, "Fingerprint", [&] { return m_manager.status().fingerprint; });
}

std::string KeyRegAdaptor::State()
{
    return ferry::busCall(m_loop, kInterface, "State", [&] { return m_manager.status().state; });
}

std::string KeyRegAdaptor::Reason()
{
    return ferry::busCall(m_loop, kInterface, "Reason", [&] { return m_manager.status().reason; });
}

std::string KeyRegAdaptor::MasterHostKeyFingerprint()
{
    return ferry::busCall(m_loop, kInterface, "MasterHostKeyFingerprint",
                          [&] { return m_manager.status().masterHostKeyFingerprint; });
}

uint64_t KeyRegAdaptor::LastAttempt()
{
    return ferry::busCall(m_loop, kInterface, "LastAttempt",
                          [&] { return static_cast<uint64_t>(m_manager.status().lastAttemptMs); });
}

std::string KeyRegAdaptor::LastError()
{
    return ferry::busCall(m_loop, kInterface, "LastError", [&] { return m_manager.status().lastError; });
}

} // namespace keyregd
