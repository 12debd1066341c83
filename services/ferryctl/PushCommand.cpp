// ferryctl push: run a push cycle through org.ferry.Push1.
//   ferryctl push              one cycle now, whatever the mode
//   ferryctl push --scheduled  what ferry-push.timer runs (skips when push is off)
//   ferryctl push --evaluate   what ferry-push-fallback.timer runs

#include <iostream>

#include <nlohmann/json.hpp>

#include "Commands.h"
#include "PushProxy.h"

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
        const std::string summary = what == "scheduled" ? push.RunScheduled() : push.PushNow();
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
