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
    for (auto& t : m_workers)
        if (t.joinable())
            t.join();
}

void FwCheckAdaptor::checkInBackground()
{
    startCheck(nullptr);
}

void FwCheckAdaptor::recheckAfterChange()
{
    spdlog::info("A checked file changed; checking again");
    if (m_checking)
        m_checkAgain = true;
    else
        startCheck(nullptr);
}

void FwCheckAdaptor::Check(sdbus::Result<std::vector<FindingStruct>>&& result)
{
    m_loop.touch();
    startCheck(std::make_shared<sdbus::Result<std::vector<FindingStruct>>>(std::move(result)));
}

void FwCheckAdaptor::startCheck(std::shared_ptr<sdbus::Result<std::vector<FindingStruct>>> result)
{
    m_loop.hold();
    m_checking = true;
    m_workers.emplace_back([this, result] {
        const Report before = m_manager.current();
        std::optional<Report> after;
        std::string error;
        try {
            after = m_manager.check();
        } catch (const std::exception& e) {
            error = e.what();
            spdlog::error("Failed to check reachability: {}", error);
        }
        m_loop.post([this, result, before, after, error] {
            if (after) {
                publish(before, *after);
                if (result)
                    result->returnResults(toStructs(after->findings));
            } else if (result) {
                result->returnError(sdbus::Error(kInterface + ".Error.Internal", "Failed to check reachability: " + error));
            }
            m_checking = false;
            if (m_checkAgain) {
                m_checkAgain = false;
                startCheck(nullptr);
            }
            m_loop.release();
        });
    });
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
