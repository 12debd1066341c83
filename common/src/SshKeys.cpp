#include "ferry/SshKeys.h"

#include <sys/stat.h>

#include <algorithm>
#include <filesystem>
#include <memory>
#include <vector>

#include <libssh/libssh.h>
#include <spdlog/spdlog.h>

#include "ferry/Error.h"
#include "ferry/Files.h"
#include "ferry/RegistryProtocol.h"

namespace ferry {

namespace {

struct KeyFree {
    void operator()(ssh_key k) const { ssh_key_free(k); }
};
using KeyPtr = std::unique_ptr<ssh_key_struct, KeyFree>;

std::string keyToLine(ssh_key key)
{
    char* b64 = nullptr;
    if (ssh_pki_export_pubkey_base64(key, &b64) != SSH_OK)
        throw Error("Failed to export a public key");
    std::string line = std::string(ssh_key_type_to_char(ssh_key_type(key))) + " " + b64;
    ssh_string_free_char(b64);
    return line;
}

} // namespace

bool ensureKeyPair(const std::string& privateKeyFile)
{
    struct stat st {};
    if (::stat(privateKeyFile.c_str(), &st) == 0)
        return false;
    ssh_key key = nullptr;
    if (ssh_pki_generate(SSH_KEYTYPE_ED25519, 0, &key) != SSH_OK)
        throw Error("Failed to generate an ed25519 key pair");
    KeyPtr owned(key);
    // Exported to memory and written atomically (temp file, fsync, rename):
    // a crash mid-write must not leave a truncated key that the next start
    // would take for an existing one, and the rename replaces whatever sits
    // at the path (a symlink) instead of writing through it. The public
    // half first: the private key's presence is what says "done".
    char* text = nullptr;
    if (ssh_pki_export_privkey_base64(key, nullptr, nullptr, nullptr, &text) != SSH_OK || text == nullptr)
        throw Error("Failed to export the private key for " + privateKeyFile);
    std::string privateText(text);
    ssh_string_free_char(text);
    writeFileAtomic(privateKeyFile + ".pub", keyToLine(key) + "\n", 0644);
    writeFileAtomic(privateKeyFile, privateText, 0600);
    return true;
}

std::string publicKeyLine(const std::string& keyFile)
{
    ssh_key key = nullptr;
    if (ssh_pki_import_privkey_file(keyFile.c_str(), nullptr, nullptr, nullptr, &key) == SSH_OK ||
        ssh_pki_import_pubkey_file(keyFile.c_str(), &key) == SSH_OK) {
        KeyPtr owned(key);
        return keyToLine(key);
    }
    throw Error("Failed to read the key " + keyFile);
}

std::string fingerprintOf(ssh_key_struct* key)
{
    unsigned char* hash = nullptr;
    size_t len = 0;
    if (ssh_get_publickey_hash(key, SSH_PUBLICKEY_HASH_SHA256, &hash, &len) != SSH_OK)
        return "unknown";
    char* fp = ssh_get_fingerprint_hash(SSH_PUBLICKEY_HASH_SHA256, hash, len);
    std::string out = fp ? fp : "unknown";
    ssh_string_free_char(fp);
    ssh_clean_pubkey_hash(&hash);
    return out;
}

std::string fingerprintOf(const std::string& line)
{
    const auto sp = line.find(' ');
    if (sp == std::string::npos)
        throw Error("Failed to parse the public key '" + line.substr(0, 40) + "': expected '<type> <base64>'");
    std::string b64 = line.substr(sp + 1);
    b64 = b64.substr(0, b64.find(' '));
    ssh_key key = nullptr;
    if (ssh_pki_import_pubkey_base64(b64.c_str(), ssh_key_type_from_name(line.substr(0, sp).c_str()), &key) != SSH_OK)
        throw Error("Failed to parse the public key '" + line.substr(0, 40) + "'");
    KeyPtr owned(key);
    return fingerprintOf(key);
}

std::vector<std::string> readSshdHostKeys(const std::string& dir)
{
    std::vector<std::string> files;
    std::error_code ec;
    for (const auto& entry : std::filesystem::directory_iterator(dir, ec)) {
        const std::string name = entry.path().filename().string();
        if (name.rfind("ssh_host_", 0) == 0 && name.size() > 12 && name.ends_with("_key.pub"))
            files.push_back(entry.path().string());
    }
    if (ec)
        spdlog::warn("Failed to list the sshd host keys in {}: {}; going on without them", dir, ec.message());
    std::sort(files.begin(), files.end());
    std::vector<std::string> keys;
    for (const auto& f : files) {
        if (keys.size() >= kMaxHostKeys) {
            spdlog::warn("Ignoring sshd host key {}: at most {} are sent", f, kMaxHostKeys);
            continue;
        }
        try {
            auto key = normalizeKeyLine(readFile(f, kMaxKeyLine));
            if (std::find(keys.begin(), keys.end(), key) == keys.end())
                keys.push_back(std::move(key));
        } catch (const std::exception& e) {
            spdlog::warn("Ignoring sshd host key {}: {}", f, e.what());
        }
    }
    return keys;
}

std::vector<std::string> sshdHostKeyFingerprints(const std::string& dir)
{
    std::vector<std::string> out;
    for (const auto& line : readSshdHostKeys(dir))
        out.push_back(fingerprintOf(line));
    return out;
}

} // namespace ferry
