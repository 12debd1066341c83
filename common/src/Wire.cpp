#include "ferry/Wire.h"

#include <algorithm>

#include "ferry/Error.h"

namespace ferry {

const char* toString(MessageType type)
{
    switch (type) {
    case MessageType::Hello: return "Hello";
    case MessageType::Auth: return "Auth";
    case MessageType::AuthOk: return "AuthOk";
    case MessageType::Batch: return "Batch";
    case MessageType::Ack: return "Ack";
    case MessageType::Error: return "Error";
    case MessageType::Bye: return "Bye";
    case MessageType::Request: return "Request";
    case MessageType::Response: return "Response";
    case MessageType::Report: return "Report";
    case MessageType::Policy: return "Policy";
    case MessageType::HeadBatch: return "HeadBatch";
    }
    return "unknown";
}

namespace {

bool knownType(std::uint8_t t)
{
    return t >= static_cast<std::uint8_t>(MessageType::Hello) && t <= static_cast<std::uint8_t>(MessageType::HeadBatch);
}

std::uint32_t readU32(const unsigned char* p)
{
    return (std::uint32_t{p[0]} << 24) | (std::uint32_t{p[1]} << 16) | (std::uint32_t{p[2]} << 8) | p[3];
}

void checkHeader(const unsigned char* h, std::uint32_t maxPayload, const std::string& peer)
{
    if (h[0] != 'F' || h[1] != 'Y')
        throw ProtocolError("Bad frame from " + peer + ": not a Ferry frame (bad magic)");
    if (h[2] != kWireVersion)
        throw ProtocolError("Bad frame from " + peer + ": unsupported protocol version " + std::to_string(h[2]) +
                            " (this side speaks " + std::to_string(kWireVersion) + ")");
    if (!knownType(h[3]))
        throw ProtocolError("Bad frame from " + peer + ": unknown message type " + std::to_string(h[3]));
    const std::uint32_t len = readU32(h + 4);
    if (len > maxPayload)
        throw ProtocolError("Bad frame from " + peer + ": " + std::to_string(len) + " bytes exceeds the limit of " +
                            std::to_string(maxPayload));
}

} // namespace

std::string encodeFrame(MessageType type, std::string_view payload)
{
    std::string out;
    out.reserve(kFrameHeaderSize + payload.size());
    out.push_back('F');
    out.push_back('Y');
    out.push_back(static_cast<char>(kWireVersion));
    out.push_back(static_cast<char>(type));
    const auto len = static_cast<std::uint32_t>(payload.size());
    out.push_back(static_cast<char>(len >> 24));
    out.push_back(static_cast<char>(len >> 16));
    out.push_back(static_cast<char>(len >> 8));
    out.push_back(static_cast<char>(len));
    out.append(payload);
    return out;
}

void writeFrame(ByteStream& stream, MessageType type, std::string_view payload, Deadline deadline)
{
    const std::string f = encodeFrame(type, payload);
    stream.writeAll(f.data(), f.size(), deadline);
}

Frame readFrame(ByteStream& stream, Deadline deadline, std::uint32_t maxPayload)
{
    unsigned char h[kFrameHeaderSize];
    readExact(stream, h, sizeof h, deadline, "a frame header");
    checkHeader(h, maxPayload, stream.peer());
    Frame f;
    f.type = static_cast<MessageType>(h[3]);
    f.payload.resize(readU32(h + 4));
    if (!f.payload.empty())
        readExact(stream, f.payload.data(), f.payload.size(), deadline, "a frame payload");
    return f;
}

bool parseFrame(std::string_view buffer, std::uint32_t maxPayload, Frame& out, std::size_t& consumed)
{
    consumed = 0;
    if (buffer.size() < kFrameHeaderSize)
        return false;
    const auto* h = reinterpret_cast<const unsigned char*>(buffer.data());
    checkHeader(h, maxPayload, "buffer");
    const std::uint32_t len = readU32(h + 4);
    if (buffer.size() - kFrameHeaderSize < len)
        return false;
    out.type = static_cast<MessageType>(h[3]);
    out.payload.assign(buffer.substr(kFrameHeaderSize, len));
    consumed = kFrameHeaderSize + len;
    return true;
}

Encoder& Encoder::u8(std::uint8_t v)
{
    m_data.push_back(static_cast<char>(v));
    return *this;
}

Encoder& Encoder::u32(std::uint32_t v)
{
    for (int s = 24; s >= 0; s -= 8)
        m_data.push_back(static_cast<char>(v >> s));
    return *this;
}

Encoder& Encoder::u64(std::uint64_t v)
{
    for (int s = 56; s >= 0; s -= 8)
        m_data.push_back(static_cast<char>(v >> s));
    return *this;
}

Encoder& Encoder::bytes(std::string_view v)
{
    u32(static_cast<std::uint32_t>(v.size()));
    m_data.append(v);
    return *this;
}

void Decoder::need(std::size_t n, const char* field) const
{
    if (m_data.size() - m_pos < n)
        throw ProtocolError("Bad " + m_what + ": truncated at field '" + field + "'");
}

std::uint8_t Decoder::u8(const char* field)
{
    need(1, field);
    return static_cast<std::uint8_t>(m_data[m_pos++]);
}

std::uint32_t Decoder::u32(const char* field)
{
    need(4, field);
    const auto v = readU32(reinterpret_cast<const unsigned char*>(m_data.data() + m_pos));
    m_pos += 4;
    return v;
}

std::uint64_t Decoder::u64(const char* field)
{
    need(8, field);
    std::uint64_t v = 0;
    for (int i = 0; i < 8; ++i)
        v = (v << 8) | static_cast<unsigned char>(m_data[m_pos + static_cast<std::size_t>(i)]);
    m_pos += 8;
    return v;
}

std::string Decoder::bytes(const char* field, std::size_t maxSize)
{
    const std::uint32_t len = u32(field);
    if (len > maxSize)
        throw ProtocolError("Bad " + m_what + ": field '" + field + "' is " + std::to_string(len) +
                            " bytes, limit " + std::to_string(maxSize));
    need(len, field);
    std::string out(m_data.substr(m_pos, len));
    m_pos += len;
    return out;
}

void Decoder::finish() const
{
    if (m_pos != m_data.size())
        throw ProtocolError("Bad " + m_what + ": " + std::to_string(m_data.size() - m_pos) + " unexpected trailing bytes");
}

std::string encode(const HelloMessage& m)
{
    return Encoder().bytes(m.challenge).bytes(m.server).take();
}
std::string encode(const AuthMessage& m)
{
    Encoder e;
    e.bytes(m.node).bytes(m.nonce).bytes(m.mac);
    if (m.version >= 2)
        e.u8(m.version).u32(m.capabilities).bytes(m.epoch);
    if (m.version >= 3)
        e.bytes(m.masterId).bytes(m.binding);
    return e.take();
}
std::string encode(const AuthOkMessage& m)
{
    Encoder e;
    e.bytes(m.mac);
    if (m.version >= 2)
        e.u8(m.version).u32(m.capabilities).bytes(m.epoch);
    return e.take();
}
std::string encode(const HealthReport& m)
{
    Encoder e;
    e.u64(m.spoolRecords).u64(m.spoolBytes).i64(m.oldestUnsentMs).u64(m.lastSeq);
    e.u64(m.droppedByAge).u64(m.droppedBySize).u64(m.droppedBytes);
    e.bytes(m.transportMode.substr(0, kMaxReportText)).bytes(m.transportReason.substr(0, kMaxReportText));
    e.u64(m.spoolResets).bytes(m.lastReset.substr(0, kMaxReportText)).i64(m.lastResetMs);
    e.bytes(m.fwcheckVerdict.substr(0, kMaxReportText));
    return e.take();
}
std::string encode(const PolicyMessage& m)
{
    Encoder e;
    e.u8(m.held ? 1 : 0).bytes(m.reason.substr(0, kMaxReportText)).u64(m.storedUpTo);
    e.u32(static_cast<std::uint32_t>(std::min(m.policy.size(), kMaxPolicyEntries)));
    for (std::size_t i = 0; i < m.policy.size() && i < kMaxPolicyEntries; ++i)
        e.bytes(m.policy[i].first.substr(0, kMaxPolicyText)).bytes(m.policy[i].second.substr(0, kMaxPolicyText));
    return e.take();
}
std::string encode(const std::vector<Record>& batch)
{
    Encoder e;
    e.u32(static_cast<std::uint32_t>(batch.size()));
    for (const auto& r : batch)
        e.u64(r.seq).i64(r.timeMs).bytes(r.kind).bytes(r.payload);
    return e.take();
}
std::string encode(const AckMessage& m)
{
    return Encoder().u64(m.storedUpTo).u32(m.newlyStored).u32(m.duplicates).take();
}
std::string encode(const ErrorMessage& m)
{
    return Encoder().bytes(m.code).bytes(m.message).take();
}

HelloMessage decodeHello(std::string_view payload, const std::string& peer)
{
    Decoder d(payload, "Hello from " + peer);
    HelloMessage m;
    m.challenge = d.bytes("challenge", kNonceSize);
    m.server = d.bytes("server", kMaxName);
    d.finish();
    if (m.challenge.size() != kNonceSize)
        throw ProtocolError("Bad Hello from " + peer + ": challenge must be " + std::to_string(kNonceSize) + " bytes");
    return m;
}

AuthMessage decodeAuth(std::string_view payload, const std::string& peer)
{
    Decoder d(payload, "Auth from " + peer);
    AuthMessage m;
    m.node = d.bytes("node", kMaxName);
    m.nonce = d.bytes("nonce", kNonceSize);
    m.mac = d.bytes("mac", kMacSize);
    // Version 1 ends here; anything after it is version 2 or later.
    if (d.remaining() > 0) {
        m.version = d.u8("version");
        m.capabilities = d.u32("capabilities");
        m.epoch = d.bytes("epoch", 16);
        // Version 3 appends the master id and the session binding.
        if (m.version >= 3) {
            m.masterId = d.bytes("master id", kMaxMasterId);
            m.binding = d.bytes("binding", kMaxBinding);
        }
    }
    d.finish();
    if (m.nonce.size() != kNonceSize || m.mac.size() != kMacSize || m.node.empty())
        throw ProtocolError("Bad Auth from " + peer + ": wrong nonce, MAC or name size");
    return m;
}

AuthOkMessage decodeAuthOk(std::string_view payload, const std::string& peer)
{
    Decoder d(payload, "AuthOk from " + peer);
    AuthOkMessage m;
    m.mac = d.bytes("mac", kMacSize);
    if (d.remaining() > 0) {
        m.version = d.u8("version");
        m.capabilities = d.u32("capabilities");
        m.epoch = d.bytes("epoch", 16);
    }
    d.finish();
    if (m.mac.size() != kMacSize)
        throw ProtocolError("Bad AuthOk from " + peer + ": wrong MAC size");
    return m;
}

std::vector<Record> decodeBatch(std::string_view payload, const std::string& peer)
{
    Decoder d(payload, "Batch from " + peer);
    const std::uint32_t count = d.u32("count");
    if (count > kMaxBatchRecords)
        throw ProtocolError("Bad Batch from " + peer + ": " + std::to_string(count) + " records exceeds the limit of " +
                            std::to_string(kMaxBatchRecords));
    std::vector<Record> out;
    out.reserve(std::min<std::size_t>(count, d.remaining() / 24 + 1));
    std::uint64_t previous = 0;
    for (std::uint32_t i = 0; i < count; ++i) {
        Record r;
        r.seq = d.u64("seq");
        r.timeMs = d.i64("time");
        r.kind = d.bytes("kind", kMaxKind);
        r.payload = d.bytes("payload", kMaxRecordPayload);
        if (r.seq == 0 || r.seq <= previous)
            throw ProtocolError("Bad Batch from " + peer + ": sequence numbers must increase (record " +
                                std::to_string(i) + " has " + std::to_string(r.seq) + ")");
        previous = r.seq;
        out.push_back(std::move(r));
    }
    d.finish();
    return out;
}

AckMessage decodeAck(std::string_view payload, const std::string& peer)
{
    Decoder d(payload, "Ack from " + peer);
    AckMessage m;
    m.storedUpTo = d.u64("stored_up_to");
    m.newlyStored = d.u32("newly_stored");
    m.duplicates = d.u32("duplicates");
    d.finish();
    return m;
}

ErrorMessage decodeError(std::string_view payload, const std::string& peer)
{
    Decoder d(payload, "Error from " + peer);
    ErrorMessage m;
    m.code = d.bytes("code", 64);
    m.message = d.bytes("message", 4096);
    d.finish();
    return m;
}

HealthReport decodeReport(std::string_view payload, const std::string& peer)
{
    Decoder d(payload, "Report from " + peer);
    HealthReport m;
    m.spoolRecords = d.u64("spool_records");
    m.spoolBytes = d.u64("spool_bytes");
    m.oldestUnsentMs = d.i64("oldest_unsent");
    m.lastSeq = d.u64("last_seq");
    m.droppedByAge = d.u64("dropped_age");
    m.droppedBySize = d.u64("dropped_size");
    m.droppedBytes = d.u64("dropped_bytes");
    m.transportMode = d.bytes("transport_mode", kMaxReportText);
    m.transportReason = d.bytes("transport_reason", kMaxReportText);
    m.spoolResets = d.u64("spool_resets");
    m.lastReset = d.bytes("last_reset", kMaxReportText);
    m.lastResetMs = d.i64("last_reset_time");
    m.fwcheckVerdict = d.bytes("fwcheck_verdict", kMaxReportText);
    d.finish();
    return m;
}

PolicyMessage decodePolicy(std::string_view payload, const std::string& peer)
{
    Decoder d(payload, "Policy from " + peer);
    PolicyMessage m;
    const std::uint8_t held = d.u8("held");
    if (held > 1)
        throw ProtocolError("Bad Policy from " + peer + ": held is " + std::to_string(held));
    m.held = held == 1;
    m.reason = d.bytes("reason", kMaxReportText);
    m.storedUpTo = d.u64("stored_up_to");
    const std::uint32_t count = d.u32("policy_count");
    if (count > kMaxPolicyEntries)
        throw ProtocolError("Bad Policy from " + peer + ": " + std::to_string(count) + " entries, limit " +
                            std::to_string(kMaxPolicyEntries));
    for (std::uint32_t i = 0; i < count; ++i) {
        std::string key = d.bytes("policy_key", kMaxPolicyText);
        std::string value = d.bytes("policy_value", kMaxPolicyText);
        m.policy.emplace_back(std::move(key), std::move(value));
    }
    d.finish();
    return m;
}

Frame expectFrame(ByteStream& stream, MessageType type, Deadline deadline, std::uint32_t maxPayload)
{
    Frame f = readFrame(stream, deadline, maxPayload);
    if (f.type == MessageType::Error) {
        const auto e = decodeError(f.payload, stream.peer());
        if (e.code == "auth-failed")
            throw AuthError(stream.peer() + " refused us: " + e.message);
        throw ProtocolError(stream.peer() + " reported an error (" + e.code + "): " + e.message);
    }
    if (f.type != type)
        throw ProtocolError("Unexpected " + std::string(toString(f.type)) + " from " + stream.peer() + " (expected " +
                            toString(type) + ")");
    return f;
}

} // namespace ferry
