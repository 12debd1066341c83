// ferryctl master show NODE: one node as the master sees it, read from the
// master's store (master.db or PostgreSQL) like `ferryctl master nodes`: registration, the transport in use,
// last pull and last push, the lag, why the last pull failed (pulld's
// pull_failure table), and the node's own diagnosis when a push carried one
// (node_reports: the health report of its last session, its own fwcheck
// verdict and fixes included; node-supplied text is escaped).

#include <algorithm>
#include <cstdio>
#include <iostream>
#include <optional>

#include <nlohmann/json.hpp>

#include "Commands.h"
#include "ferry/Bus.h"
#include "ferry/MasterQueries.h"
#include "ferry/NodeConfig.h"
#include "ferry/PullProtocol.h"
#include "ferry/RegistryStore.h"
#include "ferry/SqlConnection.h"

namespace ferryctl {

namespace {

std::string ago(std::int64_t nowMs, std::int64_t whenMs)
{
    if (whenMs <= 0)
        return "never";
    const std::int64_t s = std::max<std::int64_t>(0, (nowMs - whenMs) / 1000);
    return ferry::formatTime(whenMs) + " (" + std::to_string(s) + " s ago)";
}

} // namespace

int masterShowCommand(const Options& options, const std::string& name)
{
    const auto paths = ferry::pathsFromEnvironment();
    std::string where;
    ferry::RegistryStore store(openMasterTables(paths, &where));
    ferry::MasterQueries master(store.connection());
    const std::optional<ferry::RegistryNode> reg = store.node(name);
    const ferry::NodeInfo traffic = master.node(name).value_or(ferry::NodeInfo{});
    if (!reg) {
        std::cerr << "ferryctl master show: no node named '" << name << "' in " << where << "\n";
        return 1;
    }
    const auto pull = master.pullRecord(name);
    const auto failure = master.pullFailure(name);
    // The node's latest health report: what it said of itself at its last
    // session, its own fwcheck diagnosis included.
    const auto report = master.storedReport(name);
    const std::int64_t now = ferry::nowMs();

    const bool pullFailing = pull && pull->lastResult.rfind("failed", 0) == 0;
    // pulld stores a failed attempt and its cause in one transaction; a
    // failing attempt without its own cause row (a pulld from before that)
    // says so instead of showing an older attempt's cause as current.
    const bool causeOfLastAttempt = pullFailing && failure && failure->atMs == pull->lastAttemptMs;
    // The transport in use is the one that delivered last; a node that
    // delivers by push while its pulls fail is in fallback.
    std::string transport = "none yet";
    if (traffic.lastPushMs > 0 || traffic.lastPullMs > 0)
        transport = traffic.lastPushMs > traffic.lastPullMs ? "push" : "pull";
    if (transport == "push" && pullFailing && reg->mode == "auto")
        transport = "push (fallback: pulls fail)";
    const std::int64_t lastDelivery = std::max(traffic.lastPushMs, traffic.lastPullMs);
    const std::int64_t lagS = lastDelivery > 0 ? std::max<std::int64_t>(0, (now - lastDelivery) / 1000) : -1;

    if (options.json) {
        nlohmann::json j{{"name", name},
                         {"state", reg->state},
                         {"mode", reg->mode},
                         {"ssh_host", reg->sshHost},
                         {"ssh_port", traffic.sshPort},
                         {"transport", transport},
                         {"last_push_ms", traffic.lastPushMs},
                         {"last_pull_ms", traffic.lastPullMs},
                         {"lag_s", lagS},
                         {"records_stored", traffic.recordsStored},
                         {"last_seq", traffic.lastSeq}};
        if (pull)
            j["pull"] = {{"last_attempt_ms", pull->lastAttemptMs},
                         {"last_success_ms", pull->lastSuccessMs},
                         {"last_result", pull->lastResult},
                         {"records_by_pull", pull->totalRecords}};
        if (failure && (causeOfLastAttempt || !pullFailing))
            j["pull_failure"] = {{"at_ms", failure->atMs},
                                 {"cause", failure->cause},
                                 {"message", failure->message},
                                 {"current", pullFailing}};
        else if (pullFailing)
            j["pull_failure"] = {{"at_ms", pull->lastAttemptMs},
                                 {"cause", "not recorded"},
                                 {"message", pull->lastResult},
                                 {"current", true}};
        if (report)
            j["report"] = {{"received_ms", report->receivedMs},
                           {"via", report->via},
                           {"spool_records", report->report.spoolRecords},
                           {"spool_bytes", report->report.spoolBytes},
                           {"oldest_unsent_ms", report->report.oldestUnsentMs},
                           {"dropped_by_age", report->report.droppedByAge},
                           {"dropped_by_size", report->report.droppedBySize},
                           {"transport_mode", report->report.transportMode},
                           {"transport_reason", report->report.transportReason},
                           {"spool_resets", report->report.spoolResets},
                           {"last_reset", report->report.lastReset},
                           {"diagnosis", report->report.fwcheckVerdict}};
        std::cout << j.dump(2) << "\n";
        return 0;
    }
    std::string ssh = "-";
    if (!reg->sshHost.empty())
        ssh = (reg->sshHost.find(':') != std::string::npos ? "[" + reg->sshHost + "]" : reg->sshHost) + ":" +
              std::to_string(traffic.sshPort);
    std::printf("Node:         %s (%s, mode %s)\n", name.c_str(), reg->state.c_str(), reg->mode.c_str());
    std::printf("SSH:          %s\n", ssh.c_str());
    std::printf("Transport:    %s\n", transport.c_str());
    std::printf("Last push:    %s\n", ago(now, traffic.lastPushMs).c_str());
    std::printf("Last pull:    %s\n", ago(now, traffic.lastPullMs).c_str());
    std::printf("Lag:          %s\n", lagS < 0 ? "no delivery yet" : (std::to_string(lagS) + " s since the last delivery").c_str());
    std::printf("Records:      %llu stored, last sequence %llu\n",
                static_cast<unsigned long long>(traffic.recordsStored), static_cast<unsigned long long>(traffic.lastSeq));
    if (!pull)
        std::printf("Pull:         never attempted\n");
    else
        std::printf("Pull:         last attempt %s: %s\n", ago(now, pull->lastAttemptMs).c_str(),
                    pull->lastResult.c_str());
    if (causeOfLastAttempt)
        std::printf("Pull failure: %s (since the attempt at %s)\n", failure->cause.c_str(),
                    ferry::formatTime(failure->atMs).c_str());
    else if (pullFailing)
        std::printf("Pull failure: not recorded for the attempt at %s (its result is above)\n",
                    ferry::formatTime(pull->lastAttemptMs).c_str());
    else if (failure)
        std::printf("Pull failure: none now (the last one, %s: %s)\n", ferry::formatTime(failure->atMs).c_str(),
                    failure->cause.c_str());
    else
        std::printf("Pull failure: none recorded\n");
    // Everything below comes from the node: escaped before it reaches a terminal.
    if (!report) {
        std::printf("Node report:  none yet (it travels with every push and pull)\n");
        std::printf("Diagnosis:    none from the node yet\n");
    } else {
        const auto& r = report->report;
        std::printf("Node report:  by %s at %s: spool %llu records (%llu bytes)%s, dropped %llu by age and %llu by "
                    "size\n",
                    ferry::escapeForLog(report->via).c_str(), ago(now, report->receivedMs).c_str(),
                    static_cast<unsigned long long>(r.spoolRecords), static_cast<unsigned long long>(r.spoolBytes),
                    r.oldestUnsentMs > 0 ? (", oldest unsent " + ferry::formatTime(r.oldestUnsentMs)).c_str() : "",
                    static_cast<unsigned long long>(r.droppedByAge), static_cast<unsigned long long>(r.droppedBySize));
        std::printf("Node's mode:  %s (%s)\n", ferry::escapeForLog(r.transportMode).c_str(),
                    ferry::escapeForLog(r.transportReason, 400).c_str());
        if (r.spoolResets > 0)
            std::printf("Spool resets: %llu (last: %s)\n", static_cast<unsigned long long>(r.spoolResets),
                        ferry::escapeForLog(r.lastReset, 400).c_str());
        std::printf("Diagnosis:    %s\n", r.fwcheckVerdict.empty()
                                               ? "none from the node yet (fwcheckd has not checked)"
                                               : ferry::escapeForLog(r.fwcheckVerdict, 2000).c_str());
    }
    return 0;
}

} // namespace ferryctl
