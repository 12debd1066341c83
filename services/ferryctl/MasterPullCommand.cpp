// ferryctl master pull NODE | --all: pull now through org.ferry.Pull1
// (ferry-pulld, bus-activated; root only, by its bus policy).
//   NODE    one node, whatever its last pull; prints pulld's summary
//   --all   every pullable node, `concurrency` at a time; on a terminal a
//           line per node as each ends and a progress line (nodes done,
//           failed, time left), then the totals
// Exit status: 0 when every pull succeeded, 1 otherwise.

#include <chrono>
#include <iostream>

#include <nlohmann/json.hpp>

#include "Commands.h"
#include "ProgressLine.h"
#include "PullProxy.h"
#include "PushProxy.h" // connectBus()
#include "SignalThread.h"
#include "TerminalText.h"

namespace ferryctl {

namespace {

constexpr std::chrono::seconds kRoundTimeout{30 * 60};

int pullOne(const Options& options, PullProxy& pull, const std::string& node)
{
    const auto [records, summary] = pull.PullNow(node);
    if (options.json)
        std::cout
            << nlohmann::json{{"node", node}, {"success", true}, {"records", records}, {"summary", summary}}.dump()
            << "\n";
    else
        std::cout << terminalSafe(summary) << "\n";
    return 0;
}

int pullAll(const Options& options, sdbus::IConnection& bus, PullProxy& pull)
{
    ProgressLine progress(!options.json);
    const auto started = std::chrono::steady_clock::now();
    unsigned failedSoFar = 0; // touched by the event-loop thread only
    if (progress.active()) {
        pull.nodePulled = [&progress, &failedSoFar, started](const std::string& node, bool success,
                                                             std::uint64_t records, const std::string& summary,
                                                             std::uint32_t done, std::uint32_t total) {
            if (!success)
                ++failedSoFar;
            const std::string width = std::to_string(total);
            std::string count = std::to_string(done);
            count.insert(0, width.size() > count.size() ? width.size() - count.size() : 0, ' ');
            progress.note("[" + count + "/" + width + "] " + terminalSafe(node) + ": " +
                          (success ? "pulled " + formatCount(records) + " new records" : terminalSafe(summary)));
            const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count();
            std::string line = "Pulling: " + std::to_string(done) + " of " + std::to_string(total) + " nodes done, " +
                               std::to_string(failedSoFar) + " failed";
            if (done < total && done > 0)
                line += ", " + timeLeftText(seconds / done * (total - done));
            progress.update(line);
        };
    }
    // Always through the loop thread: a round over many nodes may outlast
    // the connection's method timeout, and the async call takes its own.
    const SignalThread signals(bus, true);
    const auto [pulled, failed] = pull.pullAllInOrder(kRoundTimeout);
    progress.clear();
    const auto ms =
        std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now() - started).count();
    if (options.json)
        std::cout << nlohmann::json{{"pulled", pulled}, {"failed", failed}, {"ms", ms}}.dump() << "\n";
    else
        std::cout << "Pull of every node: " << pulled << " pulled, " << failed << " failed, in " << ms << " ms\n";
    return failed == 0 ? 0 : 1;
}

} // namespace

int masterPullCommand(const Options& options)
{
    // options.args: "pull" and then NODE or --all.
    if (options.args.size() != 2) {
        std::cerr << "usage: ferryctl master pull NODE | --all\n";
        return 2;
    }
    auto bus = connectBus();
    PullProxy pull(*bus);
    try {
        return options.args[1] == "--all" ? pullAll(options, *bus, pull) : pullOne(options, pull, options.args[1]);
    } catch (const sdbus::Error& e) {
        if (options.json)
            std::cout << nlohmann::json{{"success", false}, {"error", e.getName()}, {"summary", e.getMessage()}}.dump()
                      << "\n";
        std::cerr << "ferryctl master pull: " << terminalSafe(e.getMessage()) << "\n";
        return 1;
    }
}

} // namespace ferryctl
