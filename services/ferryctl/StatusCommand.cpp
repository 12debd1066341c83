// ferryctl status: the node's transport state from org.ferry.Push1.

#include <iostream>

#include <nlohmann/json.hpp>

#include "TerminalText.h"
#include "Commands.h"
#include "PushProxy.h"
#include "ferry/Bus.h"
#include "KeyRegProxy.h"

namespace ferryctl {

namespace {

// Registration is keyregd's; a node without it (or with it stopped and not
// activatable) still shows its push state.
nlohmann::json registration(sdbus::IConnection& bus)
{
    try {
        KeyRegProxy p(bus);
        return {{"state", p.State()},
                {"reason", p.Reason()},
                {"master_host_key_fingerprint", p.MasterHostKeyFingerprint()},
                {"last_error", p.LastError()}};
    } catch (const sdbus::Error& e) {
        return {{"state", "unknown"}, {"reason", e.getMessage()}};
    }
}

} // namespace

std::unique_ptr<sdbus::IConnection> connectBus()
{
    auto bus = sdbus::createSystemBusConnection();
    bus->setMethodCallTimeout(PushProxy::kCycleTimeout);
    return bus;
}

std::string formatUsec(uint64_t usec)
{
    return ferry::formatTime(static_cast<std::int64_t>(usec / 1000));
}

int statusCommand(const Options& options)
{
    if (!options.args.empty()) {
        std::cerr << "ferryctl status: takes no arguments\n";
        return 2;
    }
    auto bus = connectBus();
    PushProxy push(*bus);
    nlohmann::json j;
    try {
        j["mode"] = push.Mode();
        j["active"] = push.Active();
        j["reason"] = push.Reason();
        j["registered"] = push.Registered();
        j["masters"] = push.Masters();
        j["period_sec"] = push.Period();
        j["last_push_usec"] = push.LastPush();
        j["last_success_usec"] = push.LastSuccess();
        j["last_result"] = push.LastResult();
        j["master"] = push.Master();
        j["queued_records"] = push.QueuedRecords();
        j["queued_bytes"] = push.QueuedBytes();
        j["dropped_records"] = push.DroppedRecords();
        j["last_pull_usec"] = push.LastPull();
        j["spool_epoch"] = push.SpoolEpoch();
        j["spool_resets"] = push.SpoolResets();
        j["not_before_usec"] = push.NotBefore();
        j["not_before_reason"] = push.NotBeforeReason();
        j["spool_last_reset"] = push.SpoolLastReset();
        j["spool_older_epoch_records"] = push.SpoolOlderEpochRecords();
    } catch (const sdbus::Error& e) {
        std::cerr << "ferryctl status: cannot reach org.ferry.Push1: " << e.getMessage() << " (" << e.getName() << ")\n";
        return 1;
    }
    j["registration"] = registration(*bus);
    if (options.json) {
        std::cout << j.dump(2) << "\n";
        return 0;
    }
    const bool ok = j["last_result"].get<std::string>().rfind("success", 0) == 0;
    std::cout << (ok ? "● " : "× ") << "Ferry node transport\n";
    std::cout << "        Mode: " << j["mode"].get<std::string>() << "\n";
    std::cout << "        Push: " << (j["active"].get<bool>() ? "on" : "off") << " (" << j["reason"].get<std::string>()
              << ")\n";
    std::cout << "  Registered: "
              << (j["registered"].get<bool>() ? "yes (master host key pinned)" : "no (no pinned master host key: run ferryctl register)")
              << "\n";
    const auto& reg = j["registration"];
    const std::string reason = reg["reason"].get<std::string>();
    std::cout << "Registration: " << reg["state"].get<std::string>()
              << (reason.empty() ? "" : " (" + terminalSafe(reason) + ")")
              << "\n";
    if (reg.contains("master_host_key_fingerprint") && !reg["master_host_key_fingerprint"].get<std::string>().empty())
        std::cout << " Master key: " << reg["master_host_key_fingerprint"].get<std::string>() << "\n";
    std::string masters;
    for (const auto& m : j["masters"])
        masters += (masters.empty() ? "" : ", ") + m.get<std::string>();
    std::cout << "     Masters: " << (masters.empty() ? "none configured" : masters) << "\n";
    std::cout << "      Period: " << j["period_sec"].get<uint64_t>() << " s\n";
    std::cout << "   Last push: " << formatUsec(j["last_push_usec"]) << "\n";
    if (j["not_before_usec"].get<uint64_t>() > 0)
        std::cout << "   Next push: not before " << formatUsec(j["not_before_usec"]) << " ("
                  << terminalSafe(j["not_before_reason"].get<std::string>()) << ")\n";
    if (!j["last_result"].get<std::string>().empty())
        std::cout << "      Result: " << j["last_result"].get<std::string>() << "\n";
    std::cout << "Last success: " << formatUsec(j["last_success_usec"]) << "\n";
    std::cout << "   Last pull: " << formatUsec(j["last_pull_usec"]) << "\n";
    std::cout << "      Queued: " << j["queued_records"].get<uint64_t>() << " records, "
              << j["queued_bytes"].get<uint64_t>() << " bytes";
    if (j["dropped_records"].get<uint64_t>() > 0)
        std::cout << " (" << j["dropped_records"].get<uint64_t>() << " dropped at the spool bound)";
    std::cout << "\n";
    // The first 8 hex digits name the spool for people; `ferryctl master
    // nodes` on the master shows the same prefix.
    const std::string epoch = j["spool_epoch"].get<std::string>();
    std::cout << "       Spool: epoch " << epoch.substr(0, 8)
              << (epoch.find_first_not_of('0') == std::string::npos ? " (legacy, from before epochs)" : "");
    if (j["spool_resets"].get<uint64_t>() > 0)
        std::cout << ", " << j["spool_resets"].get<uint64_t>() << " unusable spool(s) moved aside";
    if (j["spool_older_epoch_records"].get<uint64_t>() > 0)
        std::cout << ", " << j["spool_older_epoch_records"].get<uint64_t>()
                  << " queued record(s) of an older epoch (sent first)";
    std::cout << "\n";
    // A copy (or a reset) is said where the operator looks: the spool's own
    // words, made terminal-safe.
    const std::string lastReset = j["spool_last_reset"].get<std::string>();
    if (lastReset.rfind("spool copied", 0) == 0)
        std::cout << "  Spool copy: " << terminalSafe(lastReset) << "\n";
    return 0;
}

} // namespace ferryctl
