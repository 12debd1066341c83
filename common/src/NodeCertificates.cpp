#include "ferry/NodeCertificates.h"

#include <fcntl.h>
#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <filesystem>
#include <thread>

#include "ferry/Crypto.h"
#include "ferry/Error.h"
#include "ferry/Files.h"
#include "ferry/PullProtocol.h"
#include "ferry/RegistryProtocol.h"

extern char** environ;

namespace ferry {

namespace {

// A private directory removed on scope exit.
class ScratchDir {
public:
    ScratchDir()
    {
        std::string templ = (std::filesystem::temp_directory_path() / "ferry-cert.XXXXXX").string();
        if (::mkdtemp(templ.data()) == nullptr)
            throwErrno("create a temporary directory for ssh-keygen");
        m_path = templ;
    }
    ~ScratchDir()
    {
        std::error_code ec;
        std::filesystem::remove_all(m_path, ec);
    }
    const std::string& path() const { return m_path; }

private:
    std::string m_path;
};

struct Ran {
    int exitCode = -1;
    std::string output;  // stdout and stderr
};

// Runs ssh-keygen with argv, output to a file in dir, within timeout.
Ran sshKeygen(const std::vector<std::string>& args, const std::string& dir,
              std::chrono::seconds timeout = std::chrono::seconds(10))
{
    const std::string outFile = dir + "/ssh-keygen.out";
    posix_spawn_file_actions_t fa;
    posix_spawn_file_actions_init(&fa);
    posix_spawn_file_actions_addopen(&fa, 0, "/dev/null", O_RDONLY, 0);
    posix_spawn_file_actions_addopen(&fa, 1, outFile.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0600);
    posix_spawn_file_actions_adddup2(&fa, 1, 2);
    posix_spawnattr_t attr;
    posix_spawnattr_init(&attr);
    // Daemons block SIGTERM for their event loop; the child must not inherit that.
    sigset_t none;
    sigemptyset(&none);
    posix_spawnattr_setsigmask(&attr, &none);
    posix_spawnattr_setflags(&attr, POSIX_SPAWN_SETSIGMASK);
    std::vector<std::string> full = {"ssh-keygen"};
    full.insert(full.end(), args.begin(), args.end());
    std::vector<char*> argv;
    for (auto& a : full)
        argv.push_back(a.data());
    argv.push_back(nullptr);
    pid_t pid = -1;
    const int rc = ::posix_spawnp(&pid, "ssh-keygen", &fa, &attr, argv.data(), environ);
    posix_spawn_file_actions_destroy(&fa);
    posix_spawnattr_destroy(&attr);
    if (rc != 0)
        throw Error("Failed to run ssh-keygen: " + errnoMessage(rc));
    Ran ran;
    const auto deadline = std::chrono::steady_clock::now() + timeout;
    int status = 0;
    for (;;) {
        const pid_t w = ::waitpid(pid, &status, WNOHANG);
        if (w == pid)
            break;
        if (w < 0 && errno != EINTR)
            throwErrno("wait for ssh-keygen");
        if (std::chrono::steady_clock::now() >= deadline) {
            ::kill(pid, SIGKILL);
            ::waitpid(pid, &status, 0);
            throw Error("Failed to run ssh-keygen: no answer within " + std::to_string(timeout.count()) + " s");
        }
        std::this_thread::sleep_for(std::chrono::milliseconds(2));
    }
    ran.exitCode = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
    ran.output = readFileIfExists(outFile, 64 * 1024).value_or("");
    while (!ran.output.empty() && (ran.output.back() == '\n' || ran.output.back() == '\r'))
        ran.output.pop_back();
    return ran;
}

std::string joined(const std::vector<std::string>& v)
{
    std::string out;
    for (const auto& s : v)
        out += (out.empty() ? "" : ",") + s;
    return out;
}

} // namespace

namespace {

// Reads the fields of a certificate blob in order, each bounded by what is left.
class BlobReader {
public:
    explicit BlobReader(std::string_view blob) : m_blob(blob) {}

    bool done() const { return m_pos == m_blob.size(); }
    std::uint64_t u64() { return number(8); }
    std::uint32_t u32() { return static_cast<std::uint32_t>(number(4)); }
    std::string_view string()
    {
        const std::uint32_t n = u32();
        if (n > m_blob.size() - m_pos)
            throw ProtocolError("Failed to read the certificate: a field of " + std::to_string(n) +
                                " bytes runs past its end");
        const std::string_view out = m_blob.substr(m_pos, n);
        m_pos += n;
        return out;
    }

private:
    std::uint64_t number(std::size_t size)
    {
        if (m_blob.size() - m_pos < size)
            throw ProtocolError("Failed to read the certificate: it ends early");
        std::uint64_t v = 0;
        for (std::size_t i = 0; i < size; ++i)
            v = (v << 8) | static_cast<unsigned char>(m_blob[m_pos + i]);
        m_pos += size;
        return v;
    }

    std::string_view m_blob;
    std::size_t m_pos = 0;
};

// How many string/mpint fields the public key of each certificate type has.
int keyFieldCount(std::string_view type)
{
    if (type == "ssh-ed25519-cert-v01@openssh.com")
        return 1;
    if (type == "ssh-rsa-cert-v01@openssh.com" || type == "sk-ssh-ed25519-cert-v01@openssh.com" ||
        type.rfind("ecdsa-sha2-nistp", 0) == 0)
        return 2;
    if (type == "sk-ecdsa-sha2-nistp256-cert-v01@openssh.com")
        return 3;
    if (type == "ssh-dss-cert-v01@openssh.com")
        return 4;
    return -1;
}

std::int64_t toMs(std::uint64_t seconds)
{
    constexpr std::uint64_t kMax = static_cast<std::uint64_t>(INT64_MAX) / 1000;
    return seconds >= kMax ? INT64_MAX : static_cast<std::int64_t>(seconds * 1000);
}

} // namespace

CertificateInfo readCertificate(std::string_view line)
{
    while (!line.empty() && (line.back() == '\n' || line.back() == '\r'))
        line.remove_suffix(1);
    const auto space = line.find(' ');
    if (space == std::string_view::npos || line.size() > 16 * 1024)
        throw ProtocolError("Failed to read the certificate: expected '<type>-cert-v01@openssh.com <base64>'");
    const std::string_view type = line.substr(0, space);
    std::string_view data = line.substr(space + 1);
    data = data.substr(0, data.find(' '));
    const int keyFields = keyFieldCount(type);
    if (keyFields < 0)
        throw ProtocolError("Failed to read the certificate: '" + escapeForLog(std::string(type), 80) +
                            "' is not an OpenSSH certificate type");
    const std::string blob = decodeBase64Strict(data);
    BlobReader r(blob);
    CertificateInfo info;
    info.type = std::string(r.string());
    if (info.type != type)
        throw ProtocolError("Failed to read the certificate: its blob says " + escapeForLog(info.type, 80) +
                            ", its line " + std::string(type));
    r.string(); // nonce
    for (int i = 0; i < keyFields; ++i)
        r.string();
    info.serial = r.u64();
    r.u32(); // user or host
    info.keyId = std::string(r.string());
    BlobReader principals(r.string());
    while (!principals.done()) {
        if (info.principals.size() == 256)
            throw ProtocolError("Failed to read the certificate: more than 256 principals");
        info.principals.emplace_back(principals.string());
    }
    info.validAfterMs = toMs(r.u64());
    info.validBeforeMs = toMs(r.u64());
    return info;
}

std::string signUserCertificate(const CertificateRequest& request)
{
    const std::string what = "Failed to sign a certificate for " + request.keyId;
    for (const auto& p : request.principals)
        if (p.empty() || p.find_first_of(", \n") != std::string::npos)
            throw Error(what + ": bad principal '" + p + "'");
    ScratchDir dir;
    const std::string pub = dir.path() + "/node.pub";
    writeFileAtomic(pub, request.publicKey + "\n", 0600);
    std::vector<std::string> args = {"-q", "-s", request.caKeyFile, "-I", request.keyId, "-n", joined(request.principals),
                                     "-z", std::to_string(request.serial), "-V", request.validity};
    for (const auto& o : request.options) {
        args.push_back("-O");
        args.push_back(o);
    }
    args.push_back(pub);
    const auto ran = sshKeygen(args, dir.path());
    const auto cert = readFileIfExists(dir.path() + "/node-cert.pub", 16 * 1024);
    if (ran.exitCode != 0 || !cert)
        throw Error(what + ": ssh-keygen: " + (ran.output.empty() ? "exit " + std::to_string(ran.exitCode) : ran.output));
    std::string line = *cert;
    while (!line.empty() && (line.back() == '\n' || line.back() == '\r'))
        line.pop_back();
    return line;
}

namespace {

// PROTOCOL.krl's framing: big-endian integers, strings with a uint32 length.
class KrlWriter {
public:
    void u8(std::uint8_t v) { m_out.push_back(static_cast<char>(v)); }
    void u32(std::uint32_t v) { number(v, 4); }
    void u64(std::uint64_t v) { number(v, 8); }
    void string(std::string_view s)
    {
        u32(static_cast<std::uint32_t>(s.size()));
        m_out.append(s);
    }
    void section(std::uint8_t type, const KrlWriter& body)
    {
        u8(type);
        string(body.m_out);
    }
    const std::string& bytes() const { return m_out; }

private:
    void number(std::uint64_t v, int size)
    {
        for (int i = size - 1; i >= 0; --i)
            m_out.push_back(static_cast<char>((v >> (8 * i)) & 0xff));
    }
    std::string m_out;
};

constexpr std::uint64_t kKrlMagic = 0x5353484b524c0a00ULL; // "SSHKRL\n\0"
constexpr std::uint32_t kKrlFormatVersion = 1;
constexpr std::uint8_t kKrlSectionCertificates = 1;
constexpr std::uint8_t kKrlCertSerialList = 0x20;
constexpr std::uint8_t kKrlCertSerialRange = 0x21;
constexpr std::uint8_t kKrlCertSerialBitmap = 0x22;
// sshd loads the whole KRL at every authentication, and its cost is one
// tree insertion per range and one per serial of a list or bitmap (krl.c):
// so every run of two or more is a range, however many bytes that takes.
// Measured with ssh-keygen -Q (the same reader) on 100,000 of 125,000
// serials, loaded machine: runs of 4 as 25,000 ranges 110 ms, as bitmaps or
// a list 210 ms, by key ID 1660 ms.
constexpr std::uint64_t kKrlRangeMin = 2;

// The bitmap of serials [first, last] (sorted, distinct, last - first <
// kKrlBitmapBits) as an SSH mpint body: big-endian, bit k is serial first + k,
// with a leading zero byte when the top bit is set (mpints are signed).
std::string serialBitmap(const std::uint64_t* first, const std::uint64_t* last)
{
    const std::uint64_t offset = *first;
    const std::size_t bytes = static_cast<std::size_t>((*last - offset) / 8 + 1);
    std::string bitmap(bytes, '\0');
    for (const std::uint64_t* s = first; s <= last; ++s) {
        const std::uint64_t bit = *s - offset;
        bitmap[bytes - 1 - bit / 8] = static_cast<char>(bitmap[bytes - 1 - bit / 8] | (1 << (bit % 8)));
    }
    if (static_cast<unsigned char>(bitmap[0]) & 0x80)
        bitmap.insert(bitmap.begin(), '\0');
    return bitmap;
}

} // namespace

std::string encodeRevocationList(std::string_view caKeyBlob, std::vector<std::uint64_t> serials,
                                 std::uint64_t krlVersion, std::int64_t generatedMs, RevocationListShape* shape)
{
    std::sort(serials.begin(), serials.end());
    serials.erase(std::unique(serials.begin(), serials.end()), serials.end());
    RevocationListShape counted;
    counted.serials = serials.size();

    KrlWriter certs;
    certs.string(caKeyBlob);
    certs.string(""); // reserved
    // Runs become ranges; the single serials left are cut into stretches of
    // at most kKrlBitmapBits, each a bitmap when that is smaller than a list
    // (sshd's cost is the same: one insertion per serial).
    std::vector<std::uint64_t> rest;
    for (std::size_t i = 0; i < serials.size();) {
        std::size_t j = i + 1;
        while (j < serials.size() && serials[j] == serials[j - 1] + 1)
            ++j;
        if (j - i >= kKrlRangeMin) {
            KrlWriter range;
            range.u64(serials[i]);
            range.u64(serials[j - 1]);
            certs.section(kKrlCertSerialRange, range);
            ++counted.ranges;
        } else {
            rest.insert(rest.end(), serials.begin() + static_cast<std::ptrdiff_t>(i),
                        serials.begin() + static_cast<std::ptrdiff_t>(j));
        }
        i = j;
    }
    KrlWriter list;
    for (std::size_t i = 0; i < rest.size();) {
        std::size_t j = i + 1;
        while (j < rest.size() && rest[j] - rest[i] < kKrlBitmapBits)
            ++j;
        const std::uint64_t span = rest[j - 1] - rest[i] + 1;
        // Section framing aside: 8 + span/8 bytes as a bitmap, 8 per serial listed.
        if (8 + span / 8 + 1 < 8 * (j - i)) {
            KrlWriter bitmap;
            bitmap.u64(rest[i]);
            bitmap.string(serialBitmap(&rest[i], &rest[j - 1]));
            certs.section(kKrlCertSerialBitmap, bitmap);
            ++counted.bitmaps;
        } else {
            for (std::size_t k = i; k < j; ++k)
                list.u64(rest[k]);
            counted.listed += j - i;
        }
        i = j;
    }
    if (counted.listed > 0)
        certs.section(kKrlCertSerialList, list);

    KrlWriter krl;
    krl.u64(kKrlMagic);
    krl.u32(kKrlFormatVersion);
    krl.u64(krlVersion);
    krl.u64(static_cast<std::uint64_t>(std::max<std::int64_t>(generatedMs, 0) / 1000));
    krl.u64(0);     // flags
    krl.string(""); // reserved
    krl.string("ferry-registryd");
    if (!serials.empty())
        krl.section(kKrlSectionCertificates, certs);
    counted.bytes = krl.bytes().size();
    if (shape)
        *shape = counted;
    return krl.bytes();
}

RevocationListShape writeRevocationList(const std::string& caPublicKeyFile, const std::vector<std::uint64_t>& serials,
                                        const std::string& path, std::uint64_t krlVersion, std::int64_t generatedMs)
{
    const std::string what = "Failed to write the revocation list " + path;
    const auto caLine = readFileIfExists(caPublicKeyFile, 16 * 1024);
    if (!caLine)
        throw Error(what + ": the CA's public key " + caPublicKeyFile + " is missing");
    std::string caBlob;
    try {
        const std::string normalized = normalizeKeyLine(*caLine);
        caBlob = decodeBase64Strict(normalized.substr(normalized.find(' ') + 1));
    } catch (const std::exception& e) {
        throw Error(what + ": " + caPublicKeyFile + " is not an OpenSSH public key: " + e.what());
    }
    RevocationListShape shape;
    const std::string krl = encodeRevocationList(caBlob, serials, krlVersion, generatedMs, &shape);
    ScratchDir dir;
    const std::string out = dir.path() + "/krl";
    writeFileAtomic(out, krl, 0600);
    // The CA's own key is never revoked: exit 0 means OpenSSH loads the KRL.
    const auto loaded = sshKeygen({"-Q", "-f", out, caPublicKeyFile}, dir.path(), std::chrono::seconds(60));
    if (loaded.exitCode != 0)
        throw Error(what + ": OpenSSH cannot load the KRL made (" + describe(shape) + "): " + loaded.output);
    writeFileAtomic(path, krl, 0644);
    return shape;
}

std::string describe(const RevocationListShape& shape)
{
    return std::to_string(shape.serials) + " serials: " + std::to_string(shape.ranges) + " ranges, " +
           std::to_string(shape.bitmaps) + " bitmaps, " + std::to_string(shape.listed) + " listed, " +
           std::to_string(shape.bytes) + " bytes";
}

} // namespace ferry
