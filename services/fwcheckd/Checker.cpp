#include "Checker.h"

#include <algorithm>
#include <sstream>

#include "HostsAccess.h"
#include "SshdCheck.h"
#include "ferry/Bus.h"
#include "ferry/Error.h"

namespace fwcheck {

CheckSettings CheckSettings::fromNodeConfig(const ferry::NodeConfig& c)
{
    CheckSettings s;
    s.masters = c.masters;
    s.sshAddress = c.sshAddress;
    s.sshPort = c.sshPort;
    return s;
}

std::string summarize(const std::vector<Finding>& findings)
{
    bool undecided = false;
    for (const auto& f : findings) {
        if (f.severity == severity::kError)
            return "blocked";
        if (f.severity == severity::kUndecided)
            undecided = true;
    }
    return undecided ? "undecided" : "reachable";
}

namespace {

void addUnique(std::vector<Finding>& into, const Finding& f)
{
    if (std::find(into.begin(), into.end(), f) == into.end())
        into.push_back(f);
}

bool isWildcard(const std::string& a)
{
    return a.empty() || a == "0.0.0.0" || a == "::" || a == "*";
}

// Does `ss -Hltn` show a socket that accepts connections to dst:port?
std::optional<bool> listening(const CommandOutput& ss, const Address& dst, std::uint16_t port)
{
    if (!ss.ran || ss.exitCode != 0)
        return std::nullopt;
    std::istringstream in(ss.out);
    std::string line;
    while (std::getline(in, line)) {
        std::istringstream ls(line);
        std::string state, recvq, sendq, local;
        if (!(ls >> state >> recvq >> sendq >> local))
            continue;
        const auto colon = local.rfind(':');
        if (colon == std::string::npos || local.substr(colon + 1) != std::to_string(port))
            continue;
        std::string addr = local.substr(0, colon);
        if (addr.size() >= 2 && addr.front() == '[' && addr.back() == ']')
            addr = addr.substr(1, addr.size() - 2);
        addr = addr.substr(0, addr.find('%'));
        if (addr == "*")
            return true;
        auto a = Address::parse(addr);
        if (!a || a->family() != dst.family())
            continue;
        if (*a == dst || isWildcard(addr))
            return true;
    }
    return false;
}

std::string undecidedFix(const Stage* stage, Tool tool, const std::string& master, std::uint16_t port)
{
    if (!stage)
        return "";
    // Docker's DOCKER chain publishing the SSH port sends masters to a
    // container; an ACCEPT in nat PREROUTING ahead of it keeps them on sshd.
    if (stage->tool == Tool::Docker && stage->table == "nat")
        return "A container publishes port " + std::to_string(port) +
               " (Docker's DOCKER chain): publish it on another port (docker run -p <other>:…), or exempt the master:\n" +
               fixCommands(*stage, Tool::Iptables, master, port);
    return "To be sure, accept it explicitly:\n" + fixCommands(*stage, tool, master, port);
}

} // namespace

Report Checker::run()
{
    Report report;
    report.lastCheck = ferry::nowMs();
    auto& findings = report.findings;
    const auto& s = m_settings;

    if (s.masters.empty())
        findings.push_back({"config.no-masters", severity::kUndecided,
                            "No master is configured, so there is nobody to check for",
                            "Add the master addresses under 'masters:' in /etc/ferry/ferry.yml"});

    const Firewall firewall = Firewall::load(m_reader);
    for (const auto& f : firewall.findings())
        addUnique(findings, f);

    // The account the master logs in as.
    std::optional<Account> account;
    if (s.checkSshd) {
        account = m_reader.account(s.pullUser);
        if (!account)
            findings.push_back({"account.missing", severity::kError, "User " + s.pullUser + " does not exist",
                                "useradd --system --home-dir /var/lib/ferry --shell " + s.pullShell + " " + s.pullUser});
        else if (account->shell != s.pullShell)
            findings.push_back({"account.shell", severity::kError,
                                "User " + s.pullUser + " has shell " + account->shell + ", not the pull shell " +
                                    s.pullShell,
                                "usermod --shell " + s.pullShell + " " + s.pullUser});
    }

    // hosts_access applies only when sshd is linked with libwrap.
    std::optional<HostsAccess> hosts;
    if (s.checkHostsAccess) {
        bool libwrap = true;
        try {
            if (auto bin = m_reader.readFile(s.sshdBinary))
                libwrap = bin->find("libwrap.so") != std::string::npos;
        } catch (const std::exception& e) {
            // Unknown: evaluate the files anyway, as if it applied.
            findings.push_back({"hosts.libwrap-unknown", severity::kInfo,
                                std::string("Cannot tell whether sshd uses hosts.allow/hosts.deny: ") + e.what(), ""});
        }
        if (!libwrap) {
            findings.push_back({"hosts.not-used", severity::kInfo,
                                s.sshdBinary + " is not built with TCP wrappers, so hosts.allow and hosts.deny do not apply",
                                ""});
        } else {
            try {
                hosts.emplace(HostsFile{s.hostsAllow, m_reader.readFile(s.hostsAllow)},
                              HostsFile{s.hostsDeny, m_reader.readFile(s.hostsDeny)});
                for (const auto& p : hosts->problems())
                    findings.push_back({"hosts.ignored-line", severity::kWarning, p, "Fix or remove that line"});
            } catch (const std::exception& e) {
                findings.push_back({"hosts.unreadable", severity::kUndecided,
                                    std::string("Cannot read hosts_access files: ") + e.what(),
                                    "Make " + s.hostsAllow + " and " + s.hostsDeny + " readable (chmod 644)"});
            }
        }
    }

    std::optional<CommandOutput> sockets;
    if (s.checkListening)
        sockets = m_reader.listeningSockets();

    for (const auto& master : s.masters) {
        std::vector<std::string> addresses = m_reader.resolve(master.host);
        if (addresses.empty()) {
            findings.push_back({"master.unresolved", severity::kUndecided,
                                "Cannot resolve master " + master.host + " to an address",
                                "Check /etc/hosts and DNS for " + master.host + ", or configure its address in /etc/ferry/ferry.yml"});
            report.masters.push_back({master.host, "", "undecided", "undecided", "name does not resolve"});
            continue;
        }
        const bool byName = !Address::parse(master.host);
        for (const auto& addrText : addresses) {
            const auto src = Address::parse(addrText);
            if (!src) {
                findings.push_back({"master.unsupported-address", severity::kUndecided,
                                    "Cannot check master address " + addrText + " (of " + master.host +
                                        "): only plain IPv4 and IPv6 addresses are understood",
                                    "Configure the master by a global address in /etc/ferry/ferry.yml"});
                report.masters.push_back({master.host, addrText, "undecided", "undecided", "unsupported address"});
                continue;
            }
            std::vector<Finding> mine;
            const Route route = m_reader.route(addrText);
            std::string dstText = s.sshAddress;
            auto dst = Address::parse(dstText);
            if (isWildcard(dstText) || !dst || dst->family() != src->family()) {
                dstText = route.source;
                dst = Address::parse(dstText);
            }
            if (route.interface.empty())
                mine.push_back({"master.no-route", severity::kUndecided,
                                "There is no route to master " + addrText + ", so its packets cannot be answered",
                                "ip route get " + addrText + "   # then add a route or fix the default gateway"});

            MasterResult mr{master.host, addrText, "reachable", "undecided", ""};
            if (!dst) {
                mine.push_back({"master.no-address", severity::kUndecided,
                                "Cannot tell which local address master " + addrText + " connects to",
                                "Set 'node: ssh_address:' in /etc/ferry/ferry.yml"});
            } else {
                Packet p{*src, *dst, route.interface, s.sshPort};
                auto fv = firewall.verdict(p);
                if (!src->isV4() && fv.decision == Decision::Accept) {
                    // No IPv6 reply leaves without neighbour discovery: the
                    // master's solicitations and advertisements must get in.
                    for (const std::uint8_t type : {135, 136}) {
                        Packet nd = p;
                        nd.protocol = Packet::Protocol::Icmpv6;
                        nd.icmpType = type;
                        const auto nv = firewall.verdict(nd);
                        if (nv.decision == Decision::Accept)
                            continue;
                        const std::string what = type == 135 ? "neighbour solicitations" : "neighbour advertisements";
                        if (nv.decision == Decision::Undecided) {
                            fv.decision = Decision::Undecided;
                            fv.reasons = nv.reasons;
                            fv.stage = nv.stage;
                            continue;
                        }
                        // Without them the SYN or its answer never arrives: to the
                        // master this looks like a dropped connection.
                        fv.decision = Decision::Drop;
                        fv.rule = "ICMPv6 " + what + " are blocked by " + nv.rule;
                        fv.stage = nv.stage;
                        mine.push_back({"firewall.ipv6-neighbour-discovery", severity::kError,
                                        "The firewall " + std::string(nv.decision == Decision::Drop ? "drops" : "rejects") +
                                            " ICMPv6 " + what + " from " + addrText +
                                            ", so IPv6 connections between it and this node fail: " + nv.rule,
                                        neighbourDiscoveryFix(*nv.stage, type)});
                        break;
                    }
                }
                mr.firewall = toString(fv.decision);
                mr.decidedBy = fv.rule;
                const bool ndBlocked = !mine.empty() && mine.back().id == "firewall.ipv6-neighbour-discovery";
                if ((fv.decision == Decision::Drop || fv.decision == Decision::Reject) && !ndBlocked) {
                    mine.push_back({"firewall.blocked", severity::kError,
                                    std::string("The firewall ") + (fv.decision == Decision::Drop ? "drops" : "rejects") +
                                        " new connections from " + addrText + " to port " + std::to_string(s.sshPort) +
                                        ": " + fv.rule,
                                    fixCommands(*fv.stage, firewall.toolFor(src->family()), addrText, s.sshPort)});
                } else if (fv.decision == Decision::Undecided) {
                    std::string why;
                    for (const auto& r : fv.reasons)
                        why += "\n  " + r;
                    mr.decidedBy = fv.reasons.empty() ? "" : fv.reasons.front();
                    mine.push_back({"firewall.undecided", severity::kUndecided,
                                    "Cannot decide whether the firewall lets " + addrText + " reach port " +
                                        std::to_string(s.sshPort) + ", because:" + why,
                                    undecidedFix(fv.stage, firewall.toolFor(src->family()), addrText, s.sshPort)});
                }

                if (sockets) {
                    if (auto l = listening(*sockets, *dst, s.sshPort); l && !*l)
                        mine.push_back({"sshd.not-listening", severity::kError,
                                        "Nothing listens on " + dstText + " port " + std::to_string(s.sshPort),
                                        "systemctl enable --now ssh"});
                }
                if (s.checkSshd) {
                    const auto out = m_reader.sshdEffective(s.pullUser, master.host, addrText);
                    if (!out.ran) {
                        mine.push_back({"sshd.unavailable", severity::kUndecided,
                                        "Cannot run " + s.sshdBinary + " -T: " + out.describe(), "apt install openssh-server"});
                    } else if (out.exitCode != 0 && out.err.find("privilege separation directory") != std::string::npos) {
                        // sshd creates /run/sshd when it starts: without it, it is not running.
                        mine.push_back({"sshd.not-running", severity::kError,
                                        "sshd is not running (" + out.describe() + ")", "systemctl enable --now ssh"});
                    } else if (out.exitCode != 0) {
                        mine.push_back({"sshd.config-invalid", severity::kUndecided,
                                        "sshd -T refuses the configuration: " + out.describe(),
                                        "sshd -t   # shows the offending line; fix it in " + s.sshdConfigPath});
                    } else {
                        SshdQuestion q;
                        q.user = s.pullUser;
                        q.masterHost = master.host;
                        q.masterAddress = addrText;
                        q.listenAddress = dstText;
                        q.port = s.sshPort;
                        q.account = account;
                        for (auto& f : checkSshd(parseSshdT(out.out), q, s.sshdConfigPath))
                            mine.push_back(std::move(f));
                    }
                }
            }
            if (hosts) {
                HostsClient c{*src, byName ? master.host : "", dst};
                const auto d = hosts->decide(c);
                const std::string allowLine = "sshd: " + (src->isV4() ? addrText : "[" + addrText + "]");
                if (d.kind == HostsDecision::Kind::Denied)
                    mine.push_back({"hosts.denied", severity::kError,
                                    d.file + ":" + std::to_string(d.line) + " '" + d.text +
                                        "' refuses sshd connections from " + addrText,
                                    "Add this line at the top of " + s.hostsAllow + ":\n" + allowLine});
                else if (d.kind == HostsDecision::Kind::Undecided)
                    mine.push_back({"hosts.undecided", severity::kUndecided,
                                    "Cannot decide " + d.file + ":" + std::to_string(d.line) + " '" + d.text +
                                        "' for " + addrText + ", because " + d.why,
                                    "To be sure, add this line at the top of " + s.hostsAllow + ":\n" + allowLine});
            }
            mr.verdict = summarize(mine);
            report.masters.push_back(mr);
            for (const auto& f : mine)
                addUnique(findings, f);
        }
    }
    // Errors are a person's first concern.
    std::stable_sort(findings.begin(), findings.end(), [](const Finding& a, const Finding& b) {
        auto rank = [](const std::string& sev) {
            return sev == severity::kError ? 0 : sev == severity::kUndecided ? 1 : sev == severity::kWarning ? 2 : 3;
        };
        return rank(a.severity) < rank(b.severity);
    });
    report.verdict = summarize(findings);
    return report;
}

} // namespace fwcheck
