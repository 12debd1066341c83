#pragma once
// An attacker for the master's TCP endpoints: a child process (optionally
// another uid) that opens many connections, sends nothing, and holds every
// one the server keeps open, until this object is destroyed.

#include <sys/types.h>

#include <string>
#include <vector>

namespace ferry::test {

struct FloodOptions {
    std::string host = "127.0.0.1";
    int port = 0;
    int connections = 500;
    // Local addresses to connect from, in turn (empty: the kernel's choice).
    std::vector<std::string> sources;
    // The uid/gid to run as (-1: stay as we are).
    int uid = -1;
    int gid = -1;
};

class IdleFlood {
public:
    explicit IdleFlood(const FloodOptions& options);
    ~IdleFlood();
    IdleFlood(const IdleFlood&) = delete;
    IdleFlood& operator=(const IdleFlood&) = delete;

    // After the connections settled (each got its first bytes or an end of
    // stream, or 3 s passed): how many connected, and how many are still
    // open (slots the attacker holds).
    int connected() const { return m_connected; }
    int held() const { return m_held; }
    // Asks the child how many of its connections are still open now.
    int stillOpen();

private:
    pid_t m_pid = -1;
    int m_toChild = -1;
    int m_fromChild = -1;
    int m_connected = 0;
    int m_held = 0;
};

} // namespace ferry::test
