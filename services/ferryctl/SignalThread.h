#pragma once
// Runs a bus connection's event loop on a thread of its own for the life
// of a scope, so that signals (progress) are handled while the main thread
// waits in a method call. The destructor joins that thread: declare it
// after everything the signal handlers refer to, and no handler runs once
// those are gone, whether the call returned or threw.

#include <sdbus-c++/sdbus-c++.h>

namespace ferryctl {

class SignalThread {
public:
    // start: false leaves the connection as it is (no progress wanted).
    SignalThread(sdbus::IConnection& connection, bool start) : m_connection(connection), m_running(start)
    {
        if (m_running)
            m_connection.enterEventLoopAsync();
    }
    ~SignalThread()
    {
        if (m_running)
            m_connection.leaveEventLoop();
    }
    SignalThread(const SignalThread&) = delete;
    SignalThread& operator=(const SignalThread&) = delete;

private:
    sdbus::IConnection& m_connection;
    bool m_running;
};

} // namespace ferryctl
