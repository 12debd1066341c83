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
    : AdaptorInterfaces(bus, kPath), m_loop(loop), m_manager(manager)
{
    registerAdaptor();
}

FwCheckAdaptor::~FwCheckAdaptor()
{
    unregisterAdaptor();
    if (m_worker.joinable())
        m_worker.join();
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
    // The last worker has posted its result and is ending (or has ended).
    if (m_worker.joinable())
        m_worker.join();
    m_checking = true;
    m_loop.hold();
    try {
        m_worker = std::thread([this, callers] {
            const Report before = m_manager.current();
            std::optional<Report> after;
            std::string error;
            try {
                after = m_manager.check();
            } catch (const std::exception& e) {
                error = e.what();
                spdlog::error("Failed to check reachability: {}", error);
            }
            try {
                m_loop.post([this, callers, before, after, error] { finishCheck(callers, before, after, error); });
            } catch (const std::exception& e) {
                spdlog::error("Failed to hand a check's result to the event loop: {}", e.what());
            }
        });
    } catch (const std::exception& e) {
        // No thread: answer now instead of aborting the daemon.
        spdlog::error("Failed to start a check: {}", e.what());
        finishCheck(callers, m_manager.current(), std::nullopt, std::string("cannot start a worker: ") + e.what());
    }
}

void FwCheckAdaptor::finishCheck(const std::vector<Caller>& callers, const Report& before,
                                 const std::optional<Report>& after, const std::string& error)
{
    if (after)
        publish(before, *after);
    for (const auto& c : callers) {
        if (after)
            c->returnResults(toStructs(after->findings));
        else
            c->returnError(sdbus::Error(kInterface + ".Error.Internal", "Failed to check reachability: " + error));
    }
    m_checking = false;
    if (m_checkAgain || !m_waiting.empty()) {
        m_checkAgain = false;
        startCheck();
    }
    m_loop.release();
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
