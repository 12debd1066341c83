#pragma once
// OpenSSH user certificates for nodes (issue 15): the registry signs each
// accepted node's key with the master's CA key, so that every master's sshd
// (TrustedUserCAKeys) admits the node with no AuthorizedKeysCommand process
// and no database lookup per login; revoked certificates go into a KRL
// (RevokedKeys) that the registry rewrites.
//
// Signing and KRL generation run OpenSSH's own ssh-keygen as a child
// process (so no certificate encoder of ours can get the format wrong), in a
// private temporary directory, with a deadline.
//
// What the certificate allows, as sshd honours it: the principals (sshd
// admits a certificate only when the login user, the tunnel user
// "ferry-tunnel", is one of them; "node:NAME" names the node for audit and for masters that use
// an AuthorizedPrincipalsFile), the key ID "ferry-node:NAME#SERIAL" (logged
// by sshd), and the options "clear" (no pty, no agent, no X11, no user rc,
// no forwarding of any kind) and
// "force-command=/usr/libexec/ferry/ferry-tunnel-relay" (the only command
// that runs: the relay to the collector, which is also the tunnel user's
// shell and the sshd drop-in's ForceCommand).

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace ferry {

struct CertificateRequest {
    std::string caKeyFile;   // the CA's private key (its public half at caKeyFile.pub)
    std::string publicKey;   // the node's key, "type base64"
    std::string keyId;
    std::vector<std::string> principals;
    std::uint64_t serial = 0;
    std::string validity;    // ssh-keygen -V, e.g. "-5m:+604800s" or "20200101:20200102"
    std::vector<std::string> options = {"clear", "force-command=/usr/libexec/ferry/ferry-tunnel-relay"};
};

// The certificate line ("ssh-ed25519-cert-v01@openssh.com AAAA… keyId").
// Throws Error naming the key ID and ssh-keygen's complaint.
std::string signUserCertificate(const CertificateRequest& request);

// What a node needs to know of its own certificate to renew it in time.
struct CertificateInfo {
    std::string type; // "ssh-ed25519-cert-v01@openssh.com"
    std::uint64_t serial = 0;
    std::string keyId;
    std::vector<std::string> principals;
    std::int64_t validAfterMs = 0;
    std::int64_t validBeforeMs = 0; // OpenSSH's "forever" reads as INT64_MAX
};

// Reads an OpenSSH certificate line ("<type>-cert-v01@openssh.com <base64>
// [comment]") as far as its validity (PROTOCOL.certkeys: nonce, the key's
// own fields by type, serial, type, key ID, principals, valid after, valid
// before), with every length checked against the blob. Throws ProtocolError
// naming what is wrong.
CertificateInfo readCertificate(std::string_view line);

struct RevokedCertificate {
    std::uint64_t serial = 0;
    std::string keyId;  // unique per certificate (the registry uses "ferry-node:NAME#SERIAL")
};

// Writes a KRL revoking these certificates of the CA whose public key is
// caPublicKeyFile, to path (atomically, mode 0644), and returns how it
// revokes them ("serials" or "key IDs").
//
// By serial first: the smallest KRL. But ssh-keygen 9.2 encodes a dense run
// of serials as one bitmap, and sshd 9.2 cannot load a bitmap longer than
// its bignum limit (16 KiB, about 131,000 serials of span): it then refuses
// every certificate ("bignum is too large"). So the KRL is loaded back with
// ssh-keygen -Q (OpenSSH's own KRL reader) and, if that fails, written
// again revoking the certificates by key ID, which has no such limit.
std::string writeRevocationList(const std::string& caPublicKeyFile, const std::vector<RevokedCertificate>& revoked,
                                const std::string& path);

} // namespace ferry
