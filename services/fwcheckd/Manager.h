#pragma once
// Holds the last report, runs checks, and keeps the result in the state
// directory so that a freshly started daemon answers at once.

#include <functional>
#include <mutex>
#include <string>

#include "Checker.h"

namespace fwcheck {

class Manager {
public:
    Manager(Checker& checker, std::string stateFile) : m_checker(checker), m_stateFile(std::move(stateFile)) {}

    // Reads the saved report; a missing or damaged file leaves "never checked"
    // (a damaged one is logged and ignored).
    void loadSaved();
    // Runs a check (thread-safe), saves it, and returns it.
    Report check();
    Report current() const;

private:
    Checker& m_checker;
    std::string m_stateFile;
    mutable std::mutex m_mutex;
    std::mutex m_checkMutex;
    Report m_report;
};

} // namespace fwcheck
