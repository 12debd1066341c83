#include "Registrar.h"

#include <spdlog/spdlog.h>

#include "ferry/Clock.h"

namespace keyregd {

Registrar::Registrar(Manager& manager, std::function<void(bool)> busy)
    : m_manager(manager), m_busyHook(std::move(busy))
{
}

Registrar::~Registrar()
{
    stop();
}

void Registrar::start(bool registerNow)
{
    {
        std::lock_guard lock(m_mutex);
        m_kicked = registerNow;
    }
    setBusy(registerNow);
    m_thread = std::thread([this] { run(); });
}

void Registrar::stop()
{
    {
        std::lock_guard lock(m_mutex);
        m_stop = true;
    }
    m_wake.notify_all();
    if (m_thread.joinable())
        m_thread.join();
}

void Registrar::requestNow(std::function<void(const Status&)> done)
{
    {
        std::lock_guard lock(m_mutex);
        m_kicked = true;
        m_waiters.push_back(std::move(done));
    }
    setBusy(true);
    m_wake.notify_all();
}

void Registrar::requestRotation(std::function<void(const Status&)> done)
{
    {
        std::lock_guard lock(m_mutex);
        m_kicked = true;
        m_rotate = true;
        m_rotationWaiters.push_back(std::move(done));
    }
    setBusy(true);
    m_wake.notify_all();
}

void Registrar::requestRenewal(std::function<void(const Renewal&, const std::string&)> done)
{
    {
        std::lock_guard lock(m_mutex);
        m_renewalWaiters.push_back(std::move(done));
    }
    setBusy(true);
    m_wake.notify_all();
}

void Registrar::setBusy(bool busy)
{
    std::lock_guard lock(m_mutex);
    if (busy == m_busy)
        return;
    m_busy = busy;
    if (m_busyHook)
        m_busyHook(busy);
}

void Registrar::run()
{
    std::unique_lock lock(m_mutex);
    // time_point::max(): no round scheduled.
    auto due = std::chrono::steady_clock::time_point::max();
    for (;;) {
        if (m_stop)
            break;
        if (!m_renewalWaiters.empty()) {
            auto waiters = std::move(m_renewalWaiters);
            m_renewalWaiters.clear();
            lock.unlock();
            Renewal renewal;
            std::string error;
            try {
                renewal = m_manager.renewCertificate(ferry::nowMs());
            } catch (const std::exception& e) {
                error = e.what();
                spdlog::error("{}", error);
            }
            for (auto& w : waiters)
                w(renewal, error);
            setBusy(due != std::chrono::steady_clock::time_point::max());
            lock.lock();
            continue;
        }
        if (m_kicked || std::chrono::steady_clock::now() >= due) {
            m_kicked = false;
            const bool rotate = m_rotate;
            m_rotate = false;
            auto waiters = std::move(m_waiters);
            m_waiters.clear();
            for (auto& w : m_rotationWaiters)
                waiters.push_back(std::move(w));
            m_rotationWaiters.clear();
            lock.unlock();
            bool again = false;
            try {
                again = rotate ? m_manager.rotateKey() : m_manager.registerOnce();
            } catch (const std::exception& e) {
                spdlog::error("Registration round failed: {}", e.what());
                again = true;
            }
            const auto status = m_manager.status();
            for (auto& w : waiters)
                w(status);
            if (again) {
                const auto delay = m_manager.nextDelay();
                spdlog::debug("Next registration round in {} ms", delay.count());
                due = std::chrono::steady_clock::now() + delay;
            } else {
                due = std::chrono::steady_clock::time_point::max();
            }
            setBusy(again);
            lock.lock();
            if (m_kicked)
                continue;
        }
        if (due != std::chrono::steady_clock::time_point::max())
            m_wake.wait_until(lock, due, [this] { return m_stop || m_kicked || !m_renewalWaiters.empty(); });
        else
            m_wake.wait(lock, [this] { return m_stop || m_kicked || !m_renewalWaiters.empty(); });
    }
}

} // namespace keyregd
