#pragma once
// Drives the Manager from one worker thread: a round at start (when asked),
// a round on request, and further rounds with backoff while a master is unreachable or
// still pending. Tells its owner when it has work scheduled, so the daemon
// stays up exactly as long as there is something to retry.

#include <condition_variable>
#include <functional>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "Manager.h"

namespace keyregd {

class Registrar {
public:
    // busy(true) when rounds are due, busy(false) when nothing is scheduled.
    Registrar(Manager& manager, std::function<void(bool busy)> busy);
    ~Registrar();
    Registrar(const Registrar&) = delete;
    Registrar& operator=(const Registrar&) = delete;

    // registerNow: a round at once (the boot's start); otherwise wait for a request.
    void start(bool registerNow);
    void stop();
    // Runs a round as soon as possible; done(status) runs on the worker
    // thread after it.
    void requestNow(std::function<void(const Status&)> done);
    // Runs a key rotation (Manager::rotateKey) as soon as possible.
    void requestRotation(std::function<void(const Status&)> done);
    // Runs Manager::renewCertificate as soon as possible; done(renewal, error)
    // runs on the worker thread after it (error "" on success).
    void requestRenewal(std::function<void(const Renewal&, const std::string& error)> done);

private:
    void run();
    void setBusy(bool busy);

    Manager& m_manager;
    std::function<void(bool)> m_busyHook;
    std::mutex m_mutex;
    std::condition_variable m_wake;
    bool m_stop = false;
    bool m_kicked = false;
    bool m_rotate = false;
    bool m_busy = false;
    std::vector<std::function<void(const Status&)>> m_waiters;
    std::vector<std::function<void(const Status&)>> m_rotationWaiters;
    std::vector<std::function<void(const Renewal&, const std::string&)>> m_renewalWaiters;
    std::thread m_thread;
};

} // namespace keyregd
