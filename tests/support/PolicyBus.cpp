#include "support/PolicyBus.h"

#include <sys/stat.h>

#include <cstdlib>
#include <filesystem>
#include <stdexcept>

namespace ferry::test {

PolicyBus::PolicyBus(const std::vector<std::string>& policyFiles)
{
    ::chmod(m_dir.path().c_str(), 0755);
    const std::string socket = m_dir / "bus";
    std::string includes;
    for (const auto& f : policyFiles)
        includes += "  <include>" + (!f.empty() && f[0] == '/' ? f : sourcePath(f)) + "</include>\n";
    writeFile(m_dir / "bus.conf",
              "<!DOCTYPE busconfig PUBLIC \"-//freedesktop//DTD D-Bus Bus Configuration 1.0//EN\"\n"
              " \"http://www.freedesktop.org/standards/dbus/1.0/busconfig.dtd\">\n<busconfig>\n"
              "  <type>system</type>\n  <listen>unix:path=" + socket + "</listen>\n  <auth>EXTERNAL</auth>\n"
              "  <policy context=\"default\">\n    <allow user=\"*\"/>\n    <deny own=\"*\"/>\n"
              "    <deny send_type=\"method_call\"/>\n    <allow send_destination=\"org.freedesktop.DBus\"/>\n"
              "    <allow send_type=\"signal\"/>\n    <allow send_requested_reply=\"true\" send_type=\"method_return\"/>\n"
              "    <allow send_requested_reply=\"true\" send_type=\"error\"/>\n"
              "    <allow receive_type=\"method_call\"/>\n    <allow receive_type=\"method_return\"/>\n"
              "    <allow receive_type=\"error\"/>\n    <allow receive_type=\"signal\"/>\n"
              "  </policy>\n" + includes + "</busconfig>\n",
              0644);
    m_daemon.emplace(std::vector<std::string>{"/usr/bin/dbus-daemon", "--nofork", "--nopidfile",
                                              "--config-file=" + (m_dir / "bus.conf")},
                     std::map<std::string, std::string>{}, m_dir / "dbus.log");
    if (!waitUntil([&] { return std::filesystem::exists(socket); }))
        throw std::runtime_error("policy bus did not start: " + readFile(m_dir / "dbus.log"));
    m_address = "unix:path=" + socket;
    ::setenv("DBUS_SYSTEM_BUS_ADDRESS", m_address.c_str(), 1);
}

PolicyBus::~PolicyBus()
{
    ::unsetenv("DBUS_SYSTEM_BUS_ADDRESS");
}

std::vector<std::string> PolicyBus::asUser(const std::string& user)
{
    if (user == "root")
        return {};
    const std::string group = user == "nobody" ? "65534" : user;
    return {"/usr/bin/setpriv", "--reuid=" + user, "--regid=" + group, "--clear-groups"};
}

RunResult PolicyBus::busctlAs(const std::string& user, std::vector<std::string> args) const
{
    auto argv = asUser(user);
    argv.push_back("/usr/bin/busctl");
    argv.push_back("--address=" + m_address);
    argv.insert(argv.end(), args.begin(), args.end());
    return run(argv);
}

} // namespace ferry::test
