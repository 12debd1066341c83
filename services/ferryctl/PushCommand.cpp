// ferryctl push: run a push cycle through org.ferry.Push1.
//   ferryctl push              one cycle now, whatever the mode
//   ferryctl push --scheduled  a scheduled cycle: skips when push is off
//   ferryctl push --evaluate   re-evaluate the pull-absence fallback
// (The timers run ferry-pushd --cycle and --evaluate themselves.) On a
// terminal, a cycle's progress shows while the master acknowledges batches.

#include <chrono>
#include <iostream>

#include <nlohmann/json.hpp>

#include "Commands.h"
#include "ProgressLine.h"
#include "PushProxy.h"
#include "SignalThread.h"

namespace ferryctl {

int pushCommand(const Options& options)
{
    std::string what = "now";
    for (const auto& a : options.args) {
        if (a == "--scheduled")
            what = "scheduled";
        else if (a == "--evaluate")
            what = "evaluate";
        else {
            std::cerr << "ferryctl push: unknown argument '" << a << "' (usage: ferryctl push [--scheduled|--evaluate])\n";
            return 2;
        }
    }
    auto bus = connectBus();
    PushProxy push(*bus);
    try {
        if (what == "evaluate") {
            const auto [active, reason] = push.Evaluate();
            if (options.json)
                std::cout << nlohmann::json{{"active", active}, {"reason", reason}}.dump() << "\n";
            else
                std::cout << "Push " << (active ? "on" : "off") << ": " << reason << "\n";
            return 0;
        }
        ProgressLine progress(!options.json);
        if (progress.active()) {
            std::chrono::steady_clock::time_point started;
            push.onProgress = [&progress, started](std::uint64_t recordsDone, std::uint64_t recordsTotal,
                                                   std::uint64_t bytesDone, std::uint64_t bytesTotal) mutable {
                // The first signal comes before the first batch: the rate
                // counts from there, not from the SSH handshake.
                const auto now = std::chrono::steady_clock::now();
                if (started == std::chrono::steady_clock::time_point{})
                    started = now;
                progress.update("Pushing: " +
                                transferText(recordsDone, recordsTotal, bytesDone, bytesTotal,
                                             std::chrono::duration_cast<std::chrono::milliseconds>(now - started)));
            };
        }
        const SignalThread signals(*bus, progress.active());
        const std::string method = what == "scheduled" ? "RunScheduled" : "PushNow";
        const std::string summary = progress.active()     ? push.callInOrder(method)
                                    : what == "scheduled" ? push.RunScheduled()
                                                          : push.PushNow();
        progress.clear();
        if (options.json)
            std::cout << nlohmann::json{{"success", true}, {"summary", summary}}.dump() << "\n";
        else
            std::cout << summary << "\n";
        return 0;
    } catch (const sdbus::Error& e) {
        if (options.json)
            std::cout << nlohmann::json{{"success", false}, {"error", e.getName()}, {"summary", e.getMessage()}}.dump()
                      << "\n";
        std::cerr << "ferryctl push: " << e.getMessage() << "\n";
        return 1;
    }
}

} // namespace ferryctl
