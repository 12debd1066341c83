#pragma once
// Tells pushd that a pull succeeded (org.ferry.Push1.NotePull), so that auto
// mode keeps push off while the master pulls. The pull has already succeeded
// when this runs: a missing or slow pushd is a debug line, never a failure.

#include <chrono>

namespace pullshell {

class PullObserver {
public:
    virtual ~PullObserver() = default;
    virtual void notePull() = 0;
};

class PushNotifier : public PullObserver {
public:
    explicit PushNotifier(std::chrono::milliseconds timeout) : m_timeout(timeout) {}
    void notePull() override;

private:
    std::chrono::milliseconds m_timeout;
};

} // namespace pullshell
