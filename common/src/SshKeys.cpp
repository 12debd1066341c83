#include "ferry/SshKeys.h"

#include <sys/stat.h>

#include <memory>

#include <libssh/libssh.h>

#include "ferry/Error.h"
#include "ferry/Files.h"

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

} // namespace ferry
