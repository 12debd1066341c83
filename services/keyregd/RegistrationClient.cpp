#include "RegistrationClient.h"

#include "ferry/Bus.h"
#include "ferry/Crypto.h"
#include "ferry/PullProtocol.h"
#include "ferry/Stream.h"
#include "ferry/Wire.h"

namespace keyregd {

std::string masterLabel(const ferry::MasterAddress& master)
{
    const bool v6 = master.host.find(':') != std::string::npos;
    return (v6 ? "[" + master.host + "]" : master.host) + ":" + std::to_string(master.registryPort);
}

MasterAnswer registerWithMaster(const ferry::MasterAddress& master, const std::string& node,
                                const std::string& publicKey, const std::string& mode, std::uint16_t sshPort,
                                const std::vector<std::string>& sshdHostKeys, const std::string& secret,
                                ClientTimeouts timeouts)
{
    const std::string label = masterLabel(master);
    ferry::RegistrationRequest request;
    request.node = node;
    request.publicKey = ferry::normalizeKeyLine(publicKey);
    request.mode = mode;
    request.sshPort = sshPort;
    request.timeMs = ferry::nowMs();
    request.nonce = ferry::randomBytes(ferry::kNonceSize);
    request.hostKeys = sshdHostKeys;
    // Everything this master sees is made with the key derived for its id,
    // never with the node secret itself.
    request.masterId = ferry::masterIdOf(master);
    const std::string key = ferry::deriveMasterKey(secret, request.masterId);

    const int fd = ferry::connectTcp(master.host, master.registryPort, timeouts.connect);
    ferry::FdStream stream(fd, fd, "master " + label, true);
    const auto deadline = ferry::deadlineIn(timeouts.io);
    ferry::writeFrame(stream, ferry::MessageType::Request, ferry::encodeRegistrationRequest(request, key), deadline);
    const auto frame = ferry::readFrame(stream, deadline, ferry::kMaxRegistryFrame);
    if (frame.type == ferry::MessageType::Error) {
        const auto e = ferry::decodeError(frame.payload, stream.peer());
        // Text from a peer that has not proved anything yet: escaped before
        // it reaches a log line or an operator's terminal.
        throw RegistrationRefused(ferry::escapeForLog(e.code, 40), "master " + label + " refused the registration (" +
                                                                       ferry::escapeForLog(e.code, 40) + "): " +
                                                                       ferry::escapeForLog(e.message, 400));
    }
    if (frame.type != ferry::MessageType::Response)
        throw ferry::ProtocolError("Unexpected " + std::string(ferry::toString(frame.type)) + " from master " + label);

    const auto signedResponse = ferry::decodeRegistrationResponse(frame.payload, stream.peer());
    const auto& r = signedResponse.response;
    if (!ferry::constantTimeEqual(r.requestNonce, request.nonce))
        throw ferry::AuthError("Failed to register with master " + label +
                               ": its answer does not belong to our request (nonce mismatch)");
    MasterAnswer answer;
    answer.state = r.state;
    answer.reason = ferry::escapeForLog(r.reason, 400);
    if (!signedResponse.mac.empty()) {
        if (!ferry::verifyRegistrationResponse(signedResponse, key))
            throw ferry::AuthError("Failed to register with master " + label +
                                   ": its answer is not signed with this node's key for master id '" +
                                   ferry::escapeForLog(request.masterId) +
                                   "' (not our master, another master answering for it, or it holds another key "
                                   "for this node)");
        answer.signedByMaster = true;
        answer.hostKeys = r.hostKeys;
        answer.minPushPeriodS = r.minPushPeriodS;
        answer.minPullIntervalS = r.minPullIntervalS;
        answer.certificate = r.certificate;
        answer.pullKey = r.pullKey;
    } else if (r.state != ferry::RegistrationState::Pending) {
        // Only "pending" may come unsigned (the master has no secret for us yet).
        throw ferry::AuthError("Failed to register with master " + label + ": it answered '" +
                               ferry::toString(r.state) + "' without a signature");
    }
    if (answer.state == ferry::RegistrationState::Accepted && answer.hostKeys.empty())
        throw ferry::ProtocolError("Failed to register with master " + label +
                                   ": it accepted us but sent no SSH host key to pin");
    return answer;
}

} // namespace keyregd
