#include "ferry/RegistryProtocol.h"

#include <array>


#include "ferry/Crypto.h"
#include "ferry/Error.h"
#include "ferry/PullProtocol.h"
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

} // namespace

std::string decodeBase64Strict(std::string_view in)
{
    if (in.empty() || in.size() % 4 != 0)
        throw ProtocolError("the key data is not canonical base64 (length " + std::to_string(in.size()) + ")");
    auto value = [](char c) -> int {
        if (c >= 'A' && c <= 'Z') return c - 'A';
        if (c >= 'a' && c <= 'z') return c - 'a' + 26;
        if (c >= '0' && c <= '9') return c - '0' + 52;
        if (c == '+') return 62;
        if (c == '/') return 63;
        return -1;
    };
    std::size_t pad = 0;
    if (in.back() == '=')
        pad = in[in.size() - 2] == '=' ? 2 : 1;
    std::string out;
    out.reserve(in.size() / 4 * 3);
    for (std::size_t i = 0; i < in.size(); i += 4) {
        const bool last = i + 4 == in.size();
        std::uint32_t group = 0;
        for (std::size_t j = 0; j < 4; ++j) {
            const char c = in[i + j];
            int v = 0;
            if (c == '=') {
                if (!last || j < 4 - pad)
                    throw ProtocolError("the key data is not canonical base64 (misplaced '=')");
            } else if ((v = value(c)) < 0) {
                throw ProtocolError("the key data is not base64");
            }
            group = (group << 6) | static_cast<std::uint32_t>(v);
        }
        const std::size_t n = last ? 3 - pad : 3;
        if (last && pad > 0 && (group & ((1u << (8 * pad)) - 1)) != 0)
            throw ProtocolError("the key data is not canonical base64 (stray bits)");
        for (std::size_t k = 0; k < n; ++k)
            out.push_back(static_cast<char>((group >> (16 - 8 * k)) & 0xff));
    }
    return out;
}

namespace {

std::string encodeBase64NoPad(std::string_view in)
{
    static constexpr char kAlphabet[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    std::string out;
    std::size_t i = 0;
    for (; i + 3 <= in.size(); i += 3) {
        const std::uint32_t g = (static_cast<std::uint8_t>(in[i]) << 16) | (static_cast<std::uint8_t>(in[i + 1]) << 8) |
                                static_cast<std::uint8_t>(in[i + 2]);
        for (int k = 3; k >= 0; --k)
            out.push_back(kAlphabet[(g >> (6 * k)) & 63]);
    }
    const std::size_t rest = in.size() - i;
    if (rest > 0) {
        std::uint32_t g = static_cast<std::uint32_t>(static_cast<std::uint8_t>(in[i])) << 16;
        if (rest == 2)
            g |= static_cast<std::uint32_t>(static_cast<std::uint8_t>(in[i + 1])) << 8;
        out.push_back(kAlphabet[(g >> 18) & 63]);
        out.push_back(kAlphabet[(g >> 12) & 63]);
        if (rest == 2)
            out.push_back(kAlphabet[(g >> 6) & 63]);
    }
    return out;
}

// Reads the SSH wire format of a public key blob (RFC 4253 6.6, RFC 5656,
// RFC 8709, OpenSSH PROTOCOL.u2f) with a bound on every field.
class BlobReader {
public:
    explicit BlobReader(std::string_view data) : m_data(data) {}
    std::string_view string(const char* field, std::size_t maxSize)
    {
        if (m_data.size() - m_pos < 4)
            throw ProtocolError(std::string("the key blob ends inside the length of ") + field);
        const auto* p = reinterpret_cast<const unsigned char*>(m_data.data() + m_pos);
        const std::uint32_t n = (std::uint32_t{p[0]} << 24) | (std::uint32_t{p[1]} << 16) | (std::uint32_t{p[2]} << 8) | p[3];
        m_pos += 4;
        if (n > maxSize || n > m_data.size() - m_pos)
            throw ProtocolError(std::string("the key blob's ") + field + " is " + std::to_string(n) +
                                " bytes (at most " + std::to_string(std::min(maxSize, m_data.size() - m_pos)) + ")");
        const auto out = m_data.substr(m_pos, n);
        m_pos += n;
        return out;
    }
    // A positive mpint without superfluous leading zero; returns its bit length.
    std::size_t positiveMpint(const char* field, std::size_t maxBytes)
    {
        const auto v = string(field, maxBytes + 1);
        if (v.empty() || (static_cast<std::uint8_t>(v[0]) & 0x80) != 0)
            throw ProtocolError(std::string("the key blob's ") + field + " is not a positive integer");
        if (v[0] == 0 && (v.size() < 2 || (static_cast<std::uint8_t>(v[1]) & 0x80) == 0))
            throw ProtocolError(std::string("the key blob's ") + field + " has a superfluous leading zero");
        std::size_t bytes = v.size();
        std::size_t i = 0;
        while (i < v.size() && v[i] == 0) {
            ++i;
            --bytes;
        }
        std::size_t bits = bytes * 8;
        for (std::uint8_t top = static_cast<std::uint8_t>(v[i]); (top & 0x80) == 0; top <<= 1)
            --bits;
        return bits;
    }
    void finish() const
    {
        if (m_pos != m_data.size())
            throw ProtocolError("the key blob has " + std::to_string(m_data.size() - m_pos) + " trailing bytes");
    }

private:
    std::string_view m_data;
    std::size_t m_pos = 0;
};

void checkEcPoint(std::string_view point, std::size_t coordinateBytes)
{
    if (point.size() != 1 + 2 * coordinateBytes || point[0] != 0x04)
        throw ProtocolError("the key blob's EC point is not an uncompressed point of " +
                            std::to_string(coordinateBytes * 8) + "-bit coordinates");
}

// Checks that blob is a well-formed public key of type (field by field).
void checkKeyBlob(std::string_view type, std::string_view blob)
{
    BlobReader r(blob);
    if (r.string("type", 64) != type)
        throw ProtocolError("the key blob's type differs from the line's type '" + std::string(type) + "'");
    auto curve = [&](std::string_view want, std::size_t bytes) {
        if (r.string("curve", 16) != want)
            throw ProtocolError("the key blob's curve is not " + std::string(want));
        checkEcPoint(r.string("EC point", 1 + 2 * bytes), bytes);
    };
    if (type == "ssh-ed25519" || type == "sk-ssh-ed25519@openssh.com") {
        if (r.string("ed25519 key", 32).size() != 32)
            throw ProtocolError("the key blob's ed25519 key is not 32 bytes");
    } else if (type == "ecdsa-sha2-nistp256" || type == "sk-ecdsa-sha2-nistp256@openssh.com") {
        curve("nistp256", 32);
    } else if (type == "ecdsa-sha2-nistp384") {
        curve("nistp384", 48);
    } else if (type == "ecdsa-sha2-nistp521") {
        curve("nistp521", 66);
    } else if (type == "ssh-rsa") {
        if (r.positiveMpint("RSA exponent", 8) < 2)
            throw ProtocolError("the key blob's RSA exponent is too small");
        const auto bits = r.positiveMpint("RSA modulus", 16384 / 8);
        if (bits < 1024)
            throw ProtocolError("the key blob's RSA modulus has " + std::to_string(bits) + " bits (at least 1024)");
    } else {
        throw ProtocolError("unsupported key type '" + std::string(type.substr(0, 40)) + "'");
    }
    if (type.rfind("sk-", 0) == 0)
        r.string("application", 256);
    r.finish();
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
    if (line.size() > kMaxKeyLine)
        throw ProtocolError("Failed to parse the public key: the line is longer than " + std::to_string(kMaxKeyLine) +
                            " bytes");
    for (char c : b64)
        if (!isBase64Char(c))
            throw ProtocolError("Failed to parse the public key: the key data is not base64");
    try {
        checkKeyBlob(type, decodeBase64Strict(b64));
    } catch (const ProtocolError& e) {
        throw ProtocolError(std::string("Failed to parse the ") + std::string(type) + " public key: " + e.what());
    }
    return std::string(type) + " " + std::string(b64);
}

std::string keyFingerprint(std::string_view line)
{
    const std::string normal = normalizeKeyLine(line);
    const std::string blob = decodeBase64Strict(std::string_view(normal).substr(normal.find(' ') + 1));
    return "SHA256:" + encodeBase64NoPad(sha256(blob));
}

std::string keyFingerprintOrNote(std::string_view line)
{
    if (line.empty())
        return "(none)";
    try {
        return keyFingerprint(line);
    } catch (const ProtocolError&) {
        return "(unparsable key)";
    }
}

std::string registrationRequestMac(std::string_view secret, std::string_view signedBytes)
{
    return macOver(kRequestLabel, secret, signedBytes);
}

std::string encodeRegistrationRequest(const RegistrationRequest& request, std::string_view secret)
{
    Encoder inner;
    inner
        .u8(request.version3   ? kRegisterRequestKindV3
            : request.version2 ? kRegisterRequestKindV2
                               : kRegisterRequestKind)
        .bytes(request.node)
        .bytes(request.publicKey)
        .bytes(request.mode)
        .u32(request.sshPort)
        .i64(request.timeMs)
        .bytes(request.nonce);
    if (request.version2 || request.version3) {
        inner.u32(static_cast<std::uint32_t>(request.hostKeys.size()));
        for (const auto& k : request.hostKeys)
            inner.bytes(k);
    }
    if (request.version3)
        inner.bytes(request.masterId);
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
    if (kind != kRegisterRequestKind && kind != kRegisterRequestKindV2 && kind != kRegisterRequestKindV3)
        throw ProtocolError("Bad " + what + ": unknown request kind " + std::to_string(kind));
    auto& r = out.request;
    r.version3 = kind == kRegisterRequestKindV3;
    r.version2 = kind == kRegisterRequestKindV2 || r.version3;
    r.node = inner.bytes("node", kMaxName);
    r.publicKey = inner.bytes("public key", kMaxKeyLine);
    r.mode = inner.bytes("mode", 8);
    const auto sshPort = inner.u32("ssh port");
    r.timeMs = inner.i64("time");
    r.nonce = inner.bytes("nonce", kNonceSize);
    if (r.version2) {
        const auto count = inner.u32("host key count");
        if (count > kMaxHostKeys)
            throw ProtocolError("Bad " + what + ": " + std::to_string(count) + " host keys (at most " +
                                std::to_string(kMaxHostKeys) + ")");
        for (std::uint32_t i = 0; i < count; ++i)
            r.hostKeys.push_back(inner.bytes("host key", kMaxKeyLine));
    }
    if (r.version3) {
        r.masterId = inner.bytes("master id", kMaxMasterIdLength);
        if (!isValidMasterId(r.masterId))
            throw ProtocolError("Bad " + what + ": the master id is empty or not printable");
    }
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
    for (std::size_t i = 0; i < r.hostKeys.size(); ++i) {
        try {
            if (normalizeKeyLine(r.hostKeys[i]) != r.hostKeys[i])
                throw ProtocolError("the key line is not in '<type> <base64>' form");
        } catch (const ProtocolError& e) {
            throw ProtocolError("Bad " + what + " for node " + r.node + ": sshd host key " + std::to_string(i + 1) +
                                ": " + e.what());
        }
        for (std::size_t j = 0; j < i; ++j)
            if (r.hostKeys[j] == r.hostKeys[i])
                throw ProtocolError("Bad " + what + " for node " + r.node + ": sshd host key " +
                                    std::to_string(i + 1) + " is sent twice");
    }
    return out;
}

bool verifyRegistrationRequest(const SignedRequest& request, std::string_view secret)
{
    return !secret.empty() && constantTimeEqual(registrationRequestMac(secret, request.signedBytes), request.mac);
}

std::optional<std::string> registrationKey(std::string_view credential, const RegistrationRequest& request)
{
    NodeCredential parsed;
    try {
        parsed = parseNodeCredential(credential);
    } catch (const Error&) {
        return std::nullopt;
    }
    if (request.version3)
        return credentialKeyFor(parsed, request.masterId);
    if (parsed.legacy)
        return parsed.key;
    return std::nullopt;
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
    if (response.version2)
        inner.u32(response.minPushPeriodS).u32(response.minPullIntervalS).bytes(response.certificate.substr(0, kMaxCertificate)).bytes(response.pullKey);
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
        r.version2 = true;
        r.minPushPeriodS = inner.u32("minimum push period");
        r.minPullIntervalS = inner.u32("minimum pull interval");
        if (r.minPushPeriodS > kMaxPolicySeconds || r.minPullIntervalS > kMaxPolicySeconds)
            throw ProtocolError("Bad " + what + ": a period floor above " + std::to_string(kMaxPolicySeconds) + " s");
        r.certificate = inner.bytes("certificate", kMaxCertificate);
        if (r.certificate.find_first_of("\n\r") != std::string::npos ||
            (!r.certificate.empty() && r.certificate.find("-cert-v01@openssh.com ") == std::string::npos))
            throw ProtocolError("Bad " + what + ": the certificate is not an OpenSSH certificate line");
        if (inner.remaining() > 0) {
            std::string key = inner.bytes("pull key", kMaxKeyLine);
            try {
                if (!key.empty())
                    r.pullKey = normalizeKeyLine(key);
            } catch (const ProtocolError& e) {
                throw ProtocolError("Bad " + what + ": pull key: " + e.what());
            }
        }
    }
    inner.finish();
    return out;
}

std::string periodFloorFile(const std::string& stateDir)
{
    return stateDir + "/period-floor";
}

std::string formatPeriodFloor(const PeriodFloor& floor)
{
    return "# Written by ferry-keyregd from the masters' signed registration answers; read by\n"
           "# ferry-push-generator, which keeps ferry-push.timer at or above min_push_period.\n"
           "min_push_period=" + std::to_string(floor.minPushPeriodS) +
           "\nmin_pull_interval=" + std::to_string(floor.minPullIntervalS) + "\nmaster=" + floor.master + "\n";
}

PeriodFloor parsePeriodFloor(const std::string& name, std::string_view text)
{
    PeriodFloor floor;
    std::size_t lineNo = 0;
    while (!text.empty()) {
        ++lineNo;
        const auto nl = text.find('\n');
        std::string_view line = text.substr(0, nl);
        text = nl == std::string_view::npos ? std::string_view() : text.substr(nl + 1);
        if (line.empty() || line.front() == '#')
            continue;
        const auto eq = line.find('=');
        const std::string where = name + ":" + std::to_string(lineNo);
        if (eq == std::string_view::npos)
            throw ConfigError("Failed to parse " + where + ": expected key=value");
        const std::string_view key = line.substr(0, eq), value = line.substr(eq + 1);
        auto number = [&]() -> std::uint32_t {
            if (value.empty() || value.size() > 6 || value.find_first_not_of("0123456789") != std::string_view::npos)
                throw ConfigError("Failed to parse " + where + ": " + std::string(key) + " is not a number");
            const auto v = static_cast<std::uint32_t>(std::stoul(std::string(value)));
            if (v > kMaxPolicySeconds)
                throw ConfigError("Failed to parse " + where + ": " + std::string(key) + " is above " +
                                  std::to_string(kMaxPolicySeconds));
            return v;
        };
        if (key == "min_push_period")
            floor.minPushPeriodS = number();
        else if (key == "min_pull_interval")
            floor.minPullIntervalS = number();
        else if (key == "master")
            floor.master = std::string(value.substr(0, 300));
        else
            throw ConfigError("Failed to parse " + where + ": unknown key '" + escapeForLog(key, 40) + "'");
    }
    return floor;
}

bool verifyRegistrationResponse(const SignedResponse& response, std::string_view secret)
{
    return !secret.empty() && response.mac.size() == kMacSize &&
           constantTimeEqual(macOver(kResponseLabel, secret, response.signedBytes), response.mac);
}

} // namespace ferry
