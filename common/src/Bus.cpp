#include "ferry/Bus.h"

#include <poll.h>
#include <signal.h>
#include <sys/eventfd.h>
#include <sys/signalfd.h>
#include <unistd.h>

#include <cerrno>
#include <ctime>

#include <systemd/sd-daemon.h>

#include "ferry/Log.h"

namespace ferry {

namespace {
std::int64_t monotonicMs()
{
    using namespace std::chrono;
    return duration_cast<milliseconds>(steady_clock::now().time_since_epoch()).count();
}
} // namespace

std::unique_ptr<sdbus::IConnection> openBus()
{
    try {
        return sdbus::createSystemBusConnection();
    } catch (const sdbus::Error& e) {
        throw Error(std::string("Failed to connect to the system bus: ") + e.what());
    }
}

std::uint32_t callerUid(sdbus::IObject& object)
{
    const sdbus::Message* message = object.getCurrentlyProcessedMessage();
    if (message == nullptr)
        throw Error("Failed to identify the caller: no call is being handled");
    const std::string sender = message->getSender();
    try {
        auto driver = sdbus::createProxy(object.getConnection(), "org.freedesktop.DBus", "/org/freedesktop/DBus");
        std::uint32_t uid = 0;
        // The bus daemon answers from memory; the bound only keeps a wedged
        // daemon from holding this loop for sd-bus's default 25 s.
        driver->callMethod("GetConnectionUnixUser")
            .onInterface("org.freedesktop.DBus")
            .withTimeout(std::chrono::seconds(5))
            .withArguments(sender)
            .storeResultsTo(uid);
        return uid;
    } catch (const sdbus::Error& e) {
        throw Error("Failed to ask the bus for the uid of caller " + sender + ": " + e.getName() + ": " +
                    e.getMessage());
    }
}

void notifyReady(const std::string& status)
{
    sd_notifyf(0, "READY=1\nSTATUS=%s", status.c_str());
}

void notifyStatus(const std::string& status)
{
    sd_notifyf(0, "STATUS=%s", status.c_str());
}

void notifyStopping()
{
    sd_notify(0, "STOPPING=1");
}

EventLoop::EventLoop(sdbus::IConnection& bus, std::chrono::milliseconds idleTimeout)
    : m_bus(bus), m_idleTimeout(idleTimeout)
{
    sigset_t mask;
    sigemptyset(&mask);
    sigaddset(&mask, SIGTERM);
    sigaddset(&mask, SIGINT);
    if (pthread_sigmask(SIG_BLOCK, &mask, nullptr) != 0)
        throw Error("Failed to block SIGTERM and SIGINT");
    m_signalFd = ::signalfd(-1, &mask, SFD_CLOEXEC | SFD_NONBLOCK);
    if (m_signalFd < 0)
        throwErrno("create a signalfd");
    m_eventFd = ::eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
    if (m_eventFd < 0)
        throwErrno("create an eventfd");
    m_lastActivityMs = monotonicMs();
}

EventLoop::~EventLoop()
{
    if (m_eventFd >= 0)
        ::close(m_eventFd);
    if (m_signalFd >= 0)
        ::close(m_signalFd);
}

void EventLoop::post(std::function<void()> fn)
{
    {
        std::lock_guard lock(m_mutex);
        m_posted.push_back(std::move(fn));
    }
    const std::uint64_t one = 1;
    [[maybe_unused]] auto n = ::write(m_eventFd, &one, sizeof one);
}

void EventLoop::touch()
{
    m_lastActivityMs = monotonicMs();
}

void EventLoop::hold()
{
    ++m_holds;
    touch();
}

void EventLoop::release()
{
    --m_holds;
    touch();
}

std::function<void(bool)> EventLoop::activity()
{
    // Both on the caller's thread: the loop need not wake for a release. With
    // an idle timeout it never sleeps past the idle deadline (run()), and
    // sees there whether anything still holds it; a post per connection woke
    // the loop thread once per push (4 % of collectord's CPU at 50 pushes/s,
    // bench/collector-push).
    return [this](bool busy) {
        if (busy)
            hold();
        else
            release();
    };
}

void EventLoop::stop()
{
    m_stop = true;
    const std::uint64_t one = 1;
    [[maybe_unused]] auto n = ::write(m_eventFd, &one, sizeof one);
}

void EventLoop::every(std::chrono::milliseconds period, std::function<void()> fn)
{
    m_periodic.push_back({period, std::chrono::steady_clock::now() + period, std::move(fn)});
}

std::uint64_t EventLoop::after(std::chrono::milliseconds delay, std::function<void()> fn)
{
    const std::uint64_t id = ++m_nextTimer;
    m_timers[id] = {std::chrono::steady_clock::now() + delay, std::move(fn)};
    return id;
}

void EventLoop::cancel(std::uint64_t timer)
{
    m_timers.erase(timer);
}

void EventLoop::watch(int fd, std::function<void()> onReadable)
{
    m_watches.push_back({fd, std::move(onReadable)});
}

void EventLoop::drainPosted()
{
    std::uint64_t counter = 0;
    [[maybe_unused]] auto n = ::read(m_eventFd, &counter, sizeof counter);
    std::vector<std::function<void()>> work;
    {
        std::lock_guard lock(m_mutex);
        work.swap(m_posted);
    }
    for (auto& fn : work) {
        try {
            fn();
        } catch (const std::exception& e) {
            spdlog::error("Ignoring a failure in deferred work: {}", e.what());
        }
    }
}

void EventLoop::run(const std::string& busName)
{
    try {
        m_bus.requestName(busName);
    } catch (const sdbus::Error& e) {
        throw Error("Failed to acquire bus name " + busName + ": " + e.getMessage());
    }
    touch();
    for (;;) {
        while (m_bus.processPendingRequest()) {
        }
        drainPosted();
        const auto now = std::chrono::steady_clock::now();
        for (auto& p : m_periodic) {
            if (now >= p.next) {
                p.next = now + p.period;
                try {
                    p.fn();
                } catch (const std::exception& e) {
                    spdlog::error("Ignoring a failure in periodic work: {}", e.what());
                }
            }
        }
        // A timer's fn may add or cancel timers: take the due ones out first.
        std::vector<std::function<void()>> due;
        for (auto it = m_timers.begin(); it != m_timers.end();) {
            if (now >= it->second.at) {
                due.push_back(std::move(it->second.fn));
                it = m_timers.erase(it);
            } else {
                ++it;
            }
        }
        for (auto& fn : due) {
            try {
                fn();
            } catch (const std::exception& e) {
                spdlog::error("Ignoring a failure in scheduled work: {}", e.what());
            }
        }
        if (!due.empty())
            touch();
        if (m_stop)
            break;

        const auto pollData = m_bus.getEventLoopPollData();
        std::int64_t timeoutMs = -1;
        if (auto rel = pollData.getRelativeTimeout())
            timeoutMs = std::max<std::int64_t>(0, std::chrono::duration_cast<std::chrono::milliseconds>(*rel).count());
        const std::int64_t nowMono = monotonicMs();
        if (m_idleTimeout.count() > 0) {
            const std::int64_t idleLeft = m_lastActivityMs + m_idleTimeout.count() - nowMono;
            if (idleLeft <= 0 && m_holds == 0 && m_timers.empty()) {
                spdlog::debug("Idle for {} ms, exiting", m_idleTimeout.count());
                m_exitedIdle = true;
                break;
            }
            const std::int64_t wait = std::max<std::int64_t>(idleLeft, 50);
            timeoutMs = timeoutMs < 0 ? wait : std::min(timeoutMs, wait);
        }
        for (auto& p : m_periodic) {
            const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(p.next - now).count();
            timeoutMs = timeoutMs < 0 ? std::max<std::int64_t>(left, 0) : std::min<std::int64_t>(timeoutMs, std::max<std::int64_t>(left, 0));
        }

        // Round up, so that a timer is due when poll returns.
        const auto timerNow = std::chrono::steady_clock::now();
        for (const auto& [id, t] : m_timers) {
            const auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(t.at - timerNow).count() + 1;
            const auto left = std::max<std::int64_t>(0, ms);
            timeoutMs = timeoutMs < 0 ? left : std::min(timeoutMs, left);
        }

        std::vector<pollfd> fds = {{pollData.fd, pollData.events, 0}, {m_eventFd, POLLIN, 0}, {m_signalFd, POLLIN, 0}};
        for (const auto& w : m_watches)
            fds.push_back({w.fd, POLLIN, 0});
        const int r = ::poll(fds.data(), fds.size(), static_cast<int>(std::min<std::int64_t>(timeoutMs, 1 << 30)));
        if (r < 0 && errno != EINTR)
            throwErrno("poll the bus");
        if (r > 0 && (fds[2].revents & POLLIN)) {
            signalfd_siginfo info{};
            [[maybe_unused]] auto n = ::read(m_signalFd, &info, sizeof info);
            spdlog::debug("Received signal {}, stopping", info.ssi_signo);
            break;
        }
        for (std::size_t i = 0; r > 0 && i < m_watches.size(); ++i) {
            if (fds[3 + i].revents & POLLIN) {
                try {
                    m_watches[i].fn();
                } catch (const std::exception& e) {
                    spdlog::error("Ignoring a failure while handling fd {}: {}", m_watches[i].fd, e.what());
                }
            }
        }
    }
    notifyStopping();
    try {
        m_bus.releaseName(busName);
        // Answer whatever arrived before the release took effect.
        while (m_bus.processPendingRequest()) {
        }
    } catch (const sdbus::Error& e) {
        spdlog::debug("Ignoring failure to release {}: {}", busName, e.getMessage());
    }
}

LogControl::LogControl(sdbus::IConnection& bus, EventLoop& loop, std::string identifier)
{
    static const std::string kInterface = "org.freedesktop.LogControl1";
    m_object = sdbus::createObject(bus, "/org/freedesktop/LogControl1");
    m_object->registerProperty("LogLevel")
        .onInterface(kInterface)
        .withGetter([&loop]() {
            return busCall(loop, kInterface, "LogLevel", [] { return std::string(logLevelName()); });
        })
        .withSetter([&loop](const std::string& level) {
            busCall(loop, kInterface, "LogLevel", [&] {
                if (!setLogLevel(level))
                    throw BusError("org.freedesktop.DBus.Error.InvalidArgs", "Unknown log level '" + level + "'");
                spdlog::info("Log level set to {}", level);
            });
        });
    m_object->registerProperty("LogTarget")
        .onInterface(kInterface)
        .withGetter([&loop]() {
            return busCall(loop, kInterface, "LogTarget",
                           [] { return std::string(std::getenv("JOURNAL_STREAM") ? "journal" : "console"); });
        })
        .withSetter([&loop](const std::string& target) {
            busCall(loop, kInterface, "LogTarget", [&] {
                if (target != "journal" && target != "console")
                    throw BusError("org.freedesktop.DBus.Error.NotSupported",
                                   "Log target '" + target + "' is not supported");
            });
        });
    m_object->registerProperty("SyslogIdentifier")
        .onInterface(kInterface)
        .withGetter([&loop, identifier]() {
            return busCall(loop, kInterface, "SyslogIdentifier", [&] { return identifier; });
        });
    m_object->finishRegistration();
}

LogControl::~LogControl() = default;

} // namespace ferry
