#pragma once
// D-Bus helpers shared by every daemon: the connection, an event loop that
// owns it (one thread touches the bus), idle exit, sd_notify, and the one
// wrapper through which every adaptor method and property runs.

#include <atomic>
#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include <sdbus-c++/sdbus-c++.h>
#include <spdlog/spdlog.h>

#include "ferry/Clock.h" // nowMs() and formatTime(), which callers used to find here
#include "ferry/Error.h"

namespace ferry {

// The system bus (sd-bus honours DBUS_SYSTEM_BUS_ADDRESS, which tests use to
// point at a private dbus-daemon). No name is requested here: objects first.
std::unique_ptr<sdbus::IConnection> openBus();

// The uid of the client whose call `object` is handling now, as the bus
// daemon knows it (org.freedesktop.DBus.GetConnectionUnixUser: the peer
// credentials of its connection, the ones the bus policy judges). Unlike
// sdbus::Message::getCredsUid, it reads nothing from /proc, which a unit
// with ProtectProc=invisible cannot see for other users' processes. Call it
// on the loop thread, inside a method handler. Throws ferry::Error when
// there is no such call or the bus daemon does not answer.
std::uint32_t callerUid(sdbus::IObject& object);

void notifyReady(const std::string& status);
void notifyStatus(const std::string& status);
void notifyStopping();

// Runs the bus on the calling thread until SIGTERM/SIGINT or, when
// idleTimeout is non-zero, until no call came for that long and nothing holds
// the loop. Construct it before starting any thread: it blocks SIGTERM and
// SIGINT so that only the loop receives them.
class EventLoop {
public:
    EventLoop(sdbus::IConnection& bus, std::chrono::milliseconds idleTimeout);
    ~EventLoop();
    EventLoop(const EventLoop&) = delete;
    EventLoop& operator=(const EventLoop&) = delete;

    // Thread-safe: runs fn on the loop thread. Workers use it to hand results
    // back (for example Result<>::returnResults of an async method).
    void post(std::function<void()> fn);
    // Thread-safe: restart the idle countdown.
    void touch();
    // While held (counted), the loop does not exit for idleness.
    void hold();
    void release();
    // Thread-safe: the hook for a core whose connections run on threads of
    // their own (a TCP server): busy(true) when one starts, busy(false) when
    // it ends; idle exit is held in between. Mains pass it instead of
    // holding and releasing by hand.
    std::function<void(bool busy)> activity();
    // Thread-safe: leave run() soon.
    void stop();

    // Requests busName (after the caller created its objects), then loops.
    // On idle exit the name is released first, so that the next caller
    // activates a fresh instance instead of talking to one that is leaving.
    void run(const std::string& busName);

    // Runs fn on the loop thread every period (first time after one period).
    void every(std::chrono::milliseconds period, std::function<void()> fn);

    // Loop thread only: runs fn once on the loop thread after delay (a retry
    // with backoff). While a timer is pending the loop does not exit for
    // idleness: the daemon stays up as long as something is scheduled.
    // Returns an id for cancel.
    std::uint64_t after(std::chrono::milliseconds delay, std::function<void()> fn);
    // Loop thread only: drops a pending timer (nothing once it has run).
    void cancel(std::uint64_t timer);

    // Calls onReadable on the loop thread whenever fd is readable (a
    // listening socket, for example). The fd stays the caller's.
    void watch(int fd, std::function<void()> onReadable);

    bool exitedIdle() const { return m_exitedIdle; }

private:
    void drainPosted();

    sdbus::IConnection& m_bus;
    std::chrono::milliseconds m_idleTimeout;
    int m_eventFd = -1;
    int m_signalFd = -1;
    std::mutex m_mutex;
    std::vector<std::function<void()>> m_posted;
    std::atomic<std::int64_t> m_lastActivityMs{0};
    std::atomic<int> m_holds{0};
    std::atomic<bool> m_stop{false};
    bool m_exitedIdle = false;
    struct Periodic {
        std::chrono::milliseconds period;
        std::chrono::steady_clock::time_point next;
        std::function<void()> fn;
    };
    std::vector<Periodic> m_periodic;
    struct Once {
        std::chrono::steady_clock::time_point at;
        std::function<void()> fn;
    };
    std::map<std::uint64_t, Once> m_timers;
    std::uint64_t m_nextTimer = 0;
    struct Watch {
        int fd;
        std::function<void()> fn;
    };
    std::vector<Watch> m_watches;
};

// Every adaptor method and property getter runs through this: it counts as
// activity, passes BusError through under its documented name, and turns any
// other exception into "<interface>.Error.Internal" with a log line, because
// sdbus-c++ 1.2 aborts the process on anything but sdbus::Error.
template <typename F>
auto busCall(EventLoop& loop, const std::string& interface, const char* member, F&& f) -> decltype(f())
{
    loop.touch();
    try {
        return f();
    } catch (const sdbus::Error&) {
        throw;
    } catch (const BusError& e) {
        spdlog::info("{} failed: {}", member, e.what());
        throw sdbus::Error(e.name(), e.what());
    } catch (const std::exception& e) {
        spdlog::error("{} failed: {}", member, e.what());
        throw sdbus::Error(interface + ".Error.Internal", e.what());
    } catch (...) {
        spdlog::error("{} failed with an unknown exception", member);
        throw sdbus::Error(interface + ".Error.Internal", "unknown failure");
    }
}

// org.freedesktop.LogControl1 on /org/freedesktop/LogControl1, so that
// `systemctl service-log-level` works on every daemon.
class LogControl {
public:
    LogControl(sdbus::IConnection& bus, EventLoop& loop, std::string identifier);
    ~LogControl();

private:
    std::unique_ptr<sdbus::IObject> m_object;
};

} // namespace ferry
