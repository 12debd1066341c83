#include "ferry/PullProtocol.h"

#include <limits>

#include "ferry/Wire.h"

namespace ferry {

namespace {

bool isDigit(char c)
{
    return c >= '0' && c <= '9';
}

// A sequence number: 1–19 digits, no sign, no leading zero (except "0"),
// at most INT64_MAX because the spool stores sequences as SQLite integers.
std::optional<std::uint64_t> parseSequence(std::string_view text)
{
    if (text.empty() || text.size() > 19)
        return std::nullopt;
    if (text.size() > 1 && text.front() == '0')
        return std::nullopt;
    std::uint64_t value = 0;
    for (char c : text) {
        if (!isDigit(c))
            return std::nullopt;
        value = value * 10 + static_cast<std::uint64_t>(c - '0');
    }
    if (value > static_cast<std::uint64_t>(std::numeric_limits<std::int64_t>::max()))
        return std::nullopt;
    return value;
}

} // namespace

PullCommandParse parsePullCommand(std::string_view text)
{
    PullCommandParse out;
    if (text.empty()) {
        out.reason = "empty command";
        return out;
    }
    if (text.size() > kMaxPullCommand) {
        out.reason = "command of " + std::to_string(text.size()) + " bytes is longer than " +
                     std::to_string(kMaxPullCommand);
        return out;
    }
    // Only lower-case letters, digits and single spaces between words: no
    // quoting, no shell metacharacters, no control or non-ASCII bytes, so
    // nothing could mean more than it says.
    for (char c : text) {
        const bool ok = (c >= 'a' && c <= 'z') || isDigit(c) || c == ' ';
        if (!ok) {
            out.reason = "character outside [a-z0-9 ]";
            return out;
        }
    }
    std::string_view words[3];
    std::size_t count = 0;
    std::size_t pos = 0;
    while (pos <= text.size()) {
        const std::size_t space = text.find(' ', pos);
        const std::size_t end = space == std::string_view::npos ? text.size() : space;
        if (end == pos) {
            out.reason = "empty word (leading, trailing or double space)";
            return out;
        }
        if (count == 3) {
            out.reason = "too many words";
            return out;
        }
        words[count++] = text.substr(pos, end - pos);
        if (space == std::string_view::npos)
            break;
        pos = space + 1;
    }
    if (words[0] == "status") {
        if (count != 1) {
            out.reason = "status takes no argument";
            return out;
        }
        out.command = PullCommand{PullVerb::Status, 0};
        return out;
    }
    if (words[0] == "fetch") {
        if (count != 2) {
            out.reason = "fetch takes exactly one argument, a cursor";
            return out;
        }
        const auto cursor = parseSequence(words[1]);
        if (!cursor) {
            out.reason = "fetch cursor is not a sequence number";
            return out;
        }
        out.command = PullCommand{PullVerb::Fetch, *cursor};
        return out;
    }
    out.reason = "unknown command";
    return out;
}

std::string formatPullCommand(const PullCommand& command)
{
    switch (command.verb) {
    case PullVerb::Fetch: return "fetch " + std::to_string(command.cursor);
    case PullVerb::Status: return "status";
    }
    return "status";
}

std::string escapeForLog(std::string_view bytes, std::size_t maxChars)
{
    static const char hex[] = "0123456789abcdef";
    std::string out;
    for (unsigned char c : bytes) {
        if (out.size() >= maxChars) {
            out += "… (" + std::to_string(bytes.size()) + " bytes)";
            break;
        }
        if (c >= 0x20 && c < 0x7f && c != '\\') {
            out.push_back(static_cast<char>(c));
        } else {
            out += "\\x";
            out.push_back(hex[c >> 4]);
            out.push_back(hex[c & 15]);
        }
    }
    return out;
}

std::string encode(const PullStatus& status)
{
    Encoder e;
    e.bytes(status.node).u64(status.records).u64(status.bytes).u64(status.lastSeq).i64(status.oldestMs);
    e.u64(status.droppedRecords).u64(status.droppedBytes);
    return e.take();
}

PullStatus decodePullStatus(std::string_view payload, const std::string& peer)
{
    Decoder d(payload, "pull status from " + peer);
    PullStatus s;
    s.node = d.bytes("node", kMaxName);
    s.records = d.u64("records");
    s.bytes = d.u64("bytes");
    s.lastSeq = d.u64("last_seq");
    s.oldestMs = d.i64("oldest");
    s.droppedRecords = d.u64("dropped_records");
    s.droppedBytes = d.u64("dropped_bytes");
    d.finish();
    return s;
}

} // namespace ferry
