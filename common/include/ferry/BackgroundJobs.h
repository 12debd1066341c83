#pragma once
// The one way a daemon runs work off its event loop: an async D-Bus method
// (PushNow, PullNow, Check, ...) or a round a timer asked for. Each job runs
// on a thread of its own; BackgroundJobs
//   - counts running jobs against a limit (a queue has a limit): past it, a
//     job is refused with "<interface>.Error.Busy";
//   - holds the loop's idle exit while any job runs;
//   - hands the job's value back on the loop thread, the only thread that
//     touches the bus, and destroys the reply there too;
//   - maps every exception to a documented D-Bus error: sdbus::Error as it
//     is, then the adaptor's own map of domain errors (NotRegisteredError →
//     "org.ferry.Push1.Error.NotRegistered"), then ferry::BusError under its
//     name, and anything else to "<interface>.Error.Internal" with a log line;
//   - survives a thread that cannot be created (EAGAIN at the unit's task
//     limit): the job is refused with "<interface>.Error.Busy" instead of
//     sdbus-c++ 1.2 aborting the daemon on a stray std::system_error.
// Domain errors stay in the cores; only the adaptor that owns a
// BackgroundJobs knows their D-Bus names (its ErrorMap).
//
// Use it from the loop thread only (start, reply, running); the work itself
// runs elsewhere and may post progress through EventLoop::post. The
// destructor waits for running jobs, so declare it after what they use.

#include <cstddef>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <thread>
#include <tuple>
#include <type_traits>
#include <utility>
#include <variant>

#include <sdbus-c++/sdbus-c++.h>

#include "ferry/Bus.h"
#include "ferry/Error.h"

namespace ferry {

class BackgroundJobs {
public:
    // Returns the D-Bus error for a domain exception, or nullopt when the
    // adaptor has no name for it (then the defaults above apply).
    using ErrorMap = std::function<std::optional<BusError>(const std::exception&)>;

    BackgroundJobs(EventLoop& loop, std::string interface, std::size_t limit, ErrorMap map = {});
    ~BackgroundJobs();
    BackgroundJobs(const BackgroundJobs&) = delete;
    BackgroundJobs& operator=(const BackgroundJobs&) = delete;

    // Runs work() on a new thread. Then, on the loop thread, done(value) (or
    // done() for void work) — or failed(error) with the mapped D-Bus error
    // when work threw. When the job cannot start (limit reached, no thread),
    // failed(error) runs at once, before start returns. An exception from
    // done or failed is logged and ignored.
    template <typename Work, typename Done, typename Failed>
    void start(const char* member, Work work, Done done, Failed failed);

    // The common case: an async method whose reply is work()'s value (a
    // std::tuple for several out arguments), or its mapped error.
    template <typename... Results, typename Work>
    void reply(const char* member, sdbus::Result<Results...>&& result, Work work);

    // Waits for the running jobs without running their completions, and
    // refuses later ones with "<interface>.Error.Busy" (the daemon is
    // leaving). For a main that must end the jobs before what they call
    // back into goes; the destructor does the same.
    void stop();

    std::size_t running() const { return m_jobs.size(); }
    std::size_t limit() const { return m_limit; }
    EventLoop& loop() { return m_loop; }

    // The D-Bus error for the exception being handled (call inside catch).
    sdbus::Error currentError(const char* member) const;

private:
    struct Job {
        std::thread thread;
        std::function<void()> finish; // loop thread: done or failed
    };
    // onWorker runs on the new thread; finish runs after it on the loop thread.
    void launch(const char* member, std::function<void()> onWorker, std::function<void()> finish,
                const std::function<void(const sdbus::Error&)>& refused);
    void finished(std::uint64_t id);

    EventLoop& m_loop;
    std::string m_interface;
    std::size_t m_limit;
    ErrorMap m_map;
    std::uint64_t m_nextId = 0;
    bool m_stopped = false;
    std::map<std::uint64_t, Job> m_jobs; // loop thread only
    // Posted completions check it, so that none runs after the destructor.
    std::shared_ptr<int> m_alive = std::make_shared<int>(0);
};

template <typename Work, typename Done, typename Failed>
void BackgroundJobs::start(const char* member, Work work, Done done, Failed failed)
{
    using T = std::invoke_result_t<Work&>;
    using Value = std::conditional_t<std::is_void_v<T>, std::monostate, T>;
    // What the worker leaves for the loop thread: a value or an error. The
    // worker drops its share before it posts, so the value (and done, which
    // may hold an sdbus::Result) is destroyed on the loop thread.
    struct Slot {
        std::optional<Value> value;
        std::optional<sdbus::Error> error;
    };
    auto slot = std::make_shared<Slot>();
    auto onFailed = std::make_shared<Failed>(std::move(failed));
    launch(
        member,
        [this, member, slot, work = std::move(work)]() mutable {
            try {
                if constexpr (std::is_void_v<T>) {
                    work();
                    slot->value.emplace();
                } else {
                    slot->value.emplace(work());
                }
            } catch (...) {
                slot->error.emplace(currentError(member));
            }
        },
        [slot, onFailed, done = std::move(done)]() mutable {
            if (slot->error) {
                (*onFailed)(*slot->error);
            } else if constexpr (std::is_void_v<T>) {
                done();
            } else {
                done(std::move(*slot->value));
            }
        },
        [onFailed](const sdbus::Error& e) { (*onFailed)(e); });
}

template <typename... Results, typename Work>
void BackgroundJobs::reply(const char* member, sdbus::Result<Results...>&& result, Work work)
{
    // sdbus::Result is move-only; std::function wants copies.
    auto shared = std::make_shared<sdbus::Result<Results...>>(std::move(result));
    start(
        member, std::move(work),
        [shared](auto&&... value) {
            if constexpr (sizeof...(Results) <= 1)
                shared->returnResults(std::forward<decltype(value)>(value)...);
            else
                (std::apply([&](auto&&... v) { shared->returnResults(std::forward<decltype(v)>(v)...); },
                            std::forward<decltype(value)>(value)),
                 ...);
        },
        [shared](const sdbus::Error& e) { shared->returnError(e); });
}

} // namespace ferry
