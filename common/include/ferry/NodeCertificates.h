#pragma once
// OpenSSH user certificates for nodes (issue 15): the registry signs each
// accepted node's key with the master's CA key, so that every master's sshd
// (TrustedUserCAKeys) admits the node with no AuthorizedKeysCommand process
// and no database lookup per login; revoked certificates go into a KRL
// (RevokedKeys) that the registry rewrites.
//
// Signing runs OpenSSH's own ssh-keygen as a child process (so no
// certificate encoder of ours can get the format wrong), in a private
// temporary directory, with a deadline. KRLs are encoded here (see
// encodeRevocationList for why) and loaded back with ssh-keygen -Q.
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

#include <cstddef>
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

// How a KRL revokes its serials: what the log and the bench print.
struct RevocationListShape {
    std::size_t serials = 0; // distinct serials revoked
    std::size_t ranges = 0;  // KRL_SECTION_CERT_SERIAL_RANGE sections
    std::size_t bitmaps = 0; // KRL_SECTION_CERT_SERIAL_BITMAP sections
    std::size_t listed = 0;  // serials in KRL_SECTION_CERT_SERIAL_LIST
    std::size_t bytes = 0;   // the whole KRL
};

// The widest serial bitmap one KRL section may hold. sshd 9.2 reads the
// bitmap as an SSH bignum, whose limit is 16384 bits (SSHBUF_MAX_BIGNUM,
// 2048 bytes): a wider one makes it refuse every certificate ("bignum is too
// large"). ssh-keygen -k writes bitmaps of any width, so the registry writes
// its KRLs itself.
inline constexpr std::uint64_t kKrlBitmapBits = 16384;

// A KRL (OpenSSH's PROTOCOL.krl, format version 1) revoking these serials
// of the CA whose public key blob (the decoded base64 of its .pub line) is
// caKeyBlob. Serials are revoked by serial only, never by key ID (sshd parses
// every key ID string of a KRL at each authentication: seconds for 100,000).
// sshd's cost per authentication is one tree insertion per range and one
// per single serial, so every run of two or more serials is a range, and
// single serials go into bitmaps of at most kKrlBitmapBits or one list,
// whichever is smaller. Unsigned (sshd does not check KRL signatures).
std::string encodeRevocationList(std::string_view caKeyBlob, std::vector<std::uint64_t> serials,
                                 std::uint64_t krlVersion, std::int64_t generatedMs,
                                 RevocationListShape* shape = nullptr);

// Writes encodeRevocationList's KRL for the CA whose public key file is
// caPublicKeyFile to path, atomically with mode 0644 (sshd reads
// RevokedKeys at every authentication, so the rename is all it takes), after
// loading it back with ssh-keygen -Q (OpenSSH's own KRL reader): a KRL sshd
// cannot load would lock every node out. Throws Error naming path.
RevocationListShape writeRevocationList(const std::string& caPublicKeyFile, const std::vector<std::uint64_t>& serials,
                                        const std::string& path, std::uint64_t krlVersion, std::int64_t generatedMs);

// "100000 serials: 0 ranges, 13 bitmaps, 1200 listed, 26123 bytes"
std::string describe(const RevocationListShape& shape);

} // namespace ferry
