#pragma once
// A private dbus-daemon with the system bus's own defaults (deny own, deny
// method calls except to the bus driver) plus shipped policy files, as
// /usr/share/dbus-1/system.d would give them: for testing who may own and
// call what. Clients run as other users through setpriv.

#include <optional>
#include <string>
#include <vector>

#include "support/TestSupport.h"

namespace ferry::test {

class PolicyBus {
public:
    // policyFiles: paths relative to the source tree, e.g. "dbus/org.ferry.Push1.conf",
    // or absolute paths (a policy a test wrote).
    explicit PolicyBus(const std::vector<std::string>& policyFiles);
    ~PolicyBus();

    const std::string& address() const { return m_address; }
    // busctl as user (root, ferry, nobody) against this bus.
    RunResult busctlAs(const std::string& user, std::vector<std::string> args) const;
    // argv prefix that runs a program as user (empty for root).
    static std::vector<std::string> asUser(const std::string& user);

private:
    TempDir m_dir;
    std::string m_address;
    std::optional<Process> m_daemon;
};

} // namespace ferry::test
