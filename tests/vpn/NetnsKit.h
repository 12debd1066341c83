#pragma once
// Network-namespace pieces for the forwarder's end-to-end tests: namespaces
// that delete themselves, TCP listeners and clients living inside a given
// namespace (created from this process with setns on a short-lived thread,
// so no helper processes are needed), and `ip`/`nft` run inside one.

#include <atomic>
#include <chrono>
#include <string>
#include <thread>
#include <vector>

#include "support/TestSupport.h"

namespace vpntest {

// Runs a command and fails loudly (exception) when it exits non-zero.
std::string mustRun(const std::vector<std::string>& argv);

// A named network namespace ("ip netns add"); deleted on destruction.
class Netns {
public:
    explicit Netns(std::string name);
    ~Netns();
    Netns(const Netns&) = delete;
    Netns& operator=(const Netns&) = delete;
    const std::string& name() const { return m_name; }
    // `ip -n <name> ARGS…`
    std::string ip(const std::vector<std::string>& args) const;
    // `ip netns exec <name> ARGS…`, not checked.
    ferry::test::RunResult exec(const std::vector<std::string>& args) const;

private:
    std::string m_name;
};

// Deletes namespaces named "<prefix><pid>-…" whose pid is gone (left behind
// by a test that crashed).
void removeStaleNamespaces(const std::string& prefix);

// A TCP socket created inside the namespace.
int tcpSocketIn(const std::string& netns, int family);

// Listens on [::]:<port> (IPv4 too) for each port inside the namespace and answers
// every connection with "<tag>:<port>\n", then closes it.
class BannerServer {
public:
    BannerServer(const std::string& netns, const std::vector<int>& ports, std::string tag);
    ~BannerServer();
    BannerServer(const BannerServer&) = delete;
    BannerServer& operator=(const BannerServer&) = delete;

private:
    void serve();
    std::vector<std::pair<int, int>> m_listeners;  // fd, port
    std::string m_tag;
    int m_stopFd = -1;
    std::thread m_thread;
};

// Connects from inside netns to address:port (IPv4, or IPv6 with an optional
// "%interface" scope) and returns the banner line
// ("container:22"), or "refused", "timeout", "unreachable", "error: …".
std::string connectFrom(const std::string& netns, const std::string& address, int port,
                        std::chrono::milliseconds timeout = std::chrono::milliseconds(1500));

} // namespace vpntest
