// ferry-authorized-keys: sshd's AuthorizedKeysCommand for the master's tunnel
// user. sshd runs it for every public key a client offers:
//
//   AuthorizedKeysCommand /usr/libexec/ferry/ferry-authorized-keys %u %t %k
//
// It looks the offered key up and prints one restricted authorized_keys
// line when the key belongs to an accepted node, nothing otherwise. sshd
// runs it as its own user, ferry-authkeys (AuthorizedKeysCommandUser in the
// shipped drop-in), which can read neither master.db nor the node keys: it
// reads the view registryd keeps of who may log in
// (/var/lib/ferry-authkeys/authorized-keys.db, AuthorizedKeysView.h),
// rewritten whenever a node is accepted, declined, revoked, re-keyed or
// given a new secret; revoking a node takes effect on its next connection.
// On masters sharing a PostgreSQL registry (/etc/ferry/store.yml) it asks
// the database, as a role that may read only nodes' name, state and
// public_key (docs/postgresql.md).
//
// It runs once per authentication attempt, so it is deliberately small: no
// logging framework, no D-Bus, one read-only SQLite lookup by the view's
// primary key. Exit status 0 with no output means "no key"; anything
// unexpected goes to stderr and exits 1, which sshd also treats as "no key".
//
// Its start is most of its cost, so it links only libc, libm and libsqlite3
// (libstdc++ and yaml-cpp come from their archives). libpq is loaded with
// dlopen, and only on a master whose store.yml names PostgreSQL: linked in,
// libpq brought 24 more shared libraries (OpenLDAP, GnuTLS, Kerberos) whose
// relocation and constructors took about 80 % of every run, also on masters
// that never talk to PostgreSQL (bench/master-load, perf by library).

#include <dlfcn.h>
#include <libpq-fe.h>
#include <sqlite3.h>

#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <string_view>
#include <type_traits>
#include <vector>

#include "ferry/DaemonArgs.h"

#include "ferry/MasterSchema.h"
#include "ferry/YamlReader.h"

namespace {

constexpr const char* kDefaultView = "/var/lib/ferry-authkeys/authorized-keys.db";
constexpr const char* kDefaultUser = "ferry-tunnel";
// No pty, no forwarding of any kind, no agent, no X11, no user rc: the
// tunnel user's sessions run ferry-tunnel-relay (its shell and sshd's
// ForceCommand) and nothing else.
constexpr const char* kKeyOptions = "restrict";

bool plainToken(std::string_view s, bool base64)
{
    if (s.empty() || s.size() > 16384)
        return false;
    for (char c : s) {
        const bool alnum = (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9');
        const bool ok = alnum || (base64 ? (c == '+' || c == '/' || c == '=') : (c == '-' || c == '@' || c == '.'));
        if (!ok)
            return false;
    }
    return true;
}

// store.yml's `authorized_keys_postgresql:`, else `postgresql:` ("" for
// master.db). The daemons validate the file; this only reads the keys.
std::string postgresFromStoreConfig()
{
    const char* env = std::getenv("FERRY_CONFIG_DIR");
    const std::string dir = env != nullptr && *env != '\0' ? env : "/etc/ferry";
    auto map = ferry::YamlMap::loadFile(dir + "/store.yml");
    if (!map)
        return {};
    // Its own role's connection first (it cannot read the daemons' passfile).
    if (auto own = map->string("authorized_keys_postgresql"); own && !own->empty())
        return *own;
    return map->string("postgresql").value_or("");
}

// The part of libpq the lookup uses, resolved from Debian's libpq5 (a
// dependency of ferry-master) at run time.
struct Libpq {
    decltype(&PQconnectdbParams) connectdbParams = nullptr;
    decltype(&PQstatus) status = nullptr;
    decltype(&PQerrorMessage) errorMessage = nullptr;
    decltype(&PQfinish) finish = nullptr;
    decltype(&PQexecParams) execParams = nullptr;
    decltype(&PQresultStatus) resultStatus = nullptr;
    decltype(&PQresultErrorMessage) resultErrorMessage = nullptr;
    decltype(&PQntuples) ntuples = nullptr;
    decltype(&PQgetvalue) getvalue = nullptr;
    decltype(&PQclear) clear = nullptr;
};

// Loads libpq.so.5; on failure prints why (naming the library) and returns false.
bool loadLibpq(Libpq& pq)
{
    void* lib = ::dlopen("libpq.so.5", RTLD_NOW | RTLD_LOCAL);
    if (lib == nullptr) {
        std::fprintf(stderr, "ferry-authorized-keys: store.yml names PostgreSQL, but libpq.so.5 cannot be loaded: %s\n",
                     ::dlerror());
        return false;
    }
    bool ok = true;
    auto resolve = [&](auto& fn, const char* name) {
        fn = reinterpret_cast<std::remove_reference_t<decltype(fn)>>(::dlsym(lib, name));
        if (fn == nullptr) {
            std::fprintf(stderr, "ferry-authorized-keys: libpq.so.5 has no %s\n", name);
            ok = false;
        }
    };
    resolve(pq.connectdbParams, "PQconnectdbParams");
    resolve(pq.status, "PQstatus");
    resolve(pq.errorMessage, "PQerrorMessage");
    resolve(pq.finish, "PQfinish");
    resolve(pq.execParams, "PQexecParams");
    resolve(pq.resultStatus, "PQresultStatus");
    resolve(pq.resultErrorMessage, "PQresultErrorMessage");
    resolve(pq.ntuples, "PQntuples");
    resolve(pq.getvalue, "PQgetvalue");
    resolve(pq.clear, "PQclear");
    return ok;
}

// The same lookup on PostgreSQL, with the connect bounded (sshd waits).
int lookUpInPostgres(const std::string& conninfo, const std::string& line)
{
    Libpq pq;
    if (!loadLibpq(pq))
        return 1;
    const char* keywords[] = {"dbname", "connect_timeout", nullptr};
    const char* values[] = {conninfo.c_str(), "5", nullptr};
    PGconn* conn = pq.connectdbParams(keywords, values, 1);
    if (conn == nullptr || pq.status(conn) != CONNECTION_OK) {
        std::fprintf(stderr, "ferry-authorized-keys: Failed to connect to the registry on PostgreSQL: %s",
                     conn != nullptr ? pq.errorMessage(conn) : "out of memory\n");
        pq.finish(conn);
        return 1;
    }
    std::string sql = ferry::schema::kAuthorizedKeyQuery;
    sql.replace(sql.find("?1"), 2, "$1");
    const char* params[] = {line.c_str()};
    PGresult* result = pq.execParams(conn, sql.c_str(), 1, nullptr, params, nullptr, nullptr, 0);
    int status = 0;
    if (pq.resultStatus(result) != PGRES_TUPLES_OK) {
        std::fprintf(stderr, "ferry-authorized-keys: Failed to look the key up on PostgreSQL: %s",
                     pq.resultErrorMessage(result));
        status = 1;
    } else if (pq.ntuples(result) == 1) {
        std::printf("%s %s\n", kKeyOptions, pq.getvalue(result, 0, 0));
    }
    pq.clear(result);
    pq.finish(conn);
    return status;
}

} // namespace

int main(int argc, char* argv[])
{
    std::string view = kDefaultView;
    std::string tunnelUser = kDefaultUser;
    std::vector<std::string> operands;
    try {
        ferry::ArgParser("ferry-authorized-keys", "sshd's AuthorizedKeysCommand for the master's tunnel user")
            .option("--view", "FILE", "the view of authorized keys (default " + std::string(kDefaultView) + ")",
                    [&](const std::string& v) { view = v; })
            .option("--state-dir", "DIR", "the master's state directory: the view is DIR-authkeys/authorized-keys.db",
                    [&](const std::string& v) {
                        std::string dir = v;
                        while (dir.size() > 1 && dir.back() == '/')
                            dir.pop_back();
                        view = dir + "-authkeys/authorized-keys.db";
                    })
            .option("--tunnel-user", "USER", "the only user whose keys are looked up (default ferry-tunnel)",
                    [&](const std::string& v) { tunnelUser = v; })
            .operands("USER KEYTYPE BASE64KEY", 3, 3, [&](const std::vector<std::string>& o) { operands = o; })
            .optionsEndAtFirstOperand()
            .epilog("sshd: AuthorizedKeysCommand ferry-authorized-keys %u %t %k")
            .parse(argc, argv);
    } catch (const std::exception& e) {
        std::fprintf(stderr, "ferry-authorized-keys: %s\n", e.what());
        return 2;
    }
    const std::string_view user = operands[0], type = operands[1], key = operands[2];

    // Other users' keys are none of the registry's business.
    if (user != tunnelUser)
        return 0;
    if (!plainToken(type, false) || !plainToken(key, true)) {
        std::fprintf(stderr, "ferry-authorized-keys: refusing a malformed key of type '%.40s'\n",
                     std::string(type).c_str());
        return 1;
    }

    const std::string line = std::string(type) + " " + std::string(key);
    try {
        if (const std::string conninfo = postgresFromStoreConfig(); !conninfo.empty())
            return lookUpInPostgres(conninfo, line);
    } catch (const std::exception& e) {
        std::fprintf(stderr, "ferry-authorized-keys: %s\n", e.what());
        return 1;
    }
    // immutable: the view is replaced by a rename and never written in
    // place, so the reader needs no lock and no journal (and could make none).
    std::string uri = "file:";
    for (const char c : view) {
        if (c == '%' || c == '?' || c == '#') {
            char escaped[4];
            std::snprintf(escaped, sizeof escaped, "%%%02X", static_cast<unsigned char>(c));
            uri += escaped;
        } else {
            uri += c;
        }
    }
    uri += "?immutable=1";
    sqlite3* handle = nullptr;
    if (sqlite3_open_v2(uri.c_str(), &handle, SQLITE_OPEN_READONLY | SQLITE_OPEN_NOMUTEX | SQLITE_OPEN_URI, nullptr) !=
        SQLITE_OK) {
        std::fprintf(stderr, "ferry-authorized-keys: Failed to open the authorized keys view %s: %s\n", view.c_str(),
                     handle ? sqlite3_errmsg(handle) : "out of memory");
        sqlite3_close(handle);
        return 1;
    }
    sqlite3_stmt* stmt = nullptr;
    // The query text lives with the schema's one owner (MasterSchema.h, a
    // header without dependencies, so this helper stays small).
    int rc = sqlite3_prepare_v2(handle, ferry::schema::kAuthorizedKeysViewQuery, -1, &stmt, nullptr);
    if (rc == SQLITE_OK)
        rc = sqlite3_bind_text(stmt, 1, line.data(), static_cast<int>(line.size()), SQLITE_STATIC);
    if (rc == SQLITE_OK)
        rc = sqlite3_step(stmt);
    int status = 0;
    if (rc == SQLITE_ROW) {
        // The printed key is the one stored, which equals the offered one.
        std::printf("%s %s\n", kKeyOptions, reinterpret_cast<const char*>(sqlite3_column_text(stmt, 0)));
    } else if (rc != SQLITE_DONE) {
        std::fprintf(stderr, "ferry-authorized-keys: Failed to look the key up in %s: %s\n", view.c_str(),
                     sqlite3_errmsg(handle));
        status = 1;
    }
    sqlite3_finalize(stmt);
    sqlite3_close(handle);
    return status;
}
