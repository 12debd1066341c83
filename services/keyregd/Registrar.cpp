#include "Registrar.h"

#include <memory>
#include <utility>

#include <spdlog/spdlog.h>

#include "ferry/Clock.h"

namespace keyregd {

namespace {

// What a round leaves for the loop thread.
struct Round {
    bool again = false;
    Status status;
};

std::optional<ferry::BusError> mapError(const std::exception& e)
{
    if (dynamic_cast<const CertificateError*>(&e))
        return ferry::BusError("org.ferry.KeyReg1.Error.Certificate", e.what());
    return std::nullopt;
}

} // namespace

Registrar::Registrar(Manager& manager, ferry::EventLoop& loop)
    : m_manager(manager), m_loop(loop), m_jobs(loop, kInterface, 1, mapError)
{
}

Registrar::~Registrar()
{
    stop();
}

void Registrar::start(bool registerNow)
{
    m_due = registerNow;
    kick();
}

void Registrar::stop()
{
    if (m_retry) {
        m_loop.cancel(*m_retry);
        m_retry.reset();
    }
    m_due = false;
    m_jobs.stop();
}

bool Registrar::admit(const char* member, const Failed& failed) const
{
    const std::size_t waiting = m_roundWaiters.size() + m_renewalWaiters.size();
    if (waiting < kMaxWaiters)
        return true;
    spdlog::info("Refusing {}: {} callers are waiting for the next round", member, waiting);
    failed(sdbus::Error(std::string(kInterface) + ".Error.Busy",
                        std::string(member) + " refused: " + std::to_string(waiting) +
                            " callers are already waiting for the next registration round, the most this daemon"
                            " keeps; try again when it ends"));
    return false;
}

void Registrar::requestNow(std::function<void(const Status&)> done, Failed failed)
{
    requestRound("Register", false, std::move(done), std::move(failed));
}

void Registrar::requestRotation(std::function<void(const Status&)> done, Failed failed)
{
    requestRound("RotateKey", true, std::move(done), std::move(failed));
}

void Registrar::requestRound(const char* member, bool rotate, std::function<void(const Status&)> done, Failed failed)
{
    if (!admit(member, failed))
        return;
    m_roundWaiters.push_back({std::move(done), std::move(failed)});
    m_due = true;
    m_rotate = m_rotate || rotate;
    kick();
}

void Registrar::requestRenewal(std::function<void(const Renewal&)> done, Failed failed)
{
    if (!admit("RenewCertificate", failed))
        return;
    m_renewalWaiters.push_back({std::move(done), std::move(failed)});
    kick();
}

void Registrar::kick()
{
    if (m_jobs.running() > 0)
        return; // its completion kicks again
    if (!m_renewalWaiters.empty())
        startRenewal();
    else if (m_due)
        startRound();
}

void Registrar::startRound()
{
    const bool rotate = std::exchange(m_rotate, false);
    m_due = false;
    // This round is the retry too.
    if (m_retry) {
        m_loop.cancel(*m_retry);
        m_retry.reset();
    }
    auto waiters = std::make_shared<std::vector<RoundWaiter>>(std::exchange(m_roundWaiters, {}));
    m_jobs.start(
        rotate ? "RotateKey" : "Register",
        [this, rotate] {
            Round round;
            try {
                round.again = rotate ? m_manager.rotateKey() : m_manager.registerOnce();
            } catch (const std::exception& e) {
                // Not the callers' failure: they get the state, which says it.
                spdlog::error("Registration round failed: {}", e.what());
                round.again = true;
            }
            round.status = m_manager.status();
            return round;
        },
        [this, waiters](Round round) {
            for (auto& w : *waiters)
                w.done(round.status);
            if (round.again)
                scheduleRetry();
            kick();
        },
        [this, waiters](const sdbus::Error& error) {
            // The round did not run (no worker thread): answer, and try later.
            for (auto& w : *waiters)
                w.failed(error);
            scheduleRetry();
            kick();
        });
}

void Registrar::startRenewal()
{
    auto waiters = std::make_shared<std::vector<RenewalWaiter>>(std::exchange(m_renewalWaiters, {}));
    m_jobs.start(
        "RenewCertificate",
        [this] {
            try {
                return m_manager.renewCertificate(ferry::nowMs());
            } catch (const CertificateError&) {
                throw;
            } catch (const std::exception& e) {
                throw CertificateError(e.what());
            }
        },
        [this, waiters](const Renewal& renewal) {
            for (auto& w : *waiters)
                w.done(renewal);
            kick();
        },
        [this, waiters](const sdbus::Error& error) {
            for (auto& w : *waiters)
                w.failed(error);
            kick();
        });
}

void Registrar::scheduleRetry()
{
    if (m_retry)
        m_loop.cancel(*m_retry);
    const auto delay = m_manager.nextDelay();
    spdlog::debug("Next registration round in {} ms", delay.count());
    m_retry = m_loop.after(delay, [this] {
        m_retry.reset();
        m_due = true;
        kick();
    });
}

} // namespace keyregd
