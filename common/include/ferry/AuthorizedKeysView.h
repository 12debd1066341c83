#pragma once
// The AuthorizedKeysCommand helper's view of the registry: which public key
// belongs to which accepted node, and nothing else. The helper runs as its
// own user (ferry-authkeys), which can open neither master.db nor the node
// keys; it reads this file only.
//
//   <master.db's directory>-authkeys/authorized-keys.db
//   (/var/lib/ferry-authkeys/authorized-keys.db; $FERRY_AUTHKEYS_DIR overrides)
//
// A SQLite file with one table (MasterSchema.h, kAuthorizedKeysViewSchema),
// rewritten whole from the registry whenever who may log in changes (a key
// registered or rotated, a node accepted, declined, revoked or given a new
// secret), into a temporary file that is then renamed over the old one. A
// reader therefore never sees a half-written view, needs no lock, no
// journal and no -shm (it opens the file immutable), and a failed write
// leaves the previous view in place. registryd keeps it (and rebuilds it
// at every start, which also creates it after an upgrade); ferryctl does
// when it changes the registry without registryd.
//
// Mode 0640: the directory is setgid ferry-authkeys (packaging), so the
// file's group is the helper's.

#include <string>
#include <utility>
#include <vector>

#include "ferry/SqlConnection.h"

struct sqlite3;

namespace ferry {

std::string authorizedKeysViewPath(const std::string& masterDbPath);

// The view's rows (public key, node) as the registry holds them now.
using AuthorizedKeysRows = std::vector<std::pair<std::string, std::string>>;
AuthorizedKeysRows readAuthorizedKeysRows(SqlConnection& registry);

// Replaces the view at path with rows. Throws Error naming the file.
void writeAuthorizedKeysFile(const AuthorizedKeysRows& rows, const std::string& path);

// Both: rewrites the view at path from the registry on registry; returns
// the number of keys in it.
std::size_t writeAuthorizedKeysView(SqlConnection& registry, const std::string& path);

// registryd's writer of the view: the same file as writeAuthorizedKeysFile
// (rows in, every key once, renamed over the old file), made from a copy of
// the view in memory that only the rows that changed since its last write
// are applied to, and written out with SQLite's backup (a copy of its
// pages). Inserting every key into a new file cost most of a rewrite
// (about 7 ms of CPU for 10,000 keys, against under 1 ms for the page
// copy); a storm of registrations rewrites the view many times. Not
// thread-safe: one writer at a time (registryd::Manager::flushView).
class AuthorizedKeysViewWriter {
public:
    AuthorizedKeysViewWriter();
    ~AuthorizedKeysViewWriter();
    AuthorizedKeysViewWriter(const AuthorizedKeysViewWriter&) = delete;
    AuthorizedKeysViewWriter& operator=(const AuthorizedKeysViewWriter&) = delete;

    // Replaces the view at path with rows (as readAuthorizedKeysRows gives
    // them). Throws Error naming the file; the next write then starts over.
    void write(AuthorizedKeysRows rows, const std::string& path);
    // Rows changed in the copy by the last write (for tests and the log).
    std::size_t lastChanges() const { return m_lastChanges; }

private:
    void apply(AuthorizedKeysRows rows);

    sqlite3* m_db = nullptr;
    AuthorizedKeysRows m_rows; // what the copy holds: sorted, one row per key
    std::size_t m_lastChanges = 0;
};

} // namespace ferry
