#include "ferry/RegistryProtocol.h"

#include <array>

#include "ferry/Crypto.h"
#include "ferry/Error.h"
#include "ferry/Wire.h"

namespace ferry {

namespace {

// Different labels per direction: a request MAC can never pass as a response MAC.
constexpr std::string_view kRequestLabel{"ferry-registration-request-v1\0", 30};
constexpr std::string_view kResponseLabel{"ferry-registration-response-v1\0", 31};

constexpr std::array<std::string_view, 7> kKeyTypes = {
    "ssh-ed25519", "ecdsa-sha2-nistp256", "ecdsa-sha2-nistp384", "ecdsa-sha2-nistp521",
    "ssh-rsa", "sk-ssh-ed25519@openssh.com", "sk-ecdsa-sha2-nistp256@openssh.com"};

bool isBase64Char(char c)
{
    return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '+' || c == '/' ||
           c == '=';
}

std::string macOver(std::string_view label, std::string_view secret, std::string_view signedBytes)
{
    std::string data;
    data.reserve(label.size() + signedBytes.size());
    data.append(label);
    data.append(signedBytes);
    return hmacSha256(secret, data);
}

} // namespace

const char* toString(RegistrationState state)
{
    switch (state) {
    case RegistrationState::Accepted: return "accepted";
    case RegistrationState::Pending: return "pending";
    case RegistrationState::Declined: return "declined";
    }
    return "unknown";
}

bool isValidNodeName(std::string_view name)
{
    if (name.empty() || name.size() > kMaxName || name.front() == '.' || name.front() == '-')
        return false;
    for (char c : name) {
        const bool ok = (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '.' ||
                        c == '_' || c == '-';
        if (!ok)
            return false;
    }
    return true;
}

std::string normalizeKeyLine(std::string_view line)
{
    while (!line.empty() && (line.back() == '\n' || line.back() == '\r' || line.back() == ' '))
        line.remove_suffix(1);
    const auto sp = line.find(' ');
    if (sp == std::string_view::npos)
        throw ProtocolError("Failed to parse the public key: expected '<type> <base64>'");
    const std::string_view type = line.substr(0, sp);
    std::string_view b64 = line.substr(sp + 1);
    b64 = b64.substr(0, b64.find(' '));
    bool known = false;
    for (auto t : kKeyTypes)
        known = known || t == type;
    if (!known)
        throw ProtocolError("Failed to parse the public key: unsupported key type '" +
                            std::string(type.substr(0, 40)) + "'");
    if (b64.size() < 16)
        throw ProtocolError("Failed to parse the public key: the base64 part is missing or too short");
    for (char c : b64)
        if (!isBase64Char(c))
            throw ProtocolError("Failed to parse the public key: the key data is not base64");
    return std::string(type) + " " + std::string(b64);
}

std::string registrationRequestMac(std::string_view secret, std::string_view signedBytes)
{
    return macOver(kRequestLabel, secret, signedBytes);
}

std::string encodeRegistrationRequest(const RegistrationRequest& request, std::string_view secret)
{
    Encoder inner;
    inner.u8(kRegisterRequestKind)
        .bytes(request.node)
        .bytes(request.publicKey)
        .bytes(request.mode)
        .u32(request.sshPort)
        .i64(request.timeMs)
        .bytes(request.nonce);
    const std::string signedBytes = inner.take();
    Encoder outer;
    outer.bytes(signedBytes).bytes(registrationRequestMac(secret, signedBytes));
    return outer.take();
}

SignedRequest decodeRegistrationRequest(std::string_view payload, const std::string& peer)
{
    const std::string what = "registration request from " + peer;
    Decoder outer(payload, what);
    SignedRequest out;
    out.signedBytes = outer.bytes("signed request", kMaxRegistryFrame);
    out.mac = outer.bytes("mac", kMacSize);
    outer.finish();
    if (out.mac.size() != kMacSize)
        throw ProtocolError("Bad " + what + ": the MAC is " + std::to_string(out.mac.size()) + " bytes, expected " +
                            std::to_string(kMacSize));

    Decoder inner(out.signedBytes, what);
    const auto kind = inner.u8("kind");
    if (kind != kRegisterRequestKind)
        throw ProtocolError("Bad " + what + ": unknown request kind " + std::to_string(kind));
    auto& r = out.request;
    r.node = inner.bytes("node", kMaxName);
    r.publicKey = inner.bytes("public key", kMaxKeyLine);
    r.mode = inner.bytes("mode", 8);
    const auto sshPort = inner.u32("ssh port");
    r.timeMs = inner.i64("time");
    r.nonce = inner.bytes("nonce", kNonceSize);
    inner.finish();
    if (!isValidNodeName(r.node))
        throw ProtocolError("Bad " + what + ": invalid node name (1–64 of A-Z a-z 0-9 . _ -)");
    if (r.mode != "auto" && r.mode != "push" && r.mode != "pull")
        throw ProtocolError("Bad " + what + ": mode '" + r.mode + "' is not auto, push or pull");
    if (sshPort < 1 || sshPort > 65535)
        throw ProtocolError("Bad " + what + ": ssh port " + std::to_string(sshPort) + " is out of range");
    r.sshPort = static_cast<std::uint16_t>(sshPort);
    if (r.nonce.size() != kNonceSize)
        throw ProtocolError("Bad " + what + ": the nonce is " + std::to_string(r.nonce.size()) + " bytes, expected " +
                            std::to_string(kNonceSize));
    try {
        if (normalizeKeyLine(r.publicKey) != r.publicKey)
            throw ProtocolError("the key line is not in '<type> <base64>' form");
    } catch (const ProtocolError& e) {
        throw ProtocolError("Bad " + what + " for node " + r.node + ": " + e.what());
    }
    return out;
}

bool verifyRegistrationRequest(const SignedRequest& request, std::string_view secret)
{
    return !secret.empty() && constantTimeEqual(registrationRequestMac(secret, request.signedBytes), request.mac);
}

std::string encodeRegistrationResponse(const RegistrationResponse& response, std::string_view secret)
{
    Encoder inner;
    inner.u8(static_cast<std::uint8_t>(response.state))
        .bytes(response.reason.substr(0, kMaxReason))
        .bytes(response.requestNonce)
        .i64(response.serverTimeMs)
        .u32(static_cast<std::uint32_t>(response.hostKeys.size()));
    for (const auto& k : response.hostKeys)
        inner.bytes(k);
    inner.bytes(response.pullKey);
    const std::string signedBytes = inner.take();
    Encoder outer;
    outer.bytes(signedBytes).bytes(secret.empty() ? std::string() : macOver(kResponseLabel, secret, signedBytes));
    return outer.take();
}

SignedResponse decodeRegistrationResponse(std::string_view payload, const std::string& peer)
{
    const std::string what = "registration response from " + peer;
    Decoder outer(payload, what);
    SignedResponse out;
    out.signedBytes = outer.bytes("signed response", kMaxRegistryFrame);
    out.mac = outer.bytes("mac", kMacSize);
    outer.finish();
    if (!out.mac.empty() && out.mac.size() != kMacSize)
        throw ProtocolError("Bad " + what + ": the MAC is " + std::to_string(out.mac.size()) + " bytes");
    Decoder inner(out.signedBytes, what);
    auto& r = out.response;
    const auto state = inner.u8("state");
    if (state < 1 || state > 3)
        throw ProtocolError("Bad " + what + ": unknown state " + std::to_string(state));
    r.state = static_cast<RegistrationState>(state);
    r.reason = inner.bytes("reason", kMaxReason);
    r.requestNonce = inner.bytes("request nonce", kNonceSize);
    r.serverTimeMs = inner.i64("server time");
    const auto count = inner.u32("host key count");
    if (count > kMaxHostKeys)
        throw ProtocolError("Bad " + what + ": " + std::to_string(count) + " host keys (at most " +
                            std::to_string(kMaxHostKeys) + ")");
    for (std::uint32_t i = 0; i < count; ++i) {
        std::string key = inner.bytes("host key", kMaxKeyLine);
        try {
            r.hostKeys.push_back(normalizeKeyLine(key));
        } catch (const ProtocolError& e) {
            throw ProtocolError("Bad " + what + ": host key " + std::to_string(i + 1) + ": " + e.what());
        }
    }
    if (inner.remaining() > 0) {
        std::string key = inner.bytes("pull key", kMaxKeyLine);
        try {
            if (!key.empty())
                r.pullKey = normalizeKeyLine(key);
        } catch (const ProtocolError& e) {
            throw ProtocolError("Bad " + what + ": pull key: " + e.what());
        }
    }
    inner.finish();
    return out;
}

bool verifyRegistrationResponse(const SignedResponse& response, std::string_view secret)
{
    return !secret.empty() && response.mac.size() == kMacSize &&
           constantTimeEqual(macOver(kResponseLabel, secret, response.signedBytes), response.mac);
}

} // namespace ferry
