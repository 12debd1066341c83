#include "ferry/Crypto.h"

#include <fcntl.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include <openssl/sha.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/rand.h>

#include "ferry/Error.h"
#include "ferry/Files.h"

namespace ferry {

std::string randomBytes(std::size_t n)
{
    // The kernel's generator (getrandom(2), waiting only until it was first
    // seeded at boot): for a challenge and a nonce per session, OpenSSL's
    // per-thread generator cost 3 % of collectord's CPU per push
    // (bench/collector-push), one system call far less.
    std::string out(n, '\0');
    std::size_t done = 0;
    while (done < n) {
        const ssize_t got = ::getrandom(out.data() + done, n - done, 0);
        if (got < 0) {
            if (errno == EINTR)
                continue;
            throw Error(std::string("Failed to generate random bytes: getrandom: ") + std::strerror(errno));
        }
        done += static_cast<std::size_t>(got);
    }
    return out;
}

std::string sha256(std::string_view data)
{
    unsigned char digest[SHA256_DIGEST_LENGTH];
    ::SHA256(reinterpret_cast<const unsigned char*>(data.data()), data.size(), digest);
    return std::string(reinterpret_cast<const char*>(digest), sizeof digest);
}

namespace {

// SHA-256 as fetched from OpenSSL's provider once per process. HMAC() (and
// EVP_Q_mac under it) looks the MAC and the digest up by name at every
// call, a provider query under a lock that cost more than the hashing: one
// key derivation was 2.5 % of collectord's CPU per push
// (bench/collector-push).
const EVP_MD* sha256Digest()
{
    static EVP_MD* const md = EVP_MD_fetch(nullptr, "SHA256", nullptr);
    if (md == nullptr)
        throw Error("Failed to compute HMAC-SHA256: OpenSSL has no SHA256");
    return md;
}

} // namespace

std::string hmacSha256(std::string_view key, std::string_view data)
{
    // RFC 2104 over SHA-256 (a 64-byte block): H((K ^ opad) || H((K ^ ipad) || data)),
    // K the key padded with zeros, or its digest when longer than a block.
    constexpr std::size_t kBlock = 64;
    const EVP_MD* md = sha256Digest();
    unsigned char k0[kBlock] = {};
    unsigned int len = 0;
    if (key.size() > kBlock) {
        if (EVP_Digest(key.data(), key.size(), k0, &len, md, nullptr) != 1)
            throw Error("Failed to compute HMAC-SHA256");
    } else {
        std::memcpy(k0, key.data(), key.size());
    }
    unsigned char ipad[kBlock], opad[kBlock];
    for (std::size_t i = 0; i < kBlock; ++i) {
        ipad[i] = static_cast<unsigned char>(k0[i] ^ 0x36);
        opad[i] = static_cast<unsigned char>(k0[i] ^ 0x5c);
    }
    unsigned char inner[EVP_MAX_MD_SIZE], out[EVP_MAX_MD_SIZE];
    unsigned int innerLen = 0;
    EVP_MD_CTX* ctx = EVP_MD_CTX_new();
    const bool ok = ctx != nullptr && EVP_DigestInit_ex2(ctx, md, nullptr) == 1 &&
                    EVP_DigestUpdate(ctx, ipad, kBlock) == 1 && EVP_DigestUpdate(ctx, data.data(), data.size()) == 1 &&
                    EVP_DigestFinal_ex(ctx, inner, &innerLen) == 1 && EVP_DigestInit_ex2(ctx, md, nullptr) == 1 &&
                    EVP_DigestUpdate(ctx, opad, kBlock) == 1 && EVP_DigestUpdate(ctx, inner, innerLen) == 1 &&
                    EVP_DigestFinal_ex(ctx, out, &len) == 1;
    EVP_MD_CTX_free(ctx);
    OPENSSL_cleanse(k0, sizeof k0);
    OPENSSL_cleanse(ipad, sizeof ipad);
    OPENSSL_cleanse(opad, sizeof opad);
    if (!ok)
        throw Error("Failed to compute HMAC-SHA256");
    return std::string(reinterpret_cast<char*>(out), len);
}

bool constantTimeEqual(std::string_view a, std::string_view b)
{
    return a.size() == b.size() && CRYPTO_memcmp(a.data(), b.data(), a.size()) == 0;
}

std::string toHex(std::string_view bytes)
{
    static constexpr char kDigits[] = "0123456789abcdef";
    std::string out;
    out.reserve(bytes.size() * 2);
    for (unsigned char c : bytes) {
        out.push_back(kDigits[c >> 4]);
        out.push_back(kDigits[c & 15]);
    }
    return out;
}

namespace {
int hexValue(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}
} // namespace

std::string fromHex(std::string_view hex)
{
    if (hex.size() % 2 != 0)
        throw Error("Invalid hex string: odd number of digits");
    std::string out;
    out.reserve(hex.size() / 2);
    for (std::size_t i = 0; i < hex.size(); i += 2) {
        const int hi = hexValue(hex[i]);
        const int lo = hexValue(hex[i + 1]);
        if (hi < 0 || lo < 0)
            throw Error("Invalid hex string: bad digit at position " + std::to_string(i));
        out.push_back(static_cast<char>(hi * 16 + lo));
    }
    return out;
}

std::string generateSecret()
{
    return toHex(randomBytes(32));
}

std::string loadSecret(const std::string& path)
{
    // The directory's owner (ferry) can swap the file for a symlink or a
    // FIFO; root (`ferryctl secret`) must not print whatever it points at
    // nor hang on it. Open without following, then check what was opened.
    const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NOFOLLOW | O_NONBLOCK | O_NOCTTY);
    if (fd < 0) {
        if (errno == ELOOP)
            throw Error("Failed to use the node secret " + path + ": it is a symlink");
        throwErrno("read the node secret " + path);
    }
    struct Closer {
        int fd;
        ~Closer() { ::close(fd); }
    } closer{fd};
    struct stat st{};
    if (::fstat(fd, &st) != 0)
        throwErrno("read the node secret " + path);
    if (!S_ISREG(st.st_mode) || st.st_nlink != 1)
        throw Error("Failed to use the node secret " + path + ": not a plain file with one link");
    if ((st.st_mode & 077) != 0)
        throw Error("Failed to use the node secret " + path + ": it is readable by others (mode " +
                    std::to_string(st.st_mode & 0777) + " octal " + [&] {
                        char b[8];
                        std::snprintf(b, sizeof b, "%03o", st.st_mode & 0777);
                        return std::string(b);
                    }() + "); run chmod 600 " + path);
    std::string s;
    char buf[4097];
    for (;;) {
        const ssize_t n = ::read(fd, buf, sizeof buf);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0)
            throwErrno("read the node secret " + path);
        if (n == 0)
            break;
        s.append(buf, static_cast<std::size_t>(n));
        if (s.size() > 4096)
            throw Error("Failed to use the node secret " + path + ": larger than 4096 bytes");
    }
    while (!s.empty() && (s.back() == '\n' || s.back() == '\r' || s.back() == ' '))
        s.pop_back();
    if (s.size() < 32 || s.size() > 128)
        throw Error("Failed to use the node secret " + path + ": expected 32 to 128 hex characters, found " +
                    std::to_string(s.size()) + " characters");
    for (char c : s)
        if (hexValue(c) < 0)
            throw Error("Failed to use the node secret " + path + ": it contains a character that is not hex");
    return s;
}

bool ensureSecret(const std::string& path)
{
    struct stat st{};
    if (::stat(path.c_str(), &st) == 0)
        return false;
    writeFileAtomic(path, generateSecret() + "\n", 0600);
    return true;
}

std::string sessionProof(std::string_view secret, std::string_view label, std::string_view protocol,
                         std::string_view challenge, std::string_view nonce, std::string_view name)
{
    std::string transcript;
    transcript.append("ferry-proof-v1\0", 15);
    for (std::string_view part : {protocol, label, challenge, nonce, name}) {
        const auto len = static_cast<std::uint32_t>(part.size());
        for (int s = 24; s >= 0; s -= 8)
            transcript.push_back(static_cast<char>(len >> s));
        transcript.append(part);
    }
    return hmacSha256(secret, transcript);
}

std::string sessionProofV2(std::string_view secret, std::string_view label, std::string_view protocol,
                           std::uint8_t version, std::uint32_t capabilities, std::string_view challenge,
                           std::string_view nonce, std::string_view node, std::string_view epoch)
{
    std::string transcript;
    transcript.append("ferry-proof-v2\0", 15);
    std::string numbers;
    numbers.push_back(static_cast<char>(version));
    for (int s = 24; s >= 0; s -= 8)
        numbers.push_back(static_cast<char>(capabilities >> s));
    for (std::string_view part : {protocol, label, std::string_view(numbers), challenge, nonce, node, epoch}) {
        const auto len = static_cast<std::uint32_t>(part.size());
        for (int s = 24; s >= 0; s -= 8)
            transcript.push_back(static_cast<char>(len >> s));
        transcript.append(part);
    }
    return hmacSha256(secret, transcript);
}

namespace {

std::string proofTranscript(std::string_view tag, std::initializer_list<std::string_view> parts)
{
    std::string transcript(tag);
    for (std::string_view part : parts) {
        const auto len = static_cast<std::uint32_t>(part.size());
        for (int s = 24; s >= 0; s -= 8)
            transcript.push_back(static_cast<char>(len >> s));
        transcript.append(part);
    }
    return transcript;
}

bool isHexSecret(std::string_view text)
{
    return text.size() >= 32 && text.size() <= 128 && text.size() % 2 == 0 &&
           text.find_first_not_of("0123456789abcdefABCDEF") == std::string_view::npos;
}

} // namespace

std::string deriveMasterKey(std::string_view secret, std::string_view masterId)
{
    std::string label("ferry-master-key-v1\0", 20);
    label.append(masterId);
    return toHex(hmacSha256(secret, label));
}

bool isValidMasterId(std::string_view id)
{
    if (id.empty() || id.size() > kMaxMasterIdLength)
        return false;
    for (const char c : id)
        if (c <= ' ' || c > '~')
            return false;
    return true;
}

NodeCredential parseNodeCredential(std::string_view text)
{
    while (!text.empty() && (text.back() == '\n' || text.back() == '\r' || text.back() == ' '))
        text.remove_suffix(1);
    NodeCredential c;
    if (text.starts_with("k1:")) {
        const std::string_view rest = text.substr(3);
        const auto colon = rest.rfind(':');
        if (colon == std::string_view::npos)
            throw Error("Bad node key: expected k1:<master id>:<key>");
        c.masterId = std::string(rest.substr(0, colon));
        c.key = std::string(rest.substr(colon + 1));
        if (!isValidMasterId(c.masterId))
            throw Error("Bad node key: the master id is empty, longer than 255 or has spaces or control characters");
        if (c.key.size() != 64 || !isHexSecret(c.key))
            throw Error("Bad node key: the key after the master id must be 64 hex digits");
        return c;
    }
    if (!isHexSecret(text))
        throw Error("Bad node key: expected k1:<master id>:<key> (from `ferryctl secret --master ID` on the node) "
                    "or a node secret of 32-128 hex digits");
    c.key = std::string(text);
    c.legacy = true;
    return c;
}

std::string formatNodeCredential(std::string_view masterId, std::string_view key)
{
    return "k1:" + std::string(masterId) + ":" + std::string(key);
}

std::optional<std::string> credentialKeyFor(const NodeCredential& credential, std::string_view masterId)
{
    if (!isValidMasterId(masterId))
        return std::nullopt;
    if (credential.legacy)
        return deriveMasterKey(credential.key, masterId);
    if (credential.masterId != masterId)
        return std::nullopt;
    return credential.key;
}

std::string sessionProofV3(std::string_view key, std::string_view label, std::string_view protocol,
                           std::uint8_t version, std::uint32_t capabilities, std::string_view challenge,
                           std::string_view nonce, std::string_view node, std::string_view epoch,
                           std::string_view masterId, std::string_view binding)
{
    std::string numbers;
    numbers.push_back(static_cast<char>(version));
    for (int s = 24; s >= 0; s -= 8)
        numbers.push_back(static_cast<char>(capabilities >> s));
    return hmacSha256(key,
                      proofTranscript(std::string_view("ferry-proof-v3\0", 15),
                                      {protocol, label, numbers, challenge, nonce, node, epoch, masterId, binding}));
}

} // namespace ferry
