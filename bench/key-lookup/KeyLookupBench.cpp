// bench/key-lookup: how long sshd takes to authenticate a node's public key
// when the keys come from the registry through ferry-authorized-keys, against
// a plain authorized_keys file holding the same keys, for registries of 100,
// 10,000 and 100,000 nodes. The node that logs in is the last one added (the
// worst place for a file, which sshd reads top to bottom).
//
// Timed: the publickey userauth request alone (one signed request with
// libssh, so sshd looks the key up once), on a fresh connection each time;
// the key exchange before it is not timed. Also timed: the helper on its own
// (fork + exec + lookup), as sshd runs it.
//
// Needs root: sshd runs in a mount namespace (tests/support TestSshd) and
// the helper runs as user ferry, as the shipped drop-in says.
//
// The certificate column (issue 15): the same login with an OpenSSH user
// certificate signed by the registry's CA, against an sshd that trusts the
// CA (TrustedUserCAKeys) and checks a KRL of 100,000 revoked serials
// (RevokedKeys, 100,000 of 125,000 serials, so that they do not collapse into one range), with
// no AuthorizedKeysCommand and no authorized_keys: no process and no lookup
// per login, whatever the number of nodes.

#include <libssh/libssh.h>
#include <openssl/evp.h>
#include <sqlite3.h>
#include <pwd.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <string>
#include <vector>

#include "ferry/AuthorizedKeysView.h"
#include "ferry/Crypto.h"
#include "ferry/MasterSchema.h"
#include "ferry/NodeCertificates.h"
#include "ferry/RegistryStore.h"
#include "ferry/Sqlite.h"
#include "ferry/SshSession.h"
#include "support/TestSshd.h"
#include "support/TestSupport.h"

namespace {

using namespace ferry;
using namespace ferry::test;
using Ms = std::chrono::duration<double, std::milli>;

constexpr int kAuthReps = 40;
constexpr int kHelperReps = 200;

std::string base64(const std::string& bytes)
{
    std::string out(4 * ((bytes.size() + 2) / 3) + 1, '\0');
    const int n = EVP_EncodeBlock(reinterpret_cast<unsigned char*>(out.data()),
                                  reinterpret_cast<const unsigned char*>(bytes.data()), static_cast<int>(bytes.size()));
    out.resize(static_cast<std::size_t>(n));
    return out;
}

// A well-formed ed25519 public key line with random key bytes.
std::string fakeKey()
{
    std::string blob;
    auto put = [&](const std::string& s) {
        const auto len = static_cast<std::uint32_t>(s.size());
        for (int shift = 24; shift >= 0; shift -= 8)
            blob.push_back(static_cast<char>(len >> shift));
        blob += s;
    };
    put("ssh-ed25519");
    put(randomBytes(32));
    return "ssh-ed25519 " + base64(blob);
}

// master.db and authorized_keys with count keys, the real one last.
void populate(const std::string& dir, int count, const std::string& realKey)
{
    std::filesystem::remove(dir + "/master.db");
    std::filesystem::remove(dir + "/authorized_keys");
    {
        RegistryStore store(dir + "/master.db");  // schema and the public_key index
    }
    Database db(dir + "/master.db");
    std::string file;
    file.reserve(static_cast<std::size_t>(count) * 140);
    Transaction tx(db);
    Statement ins(db, "INSERT INTO nodes (name, secret, state, public_key) VALUES (?1, ?2, 'accepted', ?3)");
    const std::string secret = generateSecret();
    for (int i = 0; i < count; ++i) {
        const std::string key = i + 1 == count ? realKey : fakeKey();
        ins.reset();
        ins.bind(1, "node-" + std::to_string(i)).bind(2, secret).bind(3, key).run();
        file += "restrict " + key + "\n";
    }
    tx.commit();
    db.exec("PRAGMA wal_checkpoint(TRUNCATE)");
    writeFile(dir + "/authorized_keys", file, 0644);
    // What the helper reads: the view registryd keeps (AuthorizedKeysView.h).
    RegistryStore store(dir + "/master.db");
    writeAuthorizedKeysView(store.connection(), authorizedKeysViewPath(dir + "/master.db"));
}

// Median and 90th percentile of one userauth request, in ms.
std::pair<double, double> timeAuth(int port, const std::string& keyFile, int reps, const std::string& certFile = {})
{
    ssh_key key = nullptr;
    if (ssh_pki_import_privkey_file(keyFile.c_str(), nullptr, nullptr, nullptr, &key) != SSH_OK)
        throw std::runtime_error("cannot read " + keyFile);
    if (!certFile.empty()) {
        ssh_key cert = nullptr;
        if (ssh_pki_import_cert_file(certFile.c_str(), &cert) != SSH_OK || ssh_pki_copy_cert_to_privkey(cert, key) != SSH_OK)
            throw std::runtime_error("cannot attach the certificate " + certFile);
        ssh_key_free(cert);
    }
    std::vector<double> samples;
    for (int i = 0; i < reps; ++i) {
        ssh_session s = ssh_new();
        const unsigned int p = static_cast<unsigned int>(port);
        bool no = false;
        ssh_options_set(s, SSH_OPTIONS_HOST, "127.0.0.1");
        ssh_options_set(s, SSH_OPTIONS_PORT, &p);
        ssh_options_set(s, SSH_OPTIONS_USER, "ferry-tunnel");
        ssh_options_set(s, SSH_OPTIONS_PROCESS_CONFIG, &no);
        ssh_options_set(s, SSH_OPTIONS_KNOWNHOSTS, "/dev/null");
        ssh_options_set(s, SSH_OPTIONS_GLOBAL_KNOWNHOSTS, "/dev/null");
        // Without it every request/response turn waits ~40 ms for delayed ACKs (recipes/LIBS.md).
        int yes = 1;
        ssh_options_set(s, SSH_OPTIONS_NODELAY, &yes);
        if (ssh_connect(s) != SSH_OK)
            throw std::runtime_error(std::string("connect failed: ") + ssh_get_error(s));
        const auto t0 = std::chrono::steady_clock::now();
        const int rc = ssh_userauth_publickey(s, "ferry-tunnel", key);
        const auto t1 = std::chrono::steady_clock::now();
        if (rc != SSH_AUTH_SUCCESS)
            throw std::runtime_error("sshd on port " + std::to_string(port) + " refused the key (rc " + std::to_string(rc) + ")" + (certFile.empty() ? "" : " with its certificate"));
        samples.push_back(Ms(t1 - t0).count());
        ssh_disconnect(s);
        ssh_free(s);
    }
    ssh_key_free(key);
    std::sort(samples.begin(), samples.end());
    return {samples[samples.size() / 2], samples[samples.size() * 9 / 10]};
}

// fork, drop to user ferry, exec the helper, read its line, reap: what sshd does.
double timeHelper(const std::string& helper, const std::string& dir, const std::string& realKey, int reps)
{
    const auto sp = realKey.find(' ');
    const std::string type = realKey.substr(0, sp), blob = realKey.substr(sp + 1);
    const passwd* pw = ::getpwnam("ferry");
    if (pw == nullptr)
        throw std::runtime_error("no user ferry");
    std::vector<double> samples;
    for (int i = 0; i < reps; ++i) {
        int fds[2];
        if (::pipe(fds) != 0)
            throw std::runtime_error("pipe failed");
        const auto t0 = std::chrono::steady_clock::now();
        const pid_t pid = ::fork();
        if (pid == 0) {
            ::dup2(fds[1], STDOUT_FILENO);
            ::close(fds[0]);
            ::close(fds[1]);
            if (::setgid(pw->pw_gid) != 0 || ::setuid(pw->pw_uid) != 0)
                ::_exit(127);
            ::execl(helper.c_str(), helper.c_str(), "--state-dir", dir.c_str(), "ferry-tunnel", type.c_str(),
                    blob.c_str(), static_cast<char*>(nullptr));
            ::_exit(127);
        }
        ::close(fds[1]);
        std::string out;
        char buf[4096];
        for (ssize_t n; (n = ::read(fds[0], buf, sizeof buf)) > 0;)
            out.append(buf, static_cast<std::size_t>(n));
        ::close(fds[0]);
        int status = 0;
        ::waitpid(pid, &status, 0);
        const auto t1 = std::chrono::steady_clock::now();
        if (out.find(realKey) == std::string::npos)
            throw std::runtime_error("the helper did not find the key (status " + std::to_string(status) + ")");
        samples.push_back(Ms(t1 - t0).count());
    }
    std::sort(samples.begin(), samples.end());
    return samples[samples.size() / 2];
}

// The lookup the helper does (open read-only, one indexed query, close),
// in-process: what is left once process start-up is taken away. Median, µs.
double timeLookup(const std::string& dir, const std::string& realKey, int reps)
{
    const std::string db = authorizedKeysViewPath(dir + "/master.db");
    std::vector<double> samples;
    for (int i = 0; i < reps; ++i) {
        const auto t0 = std::chrono::steady_clock::now();
        sqlite3* h = nullptr;
        sqlite3_stmt* st = nullptr;
        sqlite3_open_v2(("file:" + db + "?immutable=1").c_str(), &h,
                        SQLITE_OPEN_READONLY | SQLITE_OPEN_NOMUTEX | SQLITE_OPEN_URI, nullptr);
        sqlite3_prepare_v2(h, schema::kAuthorizedKeysViewQuery, -1, &st, nullptr);
        sqlite3_bind_text(st, 1, realKey.data(), static_cast<int>(realKey.size()), SQLITE_STATIC);
        const int rc = sqlite3_step(st);
        sqlite3_finalize(st);
        sqlite3_close(h);
        const auto t1 = std::chrono::steady_clock::now();
        if (rc != SQLITE_ROW)
            throw std::runtime_error("in-process lookup did not find the key");
        samples.push_back(std::chrono::duration<double, std::micro>(t1 - t0).count());
    }
    std::sort(samples.begin(), samples.end());
    return samples[samples.size() / 2];
}

} // namespace

int main(int argc, char* argv[]) try {
    if (!isRoot()) {
        std::fprintf(stderr, "bench/key-lookup needs root (sshd in a mount namespace, user ferry)\n");
        return 1;
    }
    std::vector<int> sizes{100, 10000, 100000};
    if (argc > 1) {
        sizes.clear();
        for (int i = 1; i < argc; ++i)
            sizes.push_back(std::stoi(argv[i]));
    }
    ensureUser("ferry", "/usr/sbin/nologin");
    ensureUser("ferry-tunnel", "/usr/sbin/nologin");
    TempDir root;
    ::chmod(root.path().c_str(), 0755);
    const std::string dir = root / "master";
    std::filesystem::create_directories(dir);
    ensureKeyPair(root / "node_key");
    const std::string realKey = publicKeyLine(root / "node_key");
    const std::string helper = buildPath("services/authorized-keys/ferry-authorized-keys");

    SshdOptions viaHelper;
    viaHelper.tail = "Match User ferry-tunnel\n\tAuthorizedKeysCommand " + helper + " --state-dir " + dir +
                     " %u %t %k\n\tAuthorizedKeysCommandUser ferry\n\tAuthorizedKeysFile none\n";
    SshdOptions viaFile;
    viaFile.tail = "Match User ferry-tunnel\n\tAuthorizedKeysFile " + dir + "/authorized_keys\n";
    TestSshd helperSshd(viaHelper);
    TestSshd fileSshd(viaFile);

    // The certificate path: a CA, the node's certificate, a KRL of 100,000
    // serials. The CA is RSA (3072 bits), the type services/registryd/README.md
    // advises: it costs sshd the least per login (docs/master-sizing.md).
    const std::string ca = root / "ca";
    run({"ssh-keygen", "-q", "-t", "rsa", "-b", "3072", "-N", "", "-f", ca});
    // 100,000 revoked of 125,000 issued (every fifth still valid), written
    // as the registry writes its KRLs (see NodeCertificates.h): runs of four,
    // so 25,000 serial ranges. sshd loads the KRL at every login; what that
    // costs is in the certificate column.
    std::vector<std::uint64_t> revoked;
    for (std::uint64_t serial = 1; revoked.size() < 100000; ++serial)
        if (serial % 5 != 0)
            revoked.push_back(serial);
    const auto krlStart = std::chrono::steady_clock::now();
    const auto krlShape = writeRevocationList(ca + ".pub", revoked, root / "revoked.krl", 1, 0);
    const double krlMs = Ms(std::chrono::steady_clock::now() - krlStart).count();
    CertificateRequest certRequest;
    certRequest.caKeyFile = ca;
    certRequest.publicKey = realKey;
    certRequest.keyId = "ferry-node:bench#1000000";
    certRequest.principals = {"ferry-tunnel", "node:bench"};
    certRequest.serial = 1000000;
    certRequest.validity = "-5m:+1d";
    writeFile(root / "node_key-cert.pub", signUserCertificate(certRequest) + "\n", 0644);
    SshdOptions viaCa;
    viaCa.globalLines = {"TrustedUserCAKeys " + ca + ".pub", "RevokedKeys " + (root / "revoked.krl")};
    viaCa.tail = "Match User ferry-tunnel\n\tAuthorizedKeysFile none\n";
    TestSshd caSshd(viaCa);
    std::printf("KRL of %zu revoked certificates (scattered serials 1..%llu): %s, written and checked in %.0f ms\n",
                revoked.size(), static_cast<unsigned long long>(revoked.back()), describe(krlShape).c_str(), krlMs);

    std::printf("sshd public-key authentication, one userauth request, median (p90) of %d, ms\n", kAuthReps);
    std::printf("%10s  %18s  %18s  %12s  %14s  %10s  %18s  %12s  %12s\n", "nodes", "helper (registry)",
                "authorized_keys", "file/helper", "helper alone", "lookup", "certificate+KRL", "file/cert",
                "helper/cert");
    for (int n : sizes) {
        populate(dir, n, realKey);
        run({"chown", "-R", "ferry:ferry", dir, dir + "-authkeys"});
        // One warm-up each: the first connection pays for page-cache misses.
        timeAuth(helperSshd.port(), root / "node_key", 1);
        timeAuth(fileSshd.port(), root / "node_key", 1);
        const auto [helperMed, helperP90] = timeAuth(helperSshd.port(), root / "node_key", kAuthReps);
        const auto [fileMed, fileP90] = timeAuth(fileSshd.port(), root / "node_key", kAuthReps);
        const double alone = timeHelper(helper, dir, realKey, kHelperReps);
        const double lookup = timeLookup(dir, realKey, 1000);
        // The certificate path does not depend on n: no lookup happens; it is
        // measured again per row so that the rows compare within one moment.
        try {
            timeAuth(caSshd.port(), root / "node_key", 1, root / "node_key-cert.pub");
        } catch (const std::exception&) {
            std::fprintf(stderr, "%s", caSshd.log().c_str());
            throw;
        }
        const auto [certMed, certP90] = timeAuth(caSshd.port(), root / "node_key", kAuthReps, root / "node_key-cert.pub");
        std::printf("%10d  %8.2f (%7.2f)  %8.2f (%7.2f)  %11.2fx  %11.2f ms  %7.0f us  %8.2f (%7.2f)  %11.2fx  "
                    "%11.2fx\n",
                    n, helperMed, helperP90, fileMed, fileP90, fileMed / helperMed, alone, lookup, certMed, certP90,
                    fileMed / certMed, helperMed / certMed);
        std::fflush(stdout);
    }
    std::printf("helper alone: fork + setuid ferry + exec + lookup + reap, median of %d (what sshd does per key)\n"
                "lookup: open + indexed query + close in-process, median of 1000\n"
                "certificate+KRL: the node's certificate against TrustedUserCAKeys and a 100,000-serial KRL, "
                "no AuthorizedKeysCommand\n"
                "helper/cert: how many times a login through the AuthorizedKeysCommand helper costs one with a "
                "certificate (same run, same rows)\n",
                kHelperReps);
    return 0;
} catch (const std::exception& e) {
    std::fprintf(stderr, "bench/key-lookup: %s\n", e.what());
    return 1;
}
