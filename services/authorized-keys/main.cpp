// ferry-authorized-keys: sshd's AuthorizedKeysCommand for the master's tunnel
// user. sshd runs it for every public key a client offers:
//
//   AuthorizedKeysCommand /usr/libexec/ferry/ferry-authorized-keys %u %t %k
//
// It looks the offered key up in the registry (master.db, or the PostgreSQL
// database that /etc/ferry/store.yml names for masters sharing one) and prints one
// restricted authorized_keys line when the key belongs to an accepted node,
// nothing otherwise. Revoking a node therefore takes effect on its next
// connection with no file rewritten.
//
// It runs once per authentication attempt, so it is deliberately small: no
// logging framework, no D-Bus, one read-only SQLite lookup by an indexed
// column (the index is created by registryd). Exit status 0 with no output
// means "no key"; anything unexpected goes to stderr and exits 1, which sshd
// also treats as "no key".

#include <libpq-fe.h>
#include <sqlite3.h>

#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <string_view>
#include <vector>

#include "ferry/DaemonArgs.h"

#include "ferry/MasterSchema.h"
#include "ferry/YamlReader.h"

namespace {

constexpr const char* kDefaultStateDir = "/var/lib/ferry";
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

// store.yml's `postgresql:` ("" for master.db). The daemons validate the
// file; this only reads the key.
std::string postgresFromStoreConfig()
{
    const char* env = std::getenv("FERRY_CONFIG_DIR");
    const std::string dir = env != nullptr && *env != '\0' ? env : "/etc/ferry";
    auto map = ferry::YamlMap::loadFile(dir + "/store.yml");
    if (!map)
        return {};
    return map->string("postgresql").value_or("");
}

// The same lookup on PostgreSQL, with the connect bounded (sshd waits).
int lookUpInPostgres(const std::string& conninfo, const std::string& line)
{
    const char* keywords[] = {"dbname", "connect_timeout", nullptr};
    const char* values[] = {conninfo.c_str(), "5", nullptr};
    PGconn* conn = PQconnectdbParams(keywords, values, 1);
    if (conn == nullptr || PQstatus(conn) != CONNECTION_OK) {
        std::fprintf(stderr, "ferry-authorized-keys: Failed to connect to the registry on PostgreSQL: %s",
                     conn != nullptr ? PQerrorMessage(conn) : "out of memory\n");
        PQfinish(conn);
        return 1;
    }
    std::string sql = ferry::schema::kAuthorizedKeyQuery;
    sql.replace(sql.find("?1"), 2, "$1");
    const char* params[] = {line.c_str()};
    PGresult* result = PQexecParams(conn, sql.c_str(), 1, nullptr, params, nullptr, nullptr, 0);
    int status = 0;
    if (PQresultStatus(result) != PGRES_TUPLES_OK) {
        std::fprintf(stderr, "ferry-authorized-keys: Failed to look the key up on PostgreSQL: %s",
                     PQresultErrorMessage(result));
        status = 1;
    } else if (PQntuples(result) == 1) {
        std::printf("%s %s\n", kKeyOptions, PQgetvalue(result, 0, 0));
    }
    PQclear(result);
    PQfinish(conn);
    return status;
}

} // namespace

int main(int argc, char* argv[])
{
    std::string stateDir;
    if (const char* env = std::getenv("FERRY_STATE_DIR"); env != nullptr && *env != '\0')
        stateDir = env;
    else
        stateDir = kDefaultStateDir;
    std::string tunnelUser = kDefaultUser;
    std::vector<std::string> operands;
    try {
        ferry::ArgParser("ferry-authorized-keys", "sshd's AuthorizedKeysCommand for the master's tunnel user")
            .option("--state-dir", "DIR", "where master.db is (default $FERRY_STATE_DIR or /var/lib/ferry)",
                    [&](const std::string& v) { stateDir = v; })
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
    const std::string db = stateDir + "/master.db";
    sqlite3* handle = nullptr;
    if (sqlite3_open_v2(db.c_str(), &handle, SQLITE_OPEN_READONLY | SQLITE_OPEN_NOMUTEX, nullptr) != SQLITE_OK) {
        std::fprintf(stderr, "ferry-authorized-keys: Failed to open the registry %s: %s\n", db.c_str(),
                     handle ? sqlite3_errmsg(handle) : "out of memory");
        sqlite3_close(handle);
        return 1;
    }
    sqlite3_busy_timeout(handle, 2000);
    sqlite3_stmt* stmt = nullptr;
    // The query text lives with the schema's one owner (MasterSchema.h, a
    // header without dependencies, so this helper stays small).
    int rc = sqlite3_prepare_v2(handle, ferry::schema::kAuthorizedKeyQuery, -1, &stmt, nullptr);
    if (rc == SQLITE_OK)
        rc = sqlite3_bind_text(stmt, 1, line.data(), static_cast<int>(line.size()), SQLITE_STATIC);
    if (rc == SQLITE_OK)
        rc = sqlite3_step(stmt);
    int status = 0;
    if (rc == SQLITE_ROW) {
        // The printed key is the one stored, which equals the offered one.
        std::printf("%s %s\n", kKeyOptions, reinterpret_cast<const char*>(sqlite3_column_text(stmt, 0)));
    } else if (rc != SQLITE_DONE) {
        std::fprintf(stderr, "ferry-authorized-keys: Failed to look the key up in %s: %s\n", db.c_str(),
                     sqlite3_errmsg(handle));
        status = 1;
    }
    sqlite3_finalize(stmt);
    sqlite3_close(handle);
    return status;
}
