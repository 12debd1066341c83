#include "NetnsLab.h"

#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <sched.h>
#include <sys/socket.h>
#include <unistd.h>
#include <arpa/inet.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstring>
#include <stdexcept>
#include <thread>

namespace fwtest {

using ferry::test::run;

std::vector<std::string> privateRunPrefix()
{
    return {"unshare", "--mount", "--propagation", "private", "sh", "-c",
            "mount -t tmpfs tmpfs /run && mkdir /run/sshd && exec \"$@\"", "sh"};
}

void NetnsLab::sh(const std::vector<std::string>& argv) const
{
    const auto r = run(argv, {}, {}, std::chrono::seconds(20));
    if (r.exitCode != 0) {
        std::string cmd;
        for (const auto& a : argv)
            cmd += a + " ";
        throw std::runtime_error("command failed: " + cmd + ": " + r.err);
    }
}

std::string NetnsLab::inNode(const std::vector<std::string>& argv, const std::string& input) const
{
    std::vector<std::string> full = nodePrefix();
    full.insert(full.end(), argv.begin(), argv.end());
    const auto r = run(full, {}, input, std::chrono::seconds(20));
    if (r.exitCode != 0) {
        std::string cmd;
        for (const auto& a : argv)
            cmd += a + " ";
        throw std::runtime_error("in node: " + cmd + "failed: " + r.err);
    }
    return r.out;
}

NetnsLab::NetnsLab()
{
    const std::string tag = "fwt" + std::to_string(::getpid() % 100000);
    m_node = tag + "-node";
    try {
        sh({"ip", "netns", "add", m_node});
        m_created.push_back(m_node);
        sh({"ip", "-n", m_node, "link", "set", "lo", "up"});
        struct Link {
            const char* nodeIf;
            const char* v4node;
            const char* v4master;
            const char* v6node;
            const char* v6master;
        };
        // Documentation addresses (RFC 5737, RFC 3849): the two IPv4 links are
        // the halves of 198.51.100.0/24, so that one prefix covers both masters.
        const Link links[] = {
            {"fwn1", "198.51.100.1", "198.51.100.2", "2001:db8:1::1", "2001:db8:1::2"},
            {"fwn2", "198.51.100.129", "198.51.100.130", nullptr, nullptr},
        };
        int index = 1;
        for (const auto& l : links) {
            const std::string ns = tag + "-m" + std::to_string(index++);
            sh({"ip", "netns", "add", ns});
            m_created.push_back(ns);
            sh({"ip", "-n", ns, "link", "set", "lo", "up"});
            sh({"ip", "-n", m_node, "link", "add", l.nodeIf, "type", "veth", "peer", "name", "eth0", "netns", ns});
            sh({"ip", "-n", m_node, "addr", "add", std::string(l.v4node) + "/25", "dev", l.nodeIf});
            sh({"ip", "-n", ns, "addr", "add", std::string(l.v4master) + "/25", "dev", "eth0"});
            if (l.v6node) {
                sh({"ip", "-n", m_node, "addr", "add", std::string(l.v6node) + "/64", "dev", l.nodeIf, "nodad"});
                sh({"ip", "-n", ns, "addr", "add", std::string(l.v6master) + "/64", "dev", "eth0", "nodad"});
            }
            sh({"ip", "-n", m_node, "link", "set", l.nodeIf, "up"});
            sh({"ip", "-n", ns, "link", "set", "eth0", "up"});
            m_masters.push_back({ns, l.v4master, l.v4node});
            if (l.v6node)
                m_masters.push_back({ns, l.v6master, l.v6node});
        }
        // A real sshd in the node namespace.
        sh({"ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", m_dir / "host_key"});
        m_sshdConfig = m_dir / "sshd_config";
        ferry::test::writeFile(m_sshdConfig, "Port 22\nPort 2222\nListenAddress 0.0.0.0\nListenAddress ::\nHostKey " +
                                                 (m_dir / "host_key") +
                                                 "\nStrictModes no\nUsePAM no\nPidFile none\nLogLevel ERROR\n");
        // Process uses execve: the program needs its full path.
        std::vector<std::string> argv = {"/usr/sbin/ip", "netns", "exec", m_node};
        for (const auto& a : privateRunPrefix())
            argv.push_back(a);
        for (const std::string a : {"/usr/sbin/sshd", "-D", "-e", "-f"})
            argv.push_back(a);
        argv.push_back(m_sshdConfig);
        m_sshd.emplace(argv, std::map<std::string, std::string>{}, m_dir / "sshd.log");
        const bool up = ferry::test::waitUntil(
            [&] { return inNode({"ss", "-Hltn"}).find(":22 ") != std::string::npos; }, std::chrono::seconds(10));
        if (!up)
            throw std::runtime_error("sshd did not start in " + m_node + ": " + ferry::test::readFile(m_dir / "sshd.log"));
    } catch (...) {
        m_sshd.reset();
        for (auto it = m_created.rbegin(); it != m_created.rend(); ++it)
            run({"ip", "netns", "del", *it});
        throw;
    }
}

NetnsLab::~NetnsLab()
{
    m_sshd.reset();
    for (auto it = m_created.rbegin(); it != m_created.rend(); ++it)
        run({"ip", "netns", "del", *it});
}

void NetnsLab::resetFirewall() const
{
    inNode({"nft", "flush", "ruleset"});
    const std::string empty4 = "*filter\n:INPUT ACCEPT [0:0]\n:FORWARD ACCEPT [0:0]\n:OUTPUT ACCEPT [0:0]\nCOMMIT\n"
                               "*raw\n:PREROUTING ACCEPT [0:0]\n:OUTPUT ACCEPT [0:0]\nCOMMIT\n"
                               "*mangle\n:PREROUTING ACCEPT [0:0]\n:INPUT ACCEPT [0:0]\n:FORWARD ACCEPT [0:0]\n"
                               ":OUTPUT ACCEPT [0:0]\n:POSTROUTING ACCEPT [0:0]\nCOMMIT\n"
                               "*nat\n:PREROUTING ACCEPT [0:0]\n:INPUT ACCEPT [0:0]\n:OUTPUT ACCEPT [0:0]\n"
                               ":POSTROUTING ACCEPT [0:0]\nCOMMIT\n";
    inNode({"iptables-legacy-restore"}, empty4);
    inNode({"ip6tables-legacy-restore"}, empty4);
    flushNeighbours();
}

void NetnsLab::flushNeighbours() const
{
    // Start every rule set with cold neighbour caches, as a master that has
    // not talked to the node for a while would: otherwise a rule set that
    // blocks IPv6 neighbour discovery passes on entries cached by the last one.
    sh({"ip", "-n", m_node, "neigh", "flush", "all"});
    std::vector<std::string> seen;
    for (const auto& m : m_masters)
        if (std::find(seen.begin(), seen.end(), m.netns) == seen.end()) {
            seen.push_back(m.netns);
            sh({"ip", "-n", m.netns, "neigh", "flush", "all"});
        }
}

std::string NetnsLab::connect(const MasterNs& m, int port)
{
    std::string verdict = "error";
    std::thread t([&] {
        // setns affects only this thread, so the test's own namespace is untouched.
        const int nsFd = ::open(("/run/netns/" + m.netns).c_str(), O_RDONLY | O_CLOEXEC);
        if (nsFd < 0 || ::setns(nsFd, CLONE_NEWNET) != 0) {
            verdict = "error: cannot enter " + m.netns;
            if (nsFd >= 0)
                ::close(nsFd);
            return;
        }
        ::close(nsFd);
        const bool v6 = m.nodeAddress.find(':') != std::string::npos;
        const int fd = ::socket(v6 ? AF_INET6 : AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
        sockaddr_storage ss{};
        socklen_t len;
        if (v6) {
            auto* a = reinterpret_cast<sockaddr_in6*>(&ss);
            a->sin6_family = AF_INET6;
            a->sin6_port = htons(static_cast<uint16_t>(port));
            ::inet_pton(AF_INET6, m.nodeAddress.c_str(), &a->sin6_addr);
            len = sizeof *a;
        } else {
            auto* a = reinterpret_cast<sockaddr_in*>(&ss);
            a->sin_family = AF_INET;
            a->sin_port = htons(static_cast<uint16_t>(port));
            ::inet_pton(AF_INET, m.nodeAddress.c_str(), &a->sin_addr);
            len = sizeof *a;
        }
        int rc = ::connect(fd, reinterpret_cast<sockaddr*>(&ss), len);
        int err = rc == 0 ? 0 : errno;
        if (err == EINPROGRESS) {
            // Inside veth pairs an answer takes microseconds; silence for
            // this long means the SYN was dropped. Over IPv6, Linux acts on
            // an ICMPv6 "unreachable" only for the retransmitted SYN (seen
            // here: the error arrives after ~1 s), so wait past that.
            pollfd p{fd, POLLOUT, 0};
            if (::poll(&p, 1, v6 ? 1500 : 600) == 0) {
                verdict = "drop";
                ::close(fd);
                return;
            }
            socklen_t el = sizeof err;
            ::getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &el);
        }
        if (err == ECONNREFUSED || err == EHOSTUNREACH || err == ENETUNREACH || err == EACCES || err == EPERM) {
            verdict = "reject";
        } else if (err != 0) {
            verdict = std::string("error: ") + std::strerror(err);
        } else {
            pollfd p{fd, POLLIN, 0};
            char buf[8] = {};
            if (::poll(&p, 1, 10000) == 1 && ::recv(fd, buf, 4, 0) == 4 && std::memcmp(buf, "SSH-", 4) == 0)
                verdict = "accept";
            else
                verdict = "accept-without-ssh-banner";
        }
        ::close(fd);
    });
    t.join();
    return verdict;
}

} // namespace fwtest
