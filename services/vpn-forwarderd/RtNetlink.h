#pragma once
// rtnetlink: dumps links and IPv4 addresses, sets per-link IPv4 forwarding
// (RTM_SETLINK with IFLA_INET_CONF, so the unit needs no write access to
// /proc/sys), and watches link and address events on a thread of its own.

#include <atomic>
#include <functional>
#include <thread>

#include "Network.h"

namespace vpnfwd {

class RtNetlink final : public Network {
public:
    RtNetlink() = default;
    ~RtNetlink() override;
    RtNetlink(const RtNetlink&) = delete;
    RtNetlink& operator=(const RtNetlink&) = delete;

    NetSnapshot snapshot() override;
    void enableForwarding(const LinkState& link) override;

    // Subscribes to link and IPv4 address events and calls onChange (from the
    // watcher thread) after each burst of them, and after a lost event
    // (ENOBUFS), so that the caller re-reads the whole picture. The
    // subscription exists when this returns, so a snapshot() taken afterwards
    // misses nothing.
    void watch(std::function<void()> onChange);
    void stopWatching();

private:
    void watchLoop();

    int m_watchFd = -1;
    int m_stopFd = -1;
    std::function<void()> m_onChange;
    std::thread m_thread;
};

} // namespace vpnfwd
