#include "ferry/SessionStore.h"

#include <algorithm>

#include <spdlog/spdlog.h>

#include "ferry/PullProtocol.h"

namespace ferry {

EpochDecision decideEpoch(const std::string& node, const Epoch& epoch, const std::string& address,
                          const std::vector<EpochInfo>& known)
{
    EpochDecision d;
    EpochAdmission& out = d.admission;
    const std::string hex = epoch.hex();
    const std::string who = escapeForLog(node);
    std::optional<EpochInfo> mine;
    std::vector<EpochInfo> others;
    for (const auto& e : known) {
        if (e.epoch == hex)
            mine = e;
        else
            others.push_back(e);
    }
    auto setState = [&](const std::string& which, const char* state) { d.setStates.emplace_back(which, state); };
    auto othersLine = [&] {
        std::string line;
        for (const auto& o : others)
            line += (line.empty() ? "" : ", ") + o.epoch.substr(0, 8) + " from " + escapeForLog(o.fromAddress) +
                    " (" + o.state + ")";
        return line;
    };
    if (!mine) {
        out.newEpoch = true;
        const bool suspectNode = std::any_of(others.begin(), others.end(), [](const EpochInfo& o) {
            return o.state == "suspect";
        });
        d.insertState = suspectNode ? "suspect" : "active";
        if (suspectNode) {
            out.held = true;
            out.reason = "node " + node + " is suspect (several spools use its identity); an operator must run "
                         "`ferryctl master resolve " + node + " --keep EPOCH`";
            spdlog::warn("Node {} (suspect) brought yet another epoch {} from {}; holding its data", who,
                         epoch.shortHex(), escapeForLog(address));
        } else {
            for (const auto& o : others) {
                if (o.state == "active") {
                    setState(o.epoch, "retired");
                    out.previous = o.epoch;
                }
            }
            if (others.empty())
                spdlog::info("Node {}: first session of epoch {} from {}", who, epoch.shortHex(), escapeForLog(address));
            else
                spdlog::info("Node {} started a new spool (epoch {} from {}, replacing {}): a reinstall or a new "
                             "spool; its records are stored from sequence 1",
                             who, epoch.shortHex(), escapeForLog(address),
                             out.previous.empty() ? std::string("none") : out.previous.substr(0, 8));
        }
    } else if (mine->state == "retired" && mine->decidedMs == 0) {
        // An epoch that a newer one replaced is alive again: two spools
        // speak for one node (a clone, a restored image, one secret on two
        // machines). Which one is right only the operator can say, so every
        // live epoch is held; their data stays on the nodes meanwhile.
        setState(hex, "suspect");
        for (const auto& o : others)
            if (o.state == "active")
                setState(o.epoch, "suspect");
        out.held = true;
        out.reason = "node " + node + " is suspect: its retired epoch " + epoch.shortHex() +
                     " came back while another is alive; an operator must run `ferryctl master resolve " + node +
                     " --keep EPOCH`";
        spdlog::warn("Node {} is suspect: retired epoch {} is alive again from {} while others are ({}); holding "
                     "its data until `ferryctl master resolve {} --keep EPOCH`",
                     who, epoch.shortHex(), escapeForLog(address), othersLine(), who);
    } else if (mine->state == "suspect") {
        out.held = true;
        out.reason = "node " + node + " is suspect (several spools use its identity); an operator must run "
                     "`ferryctl master resolve " + node + " --keep EPOCH`";
    } else if (mine->state == "retired") {
        out.held = true;
        out.reason = "epoch " + epoch.shortHex() + " of node " + node +
                     " was retired by an operator; its data stays on the node";
    }
    // The master's counters of what it decided (metricsd exports them).
    if (out.newEpoch) {
        const char* kind = d.insertState == std::optional<std::string>("suspect") ? "suspect_node"
                           : others.empty()                                       ? "first"
                                                                                  : "reinstall";
        d.counters.push_back({"epochs_new", counterLabels({{"kind", kind}}), 1});
    }
    const auto madeSuspect =
        std::count_if(d.setStates.begin(), d.setStates.end(), [](const auto& s) { return s.second == "suspect"; }) +
        (d.insertState == std::optional<std::string>("suspect") ? 1 : 0);
    if (madeSuspect > 0)
        d.counters.push_back({"epochs_suspect", "", static_cast<std::int64_t>(madeSuspect)});
    return d;
}

std::vector<CounterDelta> batchCounters(const AckMessage& ack, const std::string& via)
{
    std::vector<CounterDelta> out;
    if (ack.newlyStored > 0)
        out.push_back({"records_stored", counterLabels({{"via", via}}), ack.newlyStored});
    if (ack.duplicates > 0)
        out.push_back({"duplicates_refused", counterLabels({{"via", via}}), ack.duplicates});
    return out;
}

std::string counterLabels(std::vector<std::pair<std::string, std::string>> labels)
{
    std::sort(labels.begin(), labels.end());
    std::string out;
    for (const auto& [name, value] : labels) {
        if (!out.empty())
            out += ',';
        out += name + "=\"";
        for (const char c : value) {
            if (c == '\\' || c == '"')
                out += '\\';
            if (c == '\n')
                out += "\\n";
            else
                out += c;
        }
        out += '"';
    }
    return out;
}

} // namespace ferry
