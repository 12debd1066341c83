#include "Checker.h"

#include <algorithm>
#include <sstream>

#include "PullConfinement.h"
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

std::string undecidedFix(const FirewallVerdict& v, const Packet& p)
{
    if (!v.stage)
        return "";
    // Docker's DOCKER chain publishing the SSH port sends masters to a
    // container; an ACCEPT in nat PREROUTING ahead of it keeps them on sshd.
    if (v.stage->tool == Tool::Docker && v.stage->table == "nat") {
        Stage plain = *v.stage;
        plain.tool = Tool::Iptables;
        return "A container publishes port " + std::to_string(p.destinationPort) +
               " (Docker's DOCKER chain): publish it on another port (docker run -p <other>:…), or exempt the master:\n" +
               fixCommands(plain, plain.chain, "", p);
    }
    return "To be sure, accept it explicitly:\n" + fixCommands(*v.stage, v.chain, "", p);
}

int severityRank(const std::string& sev)
{
    return sev == severity::kError ? 0 : sev == severity::kUndecided ? 1 : sev == severity::kWarning ? 2 : 3;
}

} // namespace

Report Checker::run()
{
    Report report;
    report.lastCheck = ferry::nowMs();
    auto& findings = report.findings;

    checkMastersConfigured(findings);
    const Firewall firewall = Firewall::load(m_reader);
    for (const auto& f : firewall.findings())
        addUnique(findings, f);
    HostFacts facts;
    if (m_settings.checkSshd)
        facts.account = checkAccount(findings);
    if (m_settings.checkHostsAccess)
        facts.hosts = readHostsAccess(findings);
    if (m_settings.checkListening)
        facts.sockets = m_reader.listeningSockets();

    for (const auto& master : m_settings.masters)
        checkMaster(master, firewall, facts, report);

    // Errors are a person's first concern.
    std::stable_sort(findings.begin(), findings.end(),
                     [](const Finding& a, const Finding& b) { return severityRank(a.severity) < severityRank(b.severity); });
    report.verdict = summarize(findings);
    return report;
}

void Checker::checkMastersConfigured(std::vector<Finding>& out) const
{
    if (m_settings.masters.empty())
        out.push_back({"config.no-masters", severity::kUndecided,
                       "No master is configured, so there is nobody to check for",
                       "Add the master addresses under 'masters:' in /etc/ferry/ferry.yml"});
}

// The account the master logs in as.
std::optional<Account> Checker::checkAccount(std::vector<Finding>& out)
{
    const auto& s = m_settings;
    auto account = m_reader.account(s.pullUser);
    if (!account)
        out.push_back({"account.missing", severity::kError, "User " + s.pullUser + " does not exist",
                       "useradd --system --home-dir /var/lib/ferry --shell " + s.pullShell + " " + s.pullUser});
    else if (account->shell != s.pullShell)
        out.push_back({"account.shell", severity::kError,
                       "User " + s.pullUser + " has shell " + account->shell + ", not the pull shell " + s.pullShell,
                       "usermod --shell " + s.pullShell + " " + s.pullUser});
    return account;
}

// hosts_access applies only when sshd is linked with libwrap.
std::optional<HostsAccess> Checker::readHostsAccess(std::vector<Finding>& out)
{
    const auto& s = m_settings;
    bool libwrap = true;
    try {
        if (auto bin = m_reader.readFile(s.sshdBinary))
            libwrap = bin->find("libwrap.so") != std::string::npos;
    } catch (const std::exception& e) {
        // Unknown: evaluate the files anyway, as if they applied.
        out.push_back({"hosts.libwrap-unknown", severity::kInfo,
                       std::string("Cannot tell whether sshd uses hosts.allow/hosts.deny: ") + e.what(), ""});
    }
    if (!libwrap) {
        out.push_back({"hosts.not-used", severity::kInfo,
                       s.sshdBinary + " is not built with TCP wrappers, so hosts.allow and hosts.deny do not apply", ""});
        return std::nullopt;
    }
    try {
        HostsAccess hosts(HostsFile{s.hostsAllow, m_reader.readFile(s.hostsAllow)},
                          HostsFile{s.hostsDeny, m_reader.readFile(s.hostsDeny)});
        for (const auto& p : hosts.problems())
            out.push_back({"hosts.ignored-line", severity::kWarning, p, "Fix or remove that line"});
        return hosts;
    } catch (const std::exception& e) {
        out.push_back({"hosts.unreadable", severity::kUndecided, std::string("Cannot read hosts_access files: ") + e.what(),
                       "Make " + s.hostsAllow + " and " + s.hostsDeny + " readable (chmod 644)"});
        return std::nullopt;
    }
}

void Checker::checkMaster(const ferry::MasterAddress& master, const Firewall& firewall, const HostFacts& facts,
                          Report& report)
{
    const std::vector<std::string> addresses = m_reader.resolve(master.host);
    if (addresses.empty()) {
        report.findings.push_back({"master.unresolved", severity::kUndecided,
                                   "Cannot resolve master " + master.host + " to an address",
                                   "Check /etc/hosts and DNS for " + master.host +
                                       ", or configure its address in /etc/ferry/ferry.yml"});
        report.masters.push_back({master.host, "", "undecided", "undecided", "name does not resolve"});
        return;
    }
    for (const auto& addrText : addresses) {
        const auto src = Address::parse(addrText);
        if (!src) {
            report.findings.push_back({"master.unsupported-address", severity::kUndecided,
                                       "Cannot check master address " + addrText + " (of " + master.host +
                                           "): only plain IPv4 and IPv6 addresses are understood",
                                       "Configure the master by a global address in /etc/ferry/ferry.yml"});
            report.masters.push_back({master.host, addrText, "undecided", "undecided", "unsupported address"});
            continue;
        }
        Target t;
        t.host = master.host;
        t.addressText = addrText;
        t.source = *src;
        t.byName = !Address::parse(master.host);
        t.result = {master.host, addrText, "reachable", "undecided", ""};
        findRoute(t);
        if (t.destination) {
            checkFirewall(firewall, t);
            if (facts.sockets)
                checkListening(*facts.sockets, t);
            if (m_settings.checkSshd)
                checkSshd(facts, t);
        }
        if (facts.hosts)
            checkHostsAccess(*facts.hosts, t);
        t.result.verdict = summarize(t.findings);
        report.masters.push_back(t.result);
        for (const auto& f : t.findings)
            addUnique(report.findings, f);
    }
}

// Which interface the master's packets come in on and which node address
// they go to (ferry.yml's ssh_address, or the source of the route back).
void Checker::findRoute(Target& t)
{
    const Route route = m_reader.route(t.addressText);
    t.interface = route.interface;
    t.destinationText = m_settings.sshAddress;
    t.destination = Address::parse(t.destinationText);
    if (isWildcard(t.destinationText) || !t.destination || t.destination->family() != t.source.family()) {
        t.destinationText = route.source;
        t.destination = Address::parse(t.destinationText);
    }
    if (route.interface.empty())
        t.findings.push_back({"master.no-route", severity::kUndecided,
                              "There is no route to master " + t.addressText + ", so its packets cannot be answered",
                              "ip route get " + t.addressText + "   # then add a route or fix the default gateway"});
    if (!t.destination)
        t.findings.push_back({"master.no-address", severity::kUndecided,
                              "Cannot tell which local address master " + t.addressText + " connects to",
                              "Set 'node: ssh_address:' in /etc/ferry/ferry.yml"});
}

void Checker::checkFirewall(const Firewall& firewall, Target& t) const
{
    const std::uint16_t port = m_settings.sshPort;
    const Packet p{t.source, *t.destination, t.interface, port};
    auto fv = firewall.verdict(p);
    bool ndBlocked = false;
    if (!t.source.isV4() && fv.decision == Decision::Accept) {
        const auto before = t.findings.size();
        checkNeighbourDiscovery(firewall, p, fv, t);
        ndBlocked = t.findings.size() != before;
    }
    t.result.firewall = toString(fv.decision);
    t.result.decidedBy = fv.rule;
    if ((fv.decision == Decision::Drop || fv.decision == Decision::Reject) && !ndBlocked) {
        t.findings.push_back({"firewall.blocked", severity::kError,
                              std::string("The firewall ") + (fv.decision == Decision::Drop ? "drops" : "rejects") +
                                  " new connections from " + t.addressText + " to port " + std::to_string(port) + ": " +
                                  fv.rule,
                              fixCommands(*fv.stage, fv.chain, fv.rule, p)});
    } else if (fv.decision == Decision::Undecided) {
        std::string why;
        for (const auto& r : fv.reasons)
            why += "\n  " + r;
        t.result.decidedBy = fv.reasons.empty() ? "" : fv.reasons.front();
        t.findings.push_back({"firewall.undecided", severity::kUndecided,
                              "Cannot decide whether the firewall lets " + t.addressText + " reach port " +
                                  std::to_string(port) + ", because:" + why,
                              undecidedFix(fv, p)});
    }
}

// No IPv6 reply leaves without neighbour discovery: the master's
// solicitations and advertisements must get in too.
void Checker::checkNeighbourDiscovery(const Firewall& firewall, const Packet& p, FirewallVerdict& fv, Target& t) const
{
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
            fv.chain = nv.chain;
            continue;
        }
        // Without them the SYN or its answer never arrives: to the master
        // this looks like a dropped connection.
        fv.decision = Decision::Drop;
        fv.rule = "ICMPv6 " + what + " are blocked by " + nv.rule;
        fv.stage = nv.stage;
        fv.chain = nv.chain;
        t.findings.push_back({"firewall.ipv6-neighbour-discovery", severity::kError,
                              "The firewall " + std::string(nv.decision == Decision::Drop ? "drops" : "rejects") +
                                  " ICMPv6 " + what + " from " + t.addressText +
                                  ", so IPv6 connections between it and this node fail: " + nv.rule,
                              neighbourDiscoveryFix(*nv.stage, type)});
        return;
    }
}

void Checker::checkListening(const CommandOutput& sockets, Target& t) const
{
    if (auto l = listening(sockets, *t.destination, m_settings.sshPort); l && !*l)
        t.findings.push_back({"sshd.not-listening", severity::kError,
                              "Nothing listens on " + t.destinationText + " port " + std::to_string(m_settings.sshPort),
                              "systemctl enable --now ssh"});
}

void Checker::checkSshd(const HostFacts& facts, Target& t)
{
    const auto& s = m_settings;
    const auto out = m_reader.sshdEffective(s.pullUser, t.host, t.addressText);
    if (!out.ran) {
        t.findings.push_back({"sshd.unavailable", severity::kUndecided,
                              "Cannot run " + s.sshdBinary + " -T: " + out.describe(), "apt install openssh-server"});
        return;
    }
    if (out.exitCode != 0 && out.err.find("privilege separation directory") != std::string::npos) {
        // sshd creates /run/sshd when it starts: without it, it is not running.
        t.findings.push_back({"sshd.not-running", severity::kError, "sshd is not running (" + out.describe() + ")",
                              "systemctl enable --now ssh"});
        return;
    }
    if (out.exitCode != 0) {
        t.findings.push_back({"sshd.config-invalid", severity::kUndecided,
                              "sshd -T refuses the configuration: " + out.describe(),
                              "sshd -t   # shows the offending line; fix it in " + s.sshdConfigPath});
        return;
    }
    SshdQuestion q;
    q.user = s.pullUser;
    q.masterHost = t.host;
    q.masterAddress = t.addressText;
    q.listenAddress = t.destinationText;
    q.port = s.sshPort;
    q.account = facts.account;
    const auto effective = parseSshdT(out.out);
    for (auto& f : fwcheck::checkSshd(effective, q, s.sshdConfigPath))
        t.findings.push_back(std::move(f));
    checkPullConfinement(effective, facts.account, t);
}

// The pull login must run the pull protocol and nothing else.
void Checker::checkPullConfinement(const std::map<std::string, std::vector<std::string>>& effective,
                                   const std::optional<Account>& account, Target& t)
{
    PullLogin login;
    login.user = m_settings.pullUser;
    login.shell = m_settings.pullShell;
    login.account = account;
    login.sshdConfigPath = m_settings.sshdConfigPath;
    for (auto& f : checkSshdConfinement(effective, login))
        t.findings.push_back(std::move(f));
    // Keys from an AuthorizedKeysCommand are not in a file we could judge.
    const auto command = effective.find("authorizedkeyscommand");
    if (!account || (command != effective.end() && !command->second.empty() && command->second.front() != "none"))
        return;
    const bool confined = sshdConfines(effective);
    for (const auto& path : authorizedKeysFiles(effective, *account)) {
        try {
            const auto text = m_reader.readFile(path);
            if (!text)
                continue;
            for (auto& f : checkAuthorizedKeys(path, *text, login, confined))
                t.findings.push_back(std::move(f));
        } catch (const std::exception& e) {
            t.findings.push_back({"sshd.pull-keys-unreadable", severity::kInfo,
                                  "Cannot read " + path + " to check the pull keys' options: " + e.what(), ""});
        }
    }
}

void Checker::checkHostsAccess(const HostsAccess& hosts, Target& t) const
{
    HostsClient c{t.source, t.byName ? t.host : "", t.destination};
    const auto d = hosts.decide(c);
    const std::string allowLine = "sshd: " + (t.source.isV4() ? t.addressText : "[" + t.addressText + "]");
    if (d.kind == HostsDecision::Kind::Denied)
        t.findings.push_back({"hosts.denied", severity::kError,
                              d.file + ":" + std::to_string(d.line) + " '" + d.text + "' refuses sshd connections from " +
                                  t.addressText,
                              "Add this line at the top of " + m_settings.hostsAllow + ":\n" + allowLine});
    else if (d.kind == HostsDecision::Kind::Undecided)
        t.findings.push_back({"hosts.undecided", severity::kUndecided,
                              "Cannot decide " + d.file + ":" + std::to_string(d.line) + " '" + d.text + "' for " +
                                  t.addressText + ", because " + d.why,
                              "To be sure, add this line at the top of " + m_settings.hostsAllow + ":\n" + allowLine});
}

} // namespace fwcheck
