#pragma once
// A byte stream with deadlines: what the wire codec reads frames from. The
// two implementations are a file descriptor (socket, pipe, stdio) and an SSH
// channel (SshSession.h).

#include <chrono>
#include <cstddef>
#include <string>

#include "ferry/Clock.h"

namespace ferry {

class ByteStream {
public:
    virtual ~ByteStream() = default;
    // Reads 1..size bytes; returns 0 at end of stream; throws TimeoutError
    // when nothing arrived before the deadline.
    virtual std::size_t readSome(void* buf, std::size_t size, Deadline deadline) = 0;
    // Writes everything or throws (TimeoutError, ClosedError, Error).
    virtual void writeAll(const void* buf, std::size_t size, Deadline deadline) = 0;
    // True when a read would return at once with data (without waiting):
    // the master's session stores whatever batches have already arrived in
    // one transaction. false where a stream cannot tell.
    virtual bool hasInput() { return false; }
    // Waits until input has arrived (true), or wakeFd became readable or the
    // deadline passed (false): the master's session keeps reading batches
    // while a thread commits the ones before, and wakes when that commit is
    // done. A stream that cannot wait on its input this way waits for wakeFd
    // alone (the default), so that its caller reads only between commits.
    virtual bool waitForInput(int wakeFd, Deadline deadline);
    // Copies up to size bytes that have already arrived into buf without
    // taking them (readSome returns them again); returns how many. The
    // master's session looks whether the node's Bye is already there, so
    // that its last commit needs no thread. 0 where a stream cannot tell
    // (the default) or nothing has arrived.
    virtual std::size_t peek(void* /*buf*/, std::size_t /*size*/) { return 0; }
    // Tells the peer no more data will come (half-close where supported).
    virtual void closeWrite() {}
    // Who is at the other end, for error messages ("127.0.0.1:40112", "ssh master1").
    virtual std::string peer() const = 0;
};

// Reads exactly size bytes; throws ClosedError naming how much arrived.
void readExact(ByteStream& stream, void* buf, std::size_t size, Deadline deadline, const char* what);

// A non-blocking fd (it is switched to O_NONBLOCK). Owns the fd if told so.
class FdStream : public ByteStream {
public:
    FdStream(int readFd, int writeFd, std::string peer, bool owns);
    ~FdStream() override;
    FdStream(const FdStream&) = delete;
    FdStream& operator=(const FdStream&) = delete;

    // A descriptor that ends the stream when it becomes readable or hangs
    // up: every wait of this stream watches it too, and a read or write
    // then throws ClosedError. collectord serves a relayed session on the
    // pipes sshd gave the relay and watches the relay's socket, so that
    // the relay's end, or the server cutting the connection (shutdown of
    // that socket), ends the session as it would end one on the socket.
    // Not owned.
    void watch(int fd) { m_watchFd = fd; }

    std::size_t readSome(void* buf, std::size_t size, Deadline deadline) override;
    void writeAll(const void* buf, std::size_t size, Deadline deadline) override;
    bool hasInput() override;
    bool waitForInput(int wakeFd, Deadline deadline) override;
    // A socket's with MSG_PEEK; a pipe's by reading what has arrived into
    // a buffer of this stream that readSome hands out first.
    std::size_t peek(void* buf, std::size_t size) override;
    void closeWrite() override;
    std::string peer() const override { return m_peer; }

private:
    // Throws ClosedError when the watched descriptor has fired.
    void checkWatched(short revents) const;

    int m_readFd;
    int m_writeFd;
    std::string m_peer;
    bool m_owns;
    int m_watchFd = -1;
    bool m_readIsSocket = true;  // until a recv says ENOTSOCK
    bool m_writeIsSocket = true; // until a send says ENOTSOCK
    std::string m_ahead;         // peeked from a pipe, not yet read
};

// Connects a TCP socket with a deadline; returns the connected fd.
int connectTcp(const std::string& host, std::uint16_t port, std::chrono::milliseconds timeout);
// "addr:port" of a connected socket's peer.
std::string socketPeer(int fd);

} // namespace ferry
