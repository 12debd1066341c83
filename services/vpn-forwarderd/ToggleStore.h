#pragma once
// The two operator toggles, persisted in the state directory
// (vpn-forwarder.state, "key=on|off" lines, written atomically) so that a
// restart re-applies what the operator chose.

#include <string>

namespace vpnfwd {

struct Toggles {
    bool lanAccess = false;
    bool hostControl = false;
    bool operator==(const Toggles&) const = default;
};

class ToggleStore {
public:
    explicit ToggleStore(std::string path) : m_path(std::move(path)) {}

    // Missing file → both off. An unreadable or malformed file is logged and
    // read as both off: the safe side for an appliance that exposes nothing
    // by default.
    Toggles load() const;
    // Throws ferry::Error when the file cannot be written.
    void save(const Toggles& toggles) const;

    const std::string& path() const { return m_path; }

private:
    std::string m_path;
};

} // namespace vpnfwd
