#pragma once
// Runs the Manager's rounds as background jobs (ferry::BackgroundJobs) on
// the event loop: a round at start (when asked), a round on request, and
// further rounds with backoff (EventLoop::after) while a master is
// unreachable or still pending. One job runs at a time; callers that ask
// while one runs wait for the next round, which answers all of them. The
// daemon stays up while a job runs or a retry is scheduled, and no longer.
//
// Loop thread only, like the EventLoop it is given.

#include <cstddef>
#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <vector>

#include <sdbus-c++/sdbus-c++.h>

#include "Manager.h"
#include "ferry/BackgroundJobs.h"
#include "ferry/Bus.h"

namespace keyregd {

class Registrar {
public:
    static constexpr const char* kInterface = "org.ferry.KeyReg1";
    // Callers waiting for the next round or renewal, all methods together;
    // past it a request fails with org.ferry.KeyReg1.Error.Busy.
    static constexpr std::size_t kMaxWaiters = 64;

    using Failed = std::function<void(const sdbus::Error&)>;

    Registrar(Manager& manager, ferry::EventLoop& loop);
    ~Registrar();
    Registrar(const Registrar&) = delete;
    Registrar& operator=(const Registrar&) = delete;

    // registerNow: a round at once (the boot's start); otherwise wait for a request.
    void start(bool registerNow);
    // Waits for a running round and drops the scheduled retry; callers still
    // waiting get no answer (the daemon is leaving).
    void stop();

    // A round (Manager::registerOnce) as soon as possible; done(status) on
    // the loop thread after it, or failed(error).
    void requestNow(std::function<void(const Status&)> done, Failed failed);
    // A key rotation (Manager::rotateKey) as soon as possible; as requestNow.
    void requestRotation(std::function<void(const Status&)> done, Failed failed);
    // Manager::renewCertificate as soon as possible; done(renewal), or
    // failed with org.ferry.KeyReg1.Error.Certificate.
    void requestRenewal(std::function<void(const Renewal&)> done, Failed failed);

private:
    struct RoundWaiter {
        std::function<void(const Status&)> done;
        Failed failed;
    };
    struct RenewalWaiter {
        std::function<void(const Renewal&)> done;
        Failed failed;
    };
    void requestRound(const char* member, bool rotate, std::function<void(const Status&)> done, Failed failed);
    // False (failed already called with Error.Busy) when kMaxWaiters wait.
    bool admit(const char* member, const Failed& failed) const;
    // Starts the next job when none runs and one is due.
    void kick();
    void startRound();
    void startRenewal();
    void scheduleRetry();

    Manager& m_manager;
    ferry::EventLoop& m_loop;
    bool m_due = false;    // a round is due (a request, the start, a retry)
    bool m_rotate = false; // ... and it rotates the key
    std::vector<RoundWaiter> m_roundWaiters;
    std::vector<RenewalWaiter> m_renewalWaiters;
    std::optional<std::uint64_t> m_retry; // the loop's timer for the next round
    // Last: its destructor waits for the running job, which uses the above.
    ferry::BackgroundJobs m_jobs;
};

} // namespace keyregd
