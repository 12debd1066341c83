#pragma once
// org.ferry.KeyReg1 over keyregd's Manager and Registrar. The methods go to
// the Registrar (background jobs); property getters read the Manager's
// status; changes arrive from a round's worker thread and are posted to the
// loop thread as signals, the progress path of ferry::BackgroundJobs.

#include "org.ferry.KeyReg1-adaptor.h"

#include "Manager.h"
#include "Registrar.h"
#include "ferry/Bus.h"

namespace keyregd {

class KeyRegAdaptor final : public sdbus::AdaptorInterfaces<org::ferry::KeyReg1_adaptor, sdbus::Properties_adaptor> {
public:
    static constexpr const char* kObjectPath = "/org/ferry/KeyReg1";
    static constexpr const char* kInterface = "org.ferry.KeyReg1";

    KeyRegAdaptor(sdbus::IConnection& bus, ferry::EventLoop& loop, Manager& manager, Registrar& registrar);
    ~KeyRegAdaptor();

    // Thread-safe: called by the Manager when its status changed.
    void statusChanged(const Status& before, const Status& after);

private:
    void Register(sdbus::Result<std::string, std::string>&& result) override;
    void RotateKey(sdbus::Result<std::string, std::string>&& result) override;
    void RenewCertificate(sdbus::Result<bool, std::string>&& result) override;
    std::string Fingerprint() override;
    std::string State() override;
    std::string Reason() override;
    std::string MasterHostKeyFingerprint() override;
    uint64_t LastAttempt() override;
    std::string LastError() override;

    ferry::EventLoop& m_loop;
    Manager& m_manager;
    Registrar& m_registrar;
};

} // namespace keyregd
