#include "RegistrationSupport.h"

#include <sys/socket.h>
#include <unistd.h>

#include "ferry/Bus.h"
#include "ferry/Crypto.h"
#include "ferry/Error.h"
#include "ferry/Sqlite.h"
#include "ferry/Stream.h"

namespace ferry::test {

bool Reply::isError(const std::string& code) const
{
    return frame && frame->type == MessageType::Error && decodeError(frame->payload, "test").code == code;
}

std::string Reply::errorMessage() const
{
    if (!frame)
        return "(closed: " + closedWhy + ")";
    if (frame->type != MessageType::Error)
        return std::string("(") + toString(frame->type) + ")";
    const auto e = decodeError(frame->payload, "test");
    return e.code + ": " + e.message;
}

Reply rawExchange(int port, const std::string& bytes, bool closeWrite, std::chrono::milliseconds timeout)
{
    const int fd = connectTcp("127.0.0.1", static_cast<std::uint16_t>(port), std::chrono::seconds(2));
    FdStream stream(fd, fd, "registryd", true);
    const auto deadline = deadlineIn(timeout);
    Reply reply;
    try {
        stream.writeAll(bytes.data(), bytes.size(), deadline);
        if (closeWrite)
            stream.closeWrite();
        reply.frame = readFrame(stream, deadline, kDefaultMaxFrame);
    } catch (const std::exception& e) {
        reply.closedWhy = e.what();
    }
    return reply;
}

RegistrationRequest newRequest(const std::string& node, const std::string& publicKey, std::int64_t timeMs,
                               std::string nonce)
{
    RegistrationRequest r;
    r.node = node;
    r.publicKey = normalizeKeyLine(publicKey);
    r.timeMs = timeMs != 0 ? timeMs : nowMs();
    r.nonce = nonce.empty() ? randomBytes(kNonceSize) : std::move(nonce);
    return r;
}

std::string requestPayload(const RegistrationRequest& request, const std::string& secret)
{
    // Kind 3 is made with the key for the master id, as keyregd does.
    if (request.version3 && request.masterId.empty()) {
        RegistrationRequest r = request;
        r.masterId = kTestMasterId;
        return encodeRegistrationRequest(r, deriveMasterKey(secret, kTestMasterId));
    }
    const std::string key = request.version3 ? deriveMasterKey(secret, request.masterId) : secret;
    return encodeRegistrationRequest(request, key);
}

std::string requestFrame(const RegistrationRequest& request, const std::string& secret)
{
    return encodeFrame(MessageType::Request, requestPayload(request, secret));
}

std::string requestFrame(const std::string& node, const std::string& publicKey, const std::string& secret,
                         std::int64_t timeMs, std::string nonce)
{
    return requestFrame(newRequest(node, publicKey, timeMs, std::move(nonce)), secret);
}

Registryd::Registryd(const std::string& stateDir, const std::string& hostKeyFile, int port, const std::string& logFile,
                     std::vector<std::string> extra, std::vector<std::string> prefix)
    : m_port(port), m_logFile(logFile)
{
    std::vector<std::string> argv = std::move(prefix);
    for (const auto& a : std::vector<std::string>{buildPathForAnyUser("services/registryd/ferry-registryd"), "-v",
                                                  "--listen", "127.0.0.1:" + std::to_string(port), "--state-dir",
                                                  stateDir, "--host-key", hostKeyFile})
        argv.push_back(a);
    argv.insert(argv.end(), extra.begin(), extra.end());
    m_process.emplace(argv, std::map<std::string, std::string>{}, logFile);
    // Ready once it owns its bus name: by then the socket listens too.
    if (!waitUntil([&] { return !m_process->running() || busNameOwned("org.ferry.Registry1"); },
                   std::chrono::seconds(10)))
        throw std::runtime_error("registryd did not come up: " + log());
    if (!m_process->running())
        throw std::runtime_error("registryd exited: " + log());
}

std::string Registryd::log() const
{
    return readFile(m_logFile);
}

bool Registryd::waitForLog(const std::string& text, std::chrono::milliseconds timeout) const
{
    return waitUntil([&] { return log().find(text) != std::string::npos; }, timeout);
}

bool busNameOwned(const std::string& name)
{
    const auto r = run({"busctl", "--system", "list", "--no-legend", "--acquired"});
    return r.out.find(name + " ") != std::string::npos;
}

std::string busProperty(const std::string& service, const std::string& path, const std::string& interface,
                        const std::string& property)
{
    const auto r = run({"busctl", "--system", "get-property", service, path, interface, property});
    std::string v = r.out;
    while (!v.empty() && v.back() == '\n')
        v.pop_back();
    const auto sp = v.find(' ');
    v = sp == std::string::npos ? v : v.substr(sp + 1);
    if (v.size() >= 2 && v.front() == '"' && v.back() == '"')
        v = v.substr(1, v.size() - 2);
    return v;
}

std::string registrySnapshot(const std::string& stateDir, bool withNonces)
{
    Database db(stateDir + "/master.db");
    std::string out;
    Statement s(db, "SELECT name, secret, state, public_key, reason, last_seen, hex(pending_request) FROM nodes ORDER BY name");
    while (s.step())
        for (int c = 0; c < 7; ++c)
            out += s.text(c) + (c == 6 ? "\n" : "|");
    Statement k(db, "SELECT node, key FROM node_host_keys ORDER BY node, position");
    while (k.step())
        out += "hostkey " + k.text(0) + " " + k.text(1) + "\n";
    Statement c(db, "SELECT node, keys FROM node_host_key_changes ORDER BY node");
    while (c.step())
        out += "hostkey-change " + c.text(0) + " " + c.text(1) + "\n";
    if (withNonces) {
        Statement n(db, "SELECT COUNT(*) FROM registry_nonces");
        n.step();
        out += "nonces=" + std::to_string(n.int64(0)) + "\n";
    }
    return out;
}

std::string nodeColumn(const std::string& stateDir, const std::string& node, const std::string& column)
{
    Database db(stateDir + "/master.db");
    Statement s(db, "SELECT " + column + " FROM nodes WHERE name = ?1");
    s.bind(1, node);
    return s.step() ? s.text(0) : std::string();
}

RunResult ferryctl(const std::vector<std::string>& args, const std::map<std::string, std::string>& env,
                   const std::string& input)
{
    std::vector<std::string> argv{buildPath("services/ferryctl/ferryctl")};
    argv.insert(argv.end(), args.begin(), args.end());
    return run(argv, env, input, std::chrono::seconds(60));
}

} // namespace ferry::test
