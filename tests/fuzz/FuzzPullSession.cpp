// libFuzzer target: the node's side of a pull session after the handshake
// (PullServer::run). The driver plays an honest master for the handshake —
// it reads the node's Hello and answers with a correct proof, so the fuzzer
// gets past the MAC — and then the fuzz input is everything else the master
// sends (Acks, Byes, anything), against a spool of a few records. The first
// input byte picks the command: fetch with that cursor, or status.

#include <algorithm>
#include <cstring>

#include "FuzzSupport.h"
#include "ferry/Bus.h"
#include "ferry/Crypto.h"
#include "ferry/Error.h"
#include "ferry/PullServer.h"
#include "ferry/Session.h"
#include "ferry/Wire.h"

namespace {

constexpr const char* kSecret = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";
constexpr const char* kNode = "fuzz-node";

// The master's end: collects what the node writes; reads are the handshake
// answer, then the fuzz input, then end of stream.
class MasterStream final : public ferry::ByteStream {
public:
    explicit MasterStream(std::string_view input) : m_input(input) {}

    std::size_t readSome(void* buf, std::size_t size, ferry::Deadline) override
    {
        if (!m_authSent) {
            ferry::Frame hello;
            std::size_t used = 0;
            if (!ferry::parseFrame(m_written, 1 << 16, hello, used))
                return 0;
            const auto h = ferry::decodeHello(hello.payload, "node");
            const std::string nonce(ferry::kNonceSize, 'm');
            // Session version 3 (Session.h): the master proves first, with
            // no epoch in its proof, with the key for the master id it names.
            ferry::AuthMessage auth{kNode, nonce, "", ferry::kSessionVersion, 0, "", "fuzz-master", ""};
            auth.mac =
                ferry::sessionProofV3(ferry::deriveMasterKey(kSecret, "fuzz-master"), "master", ferry::kPullProtocol,
                                      auth.version, 0, h.challenge, nonce, kNode, "", "fuzz-master", "");
            m_pending = ferry::encodeFrame(ferry::MessageType::Auth, ferry::encode(auth));
            m_authSent = true;
        }
        if (m_pending.empty()) {
            m_pending.assign(m_input);
            m_input = {};
        }
        const std::size_t n = std::min(size, m_pending.size());
        std::memcpy(buf, m_pending.data(), n);
        m_pending.erase(0, n);
        return n;
    }
    void writeAll(const void* buf, std::size_t size, ferry::Deadline) override
    {
        if (m_written.size() < (1u << 16))
            m_written.append(static_cast<const char*>(buf), size);
    }
    std::string peer() const override { return "fuzz-master"; }

private:
    std::string_view m_input;
    std::string m_pending;
    std::string m_written;
    bool m_authSent = false;
};

} // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size)
{
    if (size == 0)
        return 0;
    ferry::Spool spool(":memory:", ferry::SpoolLimits{});
    const std::int64_t now = ferry::nowMs();
    for (int i = 0; i < 6; ++i)
        spool.append("load", "load1 0.0" + std::to_string(i) + "\n", now + i);
    ferry::PullCommand command;
    if (data[0] != 0xff) {
        command.verb = ferry::PullVerb::Fetch;
        command.cursor = data[0] % 8;
    }
    MasterStream stream(fuzz::view(data + 1, size - 1));
    ferry::PullServerOptions options;
    options.nodeName = kNode;
    options.secret = kSecret;
    options.batchRecords = 2;
    options.window = 2;
    options.ioTimeout = std::chrono::milliseconds(50);
    try {
        ferry::PullServer server(stream, spool, options);
        const auto result = server.run(command);
        // An Ack deletes only what was sent: never more than the spool held.
        if (result.acknowledgedUpTo > 6)
            __builtin_trap();
    } catch (const ferry::AuthError&) {
        __builtin_trap();  // the driver's proof is always right: the handshake must pass
    } catch (const ferry::Error&) {
    }
    return 0;
}
