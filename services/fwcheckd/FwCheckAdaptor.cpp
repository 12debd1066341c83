#include "FwCheckAdaptor.h"

#include <spdlog/spdlog.h>

namespace fwcheck {

namespace {
constexpr const char* kPath = "/org/ferry/FwCheck1";
const std::string kInterface = org::ferry::FwCheck1_adaptor::INTERFACE_NAME;

std::vector<FwCheckAdaptor::FindingStruct> toStructs(const std::vector<Finding>& fs)
{
    std::vector<FwCheckAdaptor::FindingStruct> out;
    for (const auto& f : fs)
        out.emplace_back(f.id, f.severity, f.message, f.fix);
    return out;
}
} // namespace

FwCheckAdaptor::FwCheckAdaptor(sdbus::IConnection& bus, ferry::EventLoop& loop, Manager& manager)
    : AdaptorInterfaces(bus, kPath), m_loop(loop), m_manager(manager), m_jobs(loop, kInterface, 1)
{
    registerAdaptor();
}

FwCheckAdaptor::~FwCheckAdaptor()
{
    unregisterAdaptor();
}

void FwCheckAdaptor::checkInBackground()
{
    requestCheck();
}

void FwCheckAdaptor::recheckAfterChange()
{
    spdlog::info("A checked file changed; checking again");
    requestCheck();
}

void FwCheckAdaptor::checkOnRequest()
{
    spdlog::info("A fresh check was asked for (pulls stopped coming); checking");
    requestCheck();
}

void FwCheckAdaptor::Check(sdbus::Result<std::vector<FindingStruct>>&& result)
{
    m_loop.touch();
    // The bus policy lets only root call Check; the daemon holds to that
    // too, so that a loosened policy file does not hand the listing tools
    // and their capabilities to every local user. The bus daemon says who
    // called: the unit's ProtectProc=invisible hides other users' /proc
    // entries, from which sd-bus would otherwise complete the credentials.
    try {
        const auto uid = ferry::callerUid(getObject());
        if (uid != 0) {
            spdlog::info("Refusing a check asked for by uid {}: only root may run one", uid);
            result.returnError(sdbus::Error("org.freedesktop.DBus.Error.AccessDenied",
                                            "Only root may run a reachability check"));
            return;
        }
    } catch (const std::exception& e) {
        spdlog::warn("Refusing a check whose caller cannot be identified: {}", e.what());
        result.returnError(sdbus::Error("org.freedesktop.DBus.Error.AccessDenied", "Cannot identify the caller"));
        return;
    }
    if (m_waiting.size() >= kMaxWaiting) {
        result.returnError(sdbus::Error(kInterface + ".Error.Busy",
                                        "Too many callers are waiting for a check (" + std::to_string(kMaxWaiting) +
                                            "); try again when it ends"));
        return;
    }
    m_waiting.push_back(std::make_shared<sdbus::Result<std::vector<FindingStruct>>>(std::move(result)));
    requestCheck();
}

void FwCheckAdaptor::requestCheck()
{
    if (m_checking)
        m_checkAgain = true;
    else
        startCheck();
}

void FwCheckAdaptor::startCheck()
{
    std::vector<Caller> callers;
    callers.swap(m_waiting);
    m_checking = true;
    auto before = std::make_shared<const Report>(m_manager.current());
    m_jobs.start(
        "Check", [this] { return m_manager.check(); },
        [this, callers, before](const Report& after) { finishCheck(callers, *before, &after, nullptr); },
        [this, callers, before](const sdbus::Error& e) {
            const sdbus::Error error(e.getName(), "Failed to check reachability: " + e.getMessage());
            finishCheck(callers, *before, nullptr, &error);
        });
}

void FwCheckAdaptor::finishCheck(const std::vector<Caller>& callers, const Report& before, const Report* after,
                                 const sdbus::Error* error)
{
    if (after)
        publish(before, *after);
    for (const auto& c : callers) {
        if (after)
            c->returnResults(toStructs(after->findings));
        else
            c->returnError(*error);
    }
    m_checking = false;
    if (m_checkAgain || !m_waiting.empty()) {
        m_checkAgain = false;
        startCheck();
    }
}

void FwCheckAdaptor::publish(const Report& before, const Report& after)
{
    ferry::notifyStatus("Last check: " + after.verdict);
    if (before.verdict != after.verdict || before.lastCheck == 0)
        spdlog::info("Reachability verdict is now {} (was {})", after.verdict,
                     before.lastCheck == 0 ? std::string("unknown") : before.verdict);
    try {
        getObject().emitPropertiesChangedSignal(kInterface, {"Verdict", "LastCheck", "Findings", "Masters"});
        if (before.verdict != after.verdict || before.lastCheck == 0)
            emitVerdictChanged(after.verdict, before.lastCheck == 0 ? std::string("unknown") : before.verdict);
    } catch (const sdbus::Error& e) {
        spdlog::debug("Ignoring failure to emit signals: {}", e.getMessage());
    }
}

std::string FwCheckAdaptor::Verdict()
{
    return ferry::busCall(m_loop, kInterface, "Verdict", [&] { return m_manager.current().verdict; });
}

uint64_t FwCheckAdaptor::LastCheck()
{
    return ferry::busCall(m_loop, kInterface, "LastCheck", [&] {
        const auto ms = m_manager.current().lastCheck;
        return ms > 0 ? static_cast<uint64_t>(ms) * 1000 : uint64_t{0};
    });
}

std::vector<FwCheckAdaptor::FindingStruct> FwCheckAdaptor::Findings()
{
    return ferry::busCall(m_loop, kInterface, "Findings", [&] { return toStructs(m_manager.current().findings); });
}

std::vector<sdbus::Struct<std::string, std::string, std::string, std::string, std::string>> FwCheckAdaptor::Masters()
{
    return ferry::busCall(m_loop, kInterface, "Masters", [&] {
        std::vector<sdbus::Struct<std::string, std::string, std::string, std::string, std::string>> out;
        for (const auto& m : m_manager.current().masters)
            out.emplace_back(m.host, m.address, m.verdict, m.firewall, m.decidedBy);
        return out;
    });
}

} // namespace fwcheck
