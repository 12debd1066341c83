// fwcheck benchmark: how long until a verdict for each master on a rule set
// of 10,000 iptables rules, against the operator's way of asking the same
// question, `iptables -C` looped over the rules that would decide it.
//
// Everything happens in a network namespace made here and deleted at the
// end; no packet is sent.
//
// The question, per master M and the SSH port: is there a rule that
// accepts, drops or rejects M's TCP connections to port 22? `iptables -C`
// can only test one exact rule at a time, so the loop asks, for each
// master, each target (ACCEPT, DROP, REJECT) and each prefix length that
// could cover M (/32 down to /8): "-C INPUT -s M/len -p tcp --dport 22 -j T".
// That is 75 invocations per master and still cannot see user chains,
// multiport lists, interfaces or policies; fwcheck answers all of that from
// one iptables-save.
//
// The target line compares fwcheck's own time on the two backends, both
// measured in this run: the nft backend (the same rules through
// iptables-nft) must take at most twice the legacy backend.

#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <map>
#include <cstdio>
#include <sstream>
#include <string>
#include <vector>

#include "Firewall.h"
#include "HostReader.h"

using namespace fwcheck;
using Clock = std::chrono::steady_clock;

namespace {

double ms(Clock::duration d)
{
    return std::chrono::duration<double, std::milli>(d).count();
}

CommandOutput must(const std::vector<std::string>& argv, const std::string& input = {})
{
    // runCommand has no stdin; feed restore input through a file.
    std::vector<std::string> full = argv;
    if (!input.empty()) {
        char path[] = "/tmp/fwcheck-bench-XXXXXX";
        const int fd = ::mkstemp(path);
        if (fd < 0 || ::write(fd, input.data(), input.size()) != static_cast<ssize_t>(input.size()))
            throw std::runtime_error("cannot write the rule set");
        ::close(fd);
        std::string cmd;
        for (const auto& a : argv)
            cmd += "'" + a + "' ";
        full = {"sh", "-c", cmd + "< " + path + "; rc=$?; rm -f " + path + "; exit $rc"};
    }
    auto out = runCommand(full, 120000);
    if (!out.ran || out.exitCode != 0)
        throw std::runtime_error(argv[0] + " failed: " + out.describe());
    return out;
}

// 10,000 rules: allow-lists of benchmark addresses over many ports, some in
// user chains reached through jumps, multiport lists, and the rules that
// decide for the masters near the end (the worst case for a linear walk).
std::string ruleSet(int count)
{
    std::ostringstream s;
    s << "*filter\n:INPUT DROP [0:0]\n:FORWARD ACCEPT [0:0]\n:OUTPUT ACCEPT [0:0]\n";
    const int chains = 20;
    for (int c = 0; c < chains; ++c)
        s << ":svc-" << c << " - [0:0]\n";
    int n = 0;
    s << "-A INPUT -m conntrack --ctstate RELATED,ESTABLISHED -j ACCEPT\n";
    ++n;
    for (int c = 0; c < chains; ++c, ++n)
        s << "-A INPUT -p tcp -m tcp --dport " << (3000 + c) << " -j svc-" << c << "\n";
    int i = 0;
    while (n < count - 3) {
        const int a = (i / 250) % 256, b = i % 250 + 1;
        if (i % 10 == 0)
            s << "-A svc-" << (i / 10) % chains << " -s 198.18." << a << "." << b << "/32 -j ACCEPT\n";
        else if (i % 10 == 1)
            s << "-A INPUT -s 198.19." << a << "." << b << "/32 -p tcp -m multiport --dports 80,443,8000:8100 -j ACCEPT\n";
        else
            s << "-A INPUT -s 198.18." << a << "." << b << "/32 -p tcp -m tcp --dport " << (1024 + i % 5000)
              << " -j ACCEPT\n";
        ++i;
        ++n;
    }
    s << "-A INPUT -s 198.51.100.2/32 -p tcp -m tcp --dport 22 -j ACCEPT\n";
    s << "-A INPUT -s 198.51.100.3/32 -p tcp -m tcp --dport 22 -j REJECT --reject-with tcp-reset\n";
    s << "-A INPUT -s 198.51.100.0/24 -p tcp -m multiport --dports 20:23 -j ACCEPT\n";
    s << "COMMIT\n";
    return s.str();
}

} // namespace

int main(int argc, char* argv[])
{
    int count = 10000;
    int rounds = 5;
    for (int i = 1; i < argc; ++i) {
        const std::string a = argv[i];
        if (a == "--rules" && i + 1 < argc)
            count = std::stoi(argv[++i]);
        else if (a == "--rounds" && i + 1 < argc)
            rounds = std::stoi(argv[++i]);
        else {
            std::fprintf(stderr, "usage: fwcheck-bench [--rules N] [--rounds N]\n");
            return 2;
        }
    }
    const std::string ns = "fwbench" + std::to_string(::getpid());
    const std::vector<std::string> in = {"ip", "netns", "exec", ns};
    auto inNs = [&](std::vector<std::string> cmd) {
        std::vector<std::string> full = in;
        full.insert(full.end(), cmd.begin(), cmd.end());
        return full;
    };
    const std::vector<std::string> masters = {"198.51.100.2", "198.51.100.3", "198.51.100.4"};
    int rc = 0;
    must({"ip", "netns", "add", ns});
    try {
        must(inNs({"ip", "link", "add", "bench0", "type", "veth", "peer", "name", "bench1"}));
        must(inNs({"ip", "addr", "add", "198.51.100.1/24", "dev", "bench0"}));
        must(inNs({"ip", "link", "set", "bench0", "up"}));
        must(inNs({"ip", "link", "set", "bench1", "up"}));
        std::map<std::string, double> fwcheckMs;
        auto benchOne = [&](const std::string& backend) {

        // fwcheck: read the rules the way the daemon does, then trace.
        HostReaderOptions o;
        o.commandPrefix = in;
        o.netns = ns;
        HostReader reader(o);
        std::vector<double> total, traceOnly;
        std::vector<std::string> answers;
        for (int r = 0; r < rounds; ++r) {
            const auto t0 = Clock::now();
            Firewall fw = Firewall::load(reader);
            std::vector<Packet> packets;
            for (const auto& m : masters) {
                const Route route = reader.route(m);
                packets.push_back({*Address::parse(m), *Address::parse(route.source), route.interface, 22});
            }
            const auto t1 = Clock::now();
            answers.clear();
            for (const auto& p : packets)
                answers.push_back(p.source.toString() + " " + toString(fw.verdict(p).decision));
            const auto t2 = Clock::now();
            total.push_back(ms(t2 - t0));
            traceOnly.push_back(ms(t2 - t1));
            if (r == 0)
                std::printf("  fwcheck read %zu rules\n", fw.ruleCount());
        }
        for (const auto& a : answers)
            std::printf("  fwcheck verdict: %s\n", a.c_str());
        {
            // Where fwcheck's time goes: the listing tools themselves.
            std::string parts;
            for (const char* tool : {"iptables-legacy-save", "iptables-nft-save", "ip6tables-nft-save"}) {
                const auto t0 = Clock::now();
                reader.iptablesSave(tool);
                char buf[96];
                std::snprintf(buf, sizeof buf, "%s%s %.1f ms", parts.empty() ? "" : ", ", tool, ms(Clock::now() - t0));
                parts += buf;
            }
            const auto t0 = Clock::now();
            reader.nftRuleset();
            const auto t1 = Clock::now();
            const auto inventory = reader.nftTables();
            char buf[160];
            std::snprintf(buf, sizeof buf, ", libnftables list ruleset (JSON) %.1f ms, netlink table inventory %.1f ms (%zu tables)",
                          ms(t1 - t0), ms(Clock::now() - t1), inventory ? inventory->size() : 0);
            std::printf("  the listing tools alone: %s%s\n", parts.c_str(), buf);
        }

        // The loop over iptables -C.
        std::vector<double> loop;
        int invocations = 0;
        std::vector<std::string> found;
        for (int r = 0; r < std::min(rounds, 2); ++r) {
            invocations = 0;
            found.clear();
            const auto t0 = Clock::now();
            for (const auto& m : masters) {
                std::string hit = m + " no exact rule";
                for (int len = 32; len >= 8; --len) {
                    std::string net = m;
                    if (len < 32) {
                        auto a = *Address::parse(m);
                        auto bytes = a.bytes();
                        for (int bit = len; bit < 32; ++bit)
                            bytes[static_cast<std::size_t>(bit / 8)] &= static_cast<std::uint8_t>(~(0x80 >> (bit % 8)));
                        char buf[32];
                        std::snprintf(buf, sizeof buf, "%u.%u.%u.%u", bytes[0], bytes[1], bytes[2], bytes[3]);
                        net = buf;
                    }
                    for (const char* target : {"ACCEPT", "DROP", "REJECT"}) {
                        ++invocations;
                        auto out = runCommand(inNs({"iptables-" + backend, "-C", "INPUT", "-s", net + "/" + std::to_string(len),
                                                    "-p", "tcp", "-m", "tcp", "--dport", "22", "-j", target}),
                                              60000);
                        if (out.exitCode == 0 && hit.find("no exact") != std::string::npos)
                            hit = m + " " + target + " (" + net + "/" + std::to_string(len) + ")";
                    }
                }
                found.push_back(hit);
            }
            loop.push_back(ms(Clock::now() - t0));
        }
        for (const auto& f : found)
            std::printf("  iptables -C found: %s\n", f.c_str());

        auto median = [](std::vector<double> v) {
            std::sort(v.begin(), v.end());
            return v[v.size() / 2];
        };
        const double fwMs = median(total), loopMs = median(loop);
        fwcheckMs[backend] = fwMs;
        std::printf("fwcheck: %.1f ms to the verdicts (median of %d; of which tracing %.2f ms; the rest is reading: running the listing tools and parsing their output)\n",
                    fwMs, rounds, median(traceOnly));
        std::printf("iptables -C loop: %.1f ms for %d invocations (median of %zu)\n", loopMs, invocations, loop.size());
        std::printf("ratio (%s): iptables -C loop / fwcheck = %.1fx\n", backend.c_str(), loopMs / fwMs);
        };
        const std::string rules = ruleSet(count);
        for (const std::string backend : {"legacy", "nft"}) {
            // Each backend on its own: the other one's tables are emptied.
            runCommand(inNs({"nft", "flush", "ruleset"}), 60000);
            runCommand(inNs({"sh", "-c", "iptables-legacy -F; iptables-legacy -X; iptables-legacy -P INPUT ACCEPT"}), 60000);
            must(inNs({"iptables-" + backend + "-restore"}), rules);
            std::printf("\nRule set: %d iptables rules (%s backend) in namespace %s; question: can 3 masters reach TCP 22?\n",
                        count, backend.c_str(), ns.c_str());
            benchOne(backend);
        }
        if (fwcheckMs.count("legacy") && fwcheckMs.count("nft")) {
            const double ratio = fwcheckMs["nft"] / fwcheckMs["legacy"];
            std::printf("\ntarget: fwcheck on the nft backend within 2x of the legacy backend: nft %.1f ms / legacy %.1f ms = %.2fx (%s)\n",
                        fwcheckMs["nft"], fwcheckMs["legacy"], ratio, ratio <= 2.0 ? "met" : "NOT met");
        }
    } catch (const std::exception& e) {
        std::fprintf(stderr, "fwcheck bench failed: %s\n", e.what());
        rc = 1;
    }
    runCommand({"ip", "netns", "del", ns}, 10000);
    return rc;
}
