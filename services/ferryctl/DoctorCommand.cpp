// ferryctl doctor: can the master reach this node's sshd? Asks
// org.ferry.FwCheck1 for a fresh check (or, with --cached, the last one)
// and prints the findings grouped by severity with the commands that fix
// them; --json prints the same as one JSON object.
// Exit status: 0 reachable, 1 blocked or undecided (or the call failed), 2 usage.

#include <iostream>
#include <map>

#include <nlohmann/json.hpp>
#include <sdbus-c++/sdbus-c++.h>

#include "Commands.h"
#include "ferry/Bus.h"
#include "org.ferry.FwCheck1-proxy.h"

namespace ferryctl {

namespace {

class FwCheckProxy final : public sdbus::ProxyInterfaces<org::ferry::FwCheck1_proxy> {
public:
    explicit FwCheckProxy(sdbus::IConnection& bus) : ProxyInterfaces(bus, "org.ferry.FwCheck1", "/org/ferry/FwCheck1")
    {
        registerProxy();
    }
    ~FwCheckProxy() { unregisterProxy(); }

private:
    void onVerdictChanged(const std::string&, const std::string&) override {}
};

struct Shown {
    std::string verdict;
    uint64_t lastCheckUsec = 0;
    std::vector<sdbus::Struct<std::string, std::string, std::string, std::string>> findings;
    std::vector<sdbus::Struct<std::string, std::string, std::string, std::string, std::string>> masters;
};

void printIndented(const std::string& text, const std::string& indent)
{
    std::size_t start = 0;
    while (start <= text.size()) {
        auto end = text.find('\n', start);
        if (end == std::string::npos)
            end = text.size();
        std::cout << indent << text.substr(start, end - start) << "\n";
        start = end + 1;
    }
}

void printHuman(const Shown& s)
{
    const std::string verdict = s.lastCheckUsec == 0 ? "not checked yet" : s.verdict;
    std::cout << "Can the master reach this node's sshd? " << verdict << "\n";
    std::cout << "Checked: " << ferry::formatTime(static_cast<std::int64_t>(s.lastCheckUsec / 1000)) << "\n";
    if (!s.masters.empty()) {
        std::cout << "\nMasters:\n";
        for (const auto& m : s.masters) {
            const std::string host = m.get<0>(), addr = m.get<1>();
            std::cout << "  " << addr << (host != addr ? " (" + host + ")" : "") << ": " << m.get<2>()
                      << " (firewall: " << m.get<3>() << ")\n";
            if (!m.get<4>().empty())
                std::cout << "      decided by " << m.get<4>() << "\n";
        }
    }
    const std::pair<const char*, const char*> groups[] = {{"error", "Blocking"},
                                                          {"undecided", "Undecided"},
                                                          {"warning", "Warnings"},
                                                          {"info", "Notes"}};
    for (const auto& [severity, title] : groups) {
        bool header = false;
        for (const auto& f : s.findings) {
            if (f.get<1>() != severity)
                continue;
            if (!header)
                std::cout << "\n" << title << ":\n";
            header = true;
            std::cout << "  [" << f.get<0>() << "] ";
            printIndented(f.get<2>(), "");
            if (!f.get<3>().empty()) {
                std::cout << "    fix:\n";
                printIndented(f.get<3>(), "      ");
            }
        }
    }
    if (s.findings.empty() && s.lastCheckUsec != 0)
        std::cout << "\nNothing found in the way.\n";
}

nlohmann::json toJson(const Shown& s)
{
    nlohmann::json j;
    j["verdict"] = s.verdict;
    j["last_check_usec"] = s.lastCheckUsec;
    j["findings"] = nlohmann::json::array();
    for (const auto& f : s.findings)
        j["findings"].push_back({{"id", f.get<0>()}, {"severity", f.get<1>()}, {"message", f.get<2>()}, {"fix", f.get<3>()}});
    j["masters"] = nlohmann::json::array();
    for (const auto& m : s.masters)
        j["masters"].push_back({{"host", m.get<0>()},
                                {"address", m.get<1>()},
                                {"verdict", m.get<2>()},
                                {"firewall", m.get<3>()},
                                {"decided_by", m.get<4>()}});
    return j;
}

} // namespace

int doctorCommand(const Options& options)
{
    bool cached = false;
    for (const auto& a : options.args) {
        if (a == "--cached")
            cached = true;
        else {
            std::cerr << "ferryctl doctor: unknown argument '" << a << "' (usage: ferryctl [--json] doctor [--cached])\n";
            return 2;
        }
    }
    try {
        auto bus = sdbus::createSystemBusConnection();
        bus->setMethodCallTimeout(std::chrono::seconds(120));
        FwCheckProxy proxy(*bus);
        Shown s;
        if (!cached)
            s.findings = proxy.Check();
        s.verdict = proxy.Verdict();
        s.lastCheckUsec = proxy.LastCheck();
        if (cached)
            s.findings = proxy.Findings();
        s.masters = proxy.Masters();
        if (options.json)
            std::cout << toJson(s).dump(2) << "\n";
        else
            printHuman(s);
        return s.verdict == "reachable" ? 0 : 1;
    } catch (const sdbus::Error& e) {
        if (options.json)
            std::cout << nlohmann::json{{"error", e.getName()}, {"message", e.getMessage()}}.dump() << "\n";
        std::cerr << "ferryctl doctor: " << e.getMessage() << "\n";
        return 1;
    }
}

} // namespace ferryctl
