#pragma once
// One node and one master on this machine: a real sshd with the shipped
// master drop-in (pushes run the relay as ferry-tunnel), a real collectord
// on 127.0.0.1:<a port chosen at run time> and a relay socket, a private bus
// on which pushd is started by D-Bus activation, and ferryctl as the client.
// Nothing here is fixed for the machine (ports, sockets, directories, the
// pushd it stops), so two runs of the suite may share it.

#include <gtest/gtest.h>

#include <map>
#include <memory>
#include <optional>
#include <string>

#include "ferry/MasterStore.h"
#include "support/TestSshd.h"
#include "support/TestSupport.h"

namespace ferry::test {

class PushFixture : public ::testing::Test {
protected:
    void SetUp() override;
    void TearDown() override;

    // ferry.yml for the node with the given masters (ssh ports on 127.0.0.1).
    void writeNodeConfig(const std::vector<int>& sshPorts, const std::string& extra = {});
    void pinHostKey(const std::string& knownHostsLine);
    void enrol(const std::string& secret);
    RunResult ferryctl(const std::vector<std::string>& args, std::chrono::seconds timeout = std::chrono::seconds(60));
    RunResult sample();
    // ferry-push-once run as the timers run it: "--cycle" (ferry-push.service,
    // no argument) or "--evaluate" (ferry-push-fallback.service), with no
    // bus reachable: the one-shot runs must not need one.
    RunResult pushdOnce(const std::string& what);
    void spoolRecords(int count, std::size_t payloadBytes = 100);
    std::uint64_t storedAtMaster();
    std::string collectorLog() const;
    std::string busProperty(const std::string& name);
    // extraEnv: e.g. {"FERRY_FAILPOINT", "collector-after-commit"}.
    void startCollector(const std::map<std::string, std::string>& extraEnv = {});
    // Stops an activated pushd (SIGTERM, then waits), so that the test may
    // replace the spool's files while nothing holds them open.
    void stopPushd();
    // The pid of the pushd that owns org.ferry.Push1 on this test's bus, or
    // nullopt when none does: never another run's pushd from the same build.
    std::optional<pid_t> pushdPid();
    RunResult ferryctlMaster(const std::vector<std::string>& args);

    std::unique_ptr<TempDir> m_root;
    std::string m_nodeConfig, m_nodeState, m_masterState, m_serviceDir;
    std::unique_ptr<SharedDir> m_relayDir;
    std::string m_relaySocket;
    std::unique_ptr<TestSshd> m_sshd;
    std::unique_ptr<TestBus> m_bus;
    std::optional<Process> m_collector;
    // Where the collector listens (TCP, 127.0.0.1), picked by startCollector.
    int m_collectorPort = 0;
    std::string m_secret;
};

} // namespace ferry::test
