#pragma once
// The exception types every Ferry component throws. Messages read
// "Failed to <do thing> <object>: <cause>"; callers add context by catching
// and rethrowing with a longer message, never by swallowing.

#include <stdexcept>
#include <string>

namespace ferry {

class Error : public std::runtime_error {
public:
    using std::runtime_error::runtime_error;
};

// A configuration file that cannot be used; the message names file, line and key.
class ConfigError : public Error {
public:
    using Error::Error;
};

// The peer sent something that breaks the protocol (bad frame, bad field).
class ProtocolError : public Error {
public:
    using Error::Error;
};

// A read or write did not complete before its deadline.
class TimeoutError : public Error {
public:
    using Error::Error;
};

// The peer closed the stream (cleanly or not) before we were done.
class ClosedError : public Error {
public:
    using Error::Error;
};

// Authentication of either side failed (host key, HMAC, unknown node).
class AuthError : public Error {
public:
    using Error::Error;
};

// An error with a documented D-Bus name, e.g. "org.ferry.Push1.Error.NotRegistered".
// Adaptors pass it to callers unchanged; every other exception becomes the
// interface's Internal error.
class BusError : public Error {
public:
    BusError(std::string name, const std::string& message) : Error(message), m_name(std::move(name)) {}
    const std::string& name() const noexcept { return m_name; }

private:
    std::string m_name;
};

// strerror() for an errno value, thread-safe.
std::string errnoMessage(int err);

// Throws Error("Failed to <what>: <strerror(errno)>").
[[noreturn]] void throwErrno(const std::string& what);

} // namespace ferry
