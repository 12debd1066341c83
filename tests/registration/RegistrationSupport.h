#pragma once
// Shared by the registration tests: a registryd on a free loopback port with
// its own master state, a private bus, raw protocol exchanges, and a
// snapshot of the registry to prove that refused input changed nothing.

#include <map>
#include <optional>
#include <string>
#include <vector>

#include "ferry/Crypto.h"
#include "ferry/RegistryProtocol.h"
#include "ferry/Wire.h"
#include "support/TestSupport.h"

namespace ferry::test {

// What a raw exchange brought back: a frame, or the connection closing
// without one.
struct Reply {
    std::optional<Frame> frame;
    std::string closedWhy;  // set when no frame came
    bool isError(const std::string& code) const;
    std::string errorMessage() const;
};

// Sends bytes as they are, half-closes if asked, and reads one frame.
Reply rawExchange(int port, const std::string& bytes, bool closeWrite = false,
                  std::chrono::milliseconds timeout = std::chrono::seconds(5));

// The master id the helpers below prove for (kind 3) when the request names none.
inline constexpr const char* kTestMasterId = "test-master";
// The key a node with secret holds for the test master: what its answers are signed with.
inline std::string testMasterKey(const std::string& secret)
{
    return deriveMasterKey(secret, kTestMasterId);
}

// A request of node for publicKey, timestamped timeMs (0: now) with nonce
// (empty: a random one).
RegistrationRequest newRequest(const std::string& node, const std::string& publicKey, std::int64_t timeMs = 0,
                               std::string nonce = {});
// A whole request (host keys included) signed with the key derived from
// secret for its master id (kind 3; kTestMasterId when it names none), or
// with secret itself (older kinds): the frame's payload.
std::string requestPayload(const RegistrationRequest& request, const std::string& secret);
// The same, as a frame ready to send.
std::string requestFrame(const RegistrationRequest& request, const std::string& secret);
// A signed registration request frame, ready to send.
std::string requestFrame(const std::string& node, const std::string& publicKey, const std::string& secret,
                         std::int64_t timeMs = 0, std::string nonce = {});

class Registryd {
public:
    // Starts ferry-registryd on 127.0.0.1:port with the given master state
    // directory and host key file; extra flags are appended.
    Registryd(const std::string& stateDir, const std::string& hostKeyFile, int port, const std::string& logFile,
              std::vector<std::string> extra = {}, std::vector<std::string> prefix = {});
    int port() const { return m_port; }
    Process& process() { return *m_process; }
    std::string log() const;
    bool waitForLog(const std::string& text, std::chrono::milliseconds timeout = std::chrono::seconds(10)) const;

private:
    int m_port;
    std::string m_logFile;
    std::optional<Process> m_process;
};

// True once name has an owner on the (test) system bus.
bool busNameOwned(const std::string& name);
// `busctl get-property` of a string/number property, value only (quotes removed).
std::string busProperty(const std::string& service, const std::string& path, const std::string& interface,
                        const std::string& property);

// Every row of the nodes table, the pinned and changed host keys, and (if
// asked) the nonce count, as text.
std::string registrySnapshot(const std::string& stateDir, bool withNonces = true);
// One column of one node ("" when absent).
std::string nodeColumn(const std::string& stateDir, const std::string& node, const std::string& column);

// ferryctl with the given extra environment and stdin.
RunResult ferryctl(const std::vector<std::string>& args, const std::map<std::string, std::string>& env = {},
                   const std::string& input = {});

} // namespace ferry::test
