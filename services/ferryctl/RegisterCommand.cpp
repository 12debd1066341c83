// ferryctl register [--new-key]: ask keyregd (org.ferry.KeyReg1) to register
// with every configured master now (with a freshly made key pair when asked),
// and show the outcome.
// ferryctl register --renew-certificate: what ferry-cert-renew.timer runs:
// renew the node's SSH certificate when it is due (RenewCertificate); exits 1
// with keyregd's error, naming the node, when it is due and was not renewed.

#include <iostream>

#include <nlohmann/json.hpp>
#include <sdbus-c++/sdbus-c++.h>

#include "Commands.h"
#include "PushProxy.h"
#include "ferry/Bus.h"
#include "KeyRegProxy.h"
#include "TerminalText.h"

namespace ferryctl {

namespace {

int renewCertificate(const Options& options)
{
    auto bus = connectBus();
    KeyRegProxy keyreg(*bus);
    try {
        const auto [renewed, summary] = keyreg.RenewCertificate();
        if (options.json)
            std::cout << nlohmann::json{{"renewed", renewed}, {"summary", summary}}.dump(2) << "\n";
        else
            std::cout << terminalSafe(summary) << "\n";
        return 0;
    } catch (const sdbus::Error& e) {
        if (e.getName() == "org.ferry.KeyReg1.Error.Certificate") {
            std::cerr << "ferryctl register: " << terminalSafe(e.getMessage()) << "\n";
            return 1;
        }
        std::cerr << "ferryctl register: cannot reach org.ferry.KeyReg1: " << e.getMessage() << " (" << e.getName()
                  << ")\n";
        return 1;
    }
}

} // namespace

int registerCommand(const Options& options)
{
    if (options.args.size() == 1 && options.args[0] == "--renew-certificate")
        return renewCertificate(options);
    const bool rotate = options.args.size() == 1 && options.args[0] == "--new-key";
    if (!options.args.empty() && !rotate) {
        std::cerr << "usage: ferryctl register [--new-key | --renew-certificate]\n";
        return 2;
    }
    auto bus = connectBus();
    KeyRegProxy keyreg(*bus);
    nlohmann::json j;
    try {
        const auto [state, reason] = rotate ? keyreg.RotateKey() : keyreg.Register();
        j["state"] = state;
        j["reason"] = reason;
        j["fingerprint"] = keyreg.Fingerprint();
        j["master_host_key_fingerprint"] = keyreg.MasterHostKeyFingerprint();
        j["last_attempt_ms"] = keyreg.LastAttempt();
        j["last_error"] = keyreg.LastError();
    } catch (const sdbus::Error& e) {
        std::cerr << "ferryctl register: cannot reach org.ferry.KeyReg1: " << e.getMessage() << " (" << e.getName()
                  << ")\n";
        return 1;
    }
    const std::string state = j["state"];
    if (options.json) {
        std::cout << j.dump(2) << "\n";
    } else {
        std::cout << "Registration: " << state;
        if (!j["reason"].get<std::string>().empty())
            std::cout << " (" << terminalSafe(j["reason"].get<std::string>()) << ")";
        std::cout << "\n      Node key: " << j["fingerprint"].get<std::string>() << "\n";
        if (!j["master_host_key_fingerprint"].get<std::string>().empty())
            std::cout << "   Master keys: " << j["master_host_key_fingerprint"].get<std::string>() << " (pinned)\n";
        if (!j["last_error"].get<std::string>().empty())
            std::cout << "    Last error: " << terminalSafe(j["last_error"].get<std::string>()) << "\n";
    }
    return state == "accepted" ? 0 : 1;
}

} // namespace ferryctl
