#pragma once
// The network namespaces the differential tests use: a "node" with a real
// sshd (on ports 22 and 2222), and two "master" namespaces joined to it by veth pairs. Addresses
// are from the documentation ranges (198.51.100.0/25 and .128/25,
// 2001:db8:1::/64) and never leave these namespaces. Everything is removed on
// destruction, also when a test fails.

#include <memory>
#include <optional>
#include <stdexcept>
#include <string>
#include <vector>

#include "support/TestSupport.h"

namespace fwtest {

struct MasterNs {
    std::string netns;
    std::string address;      // as the master connects from
    std::string nodeAddress;  // where the master connects to
};

class NetnsLab {
public:
    NetnsLab();  // throws std::runtime_error when the lab cannot be built
    ~NetnsLab();
    NetnsLab(const NetnsLab&) = delete;
    NetnsLab& operator=(const NetnsLab&) = delete;

    const std::string& node() const { return m_node; }
    const std::vector<MasterNs>& masters() const { return m_masters; }
    std::vector<std::string> nodePrefix() const { return {"ip", "netns", "exec", m_node}; }
    const std::string& sshdConfig() const { return m_sshdConfig; }

    // Runs a command inside the node namespace; throws with its stderr on failure.
    std::string inNode(const std::vector<std::string>& argv, const std::string& input = {}) const;
    // Removes every rule of every backend and sets policies back to ACCEPT.
    void resetFirewall() const;
    // Forgets neighbour entries on all sides, including failed ones that
    // would make the next IPv6 connect fail at once.
    void flushNeighbours() const;

    // What the kernel does with a real connection from a master namespace:
    // "accept" (sshd answered with its banner), "drop" (no answer before
    // the deadline) or "reject" (refused or unreachable).
    static std::string connect(const MasterNs& m, int port);

private:
    void sh(const std::vector<std::string>& argv) const;

    std::string m_node;
    std::vector<MasterNs> m_masters;
    std::vector<std::string> m_created;
    ferry::test::TempDir m_dir;
    std::string m_sshdConfig;
    std::optional<ferry::test::Process> m_sshd;
};

// Wraps a command so that it gets a private /run with /run/sshd (sshd -T and
// sshd -D need it) without touching the host's /run.
std::vector<std::string> privateRunPrefix();

// One lab shared by a test suite: built in SetUpTestSuite (root only),
// removed in TearDownTestSuite; skipUnlessUsable() from SetUp skips the
// test with the reason when there is no lab.
class SuiteLab {
public:
    void build()
    {
        if (!ferry::test::isRoot())
            return;
        try {
            m_lab = std::make_unique<NetnsLab>();
        } catch (const std::exception& e) {
            m_error = e.what();
        }
    }
    void remove() { m_lab.reset(); }
    // Empty when the lab is usable, else why the test cannot run.
    std::string unusable() const
    {
        if (!ferry::test::isRoot())
            return "needs root to create network namespaces";
        return m_lab ? std::string() : "cannot build the namespaces: " + m_error;
    }
    NetnsLab& operator*() const { return *m_lab; }
    NetnsLab* operator->() const { return m_lab.get(); }

private:
    std::unique_ptr<NetnsLab> m_lab;
    std::string m_error;
};

} // namespace fwtest
