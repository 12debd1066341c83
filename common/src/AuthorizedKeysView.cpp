#include "ferry/AuthorizedKeysView.h"

#include <fcntl.h>
#include <sqlite3.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <vector>

#include "ferry/Error.h"
#include "ferry/MasterSchema.h"
#include "ferry/MasterStore.h"

namespace ferry {

namespace {

// The raw handle: the view is a rollback-journal file written once and
// closed, not a WAL database (Database turns WAL on).
class ViewFile {
public:
    explicit ViewFile(const std::string& path) : m_path(path)
    {
        if (sqlite3_open_v2(path.c_str(), &m_db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_NOMUTEX, nullptr) != SQLITE_OK)
            fail("open");
    }
    ~ViewFile() { sqlite3_close_v2(m_db); }
    ViewFile(const ViewFile&) = delete;
    ViewFile& operator=(const ViewFile&) = delete;

    void exec(const char* sql)
    {
        if (sqlite3_exec(m_db, sql, nullptr, nullptr, nullptr) != SQLITE_OK)
            fail("write");
    }
    void insert(const std::vector<std::pair<std::string, std::string>>& rows)
    {
        sqlite3_stmt* stmt = nullptr;
        if (sqlite3_prepare_v2(m_db, "INSERT OR IGNORE INTO authorized_keys (public_key, node) VALUES (?1, ?2)", -1,
                               &stmt, nullptr) != SQLITE_OK)
            fail("write");
        for (const auto& [key, node] : rows) {
            sqlite3_bind_text(stmt, 1, key.data(), static_cast<int>(key.size()), SQLITE_STATIC);
            sqlite3_bind_text(stmt, 2, node.data(), static_cast<int>(node.size()), SQLITE_STATIC);
            const int rc = sqlite3_step(stmt);
            sqlite3_reset(stmt);
            if (rc != SQLITE_DONE) {
                sqlite3_finalize(stmt);
                fail("write");
            }
        }
        sqlite3_finalize(stmt);
    }
    // Every page of source (a database of the view's schema), committed.
    void copyFrom(sqlite3* source)
    {
        sqlite3_backup* backup = sqlite3_backup_init(m_db, "main", source, "main");
        if (backup == nullptr)
            fail("write");
        const int rc = sqlite3_backup_step(backup, -1);
        sqlite3_backup_finish(backup);
        if (rc != SQLITE_DONE)
            fail("write");
    }

private:
    [[noreturn]] void fail(const char* what)
    {
        throw Error(std::string("Failed to ") + what + " the authorized keys view " + m_path + ": " +
                    (m_db != nullptr ? sqlite3_errmsg(m_db) : "out of memory"));
    }

    std::string m_path;
    sqlite3* m_db = nullptr;
};

} // namespace

std::string authorizedKeysViewPath(const std::string& masterDbPath)
{
    return besideStateDirectory(masterDbPath, "FERRY_AUTHKEYS_DIR", "-authkeys", "authorized-keys.db");
}

AuthorizedKeysRows readAuthorizedKeysRows(SqlConnection& registry)
{
    AuthorizedKeysRows rows;
    // One pass over the table, sorted here (the view's key order, which
    // makes its inserts appends): ORDER BY in SQL walks the public_key
    // index and looks every row up in the table, several times the cost
    // with thousands of keys.
    SqlStatement s(registry, "SELECT public_key, name FROM nodes WHERE state = 'accepted' AND public_key <> ''");
    while (s.step())
        rows.emplace_back(s.text(0), s.text(1));
    std::sort(rows.begin(), rows.end());
    return rows;
}

std::size_t writeAuthorizedKeysView(SqlConnection& registry, const std::string& path)
{
    const auto rows = readAuthorizedKeysRows(registry);
    writeAuthorizedKeysFile(rows, path);
    return rows.size();
}

namespace {

// Makes a new view file beside path with fill(temp file), then renames it
// over path and syncs the directory.
template <typename Fill>
void replaceViewFile(const std::string& path, Fill&& fill)
{
    const std::string dir = path.substr(0, path.rfind('/'));
    if (::mkdir(dir.c_str(), 0750) != 0 && errno != EEXIST)
        throw Error("Failed to create the authorized keys view's directory " + dir + ": " + std::strerror(errno));
    std::string temp = dir + "/.authorized-keys.db.XXXXXX";
    const int fd = ::mkstemp(temp.data());
    if (fd < 0)
        throw Error("Failed to write the authorized keys view in " + dir + ": " + std::strerror(errno));
    // Readable by the directory's group (the helper's) whatever the umask.
    const bool modeSet = ::fchmod(fd, 0640) == 0;
    const int modeErrno = errno;
    ::close(fd);
    try {
        if (!modeSet)
            throw Error("Failed to write the authorized keys view " + temp + ": " + std::strerror(modeErrno));
        {
            // No journal and no syncs of SQLite's own: the file is new and no
            // one reads it before the rename, so a crash while it is written
            // leaves only a stray temporary file; it is synced once, whole,
            // before the rename (a journal cost two more syncs per rewrite).
            ViewFile view(temp);
            view.exec("PRAGMA journal_mode=OFF");
            view.exec("PRAGMA synchronous=OFF");
            fill(view);
        }
        if (const int written = ::open(temp.c_str(), O_RDONLY | O_CLOEXEC); written < 0 || ::fsync(written) != 0) {
            const int error = errno;
            if (written >= 0)
                ::close(written);
            throw Error("Failed to write the authorized keys view " + temp + ": " + std::strerror(error));
        } else {
            ::close(written);
        }
        if (::rename(temp.c_str(), path.c_str()) != 0)
            throw Error("Failed to replace the authorized keys view " + path + ": " + std::strerror(errno));
    } catch (...) {
        ::unlink(temp.c_str());
        ::unlink((temp + "-journal").c_str());
        throw;
    }
    // The rename itself survives a power loss once the directory is synced.
    if (const int d = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC); d >= 0) {
        ::fsync(d);
        ::close(d);
    }
}

} // namespace

void writeAuthorizedKeysFile(const AuthorizedKeysRows& rows, const std::string& path)
{
    replaceViewFile(path, [&](ViewFile& view) {
        view.exec("BEGIN");
        view.exec(schema::kAuthorizedKeysViewSchema);
        view.insert(rows);
        view.exec("COMMIT");
    });
}

AuthorizedKeysViewWriter::AuthorizedKeysViewWriter() = default;

AuthorizedKeysViewWriter::~AuthorizedKeysViewWriter()
{
    sqlite3_close_v2(m_db);
}

void AuthorizedKeysViewWriter::apply(AuthorizedKeysRows rows)
{
    // One row per key, the first of its node names (as INSERT OR IGNORE of
    // the sorted rows keeps into a new file).
    rows.erase(std::unique(rows.begin(), rows.end(), [](const auto& a, const auto& b) { return a.first == b.first; }),
               rows.end());
    if (m_db == nullptr) {
        if (sqlite3_open_v2(":memory:", &m_db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_NOMUTEX, nullptr) != SQLITE_OK ||
            sqlite3_exec(m_db, schema::kAuthorizedKeysViewSchema, nullptr, nullptr, nullptr) != SQLITE_OK) {
            const std::string why = m_db != nullptr ? sqlite3_errmsg(m_db) : "out of memory";
            sqlite3_close_v2(m_db);
            m_db = nullptr;
            throw Error("Failed to make the authorized keys view in memory: " + why);
        }
        m_rows.clear();
    }
    // Both sorted: one merge walk finds the rows to delete and to insert.
    std::vector<const std::pair<std::string, std::string>*> gone, added;
    auto a = m_rows.begin();
    auto b = rows.begin();
    while (a != m_rows.end() || b != rows.end()) {
        if (b == rows.end() || (a != m_rows.end() && *a < *b))
            gone.push_back(&*a++);
        else if (a == m_rows.end() || *b < *a)
            added.push_back(&*b++);
        else
            ++a, ++b;
    }
    auto run = [&](const char* sql, const std::vector<const std::pair<std::string, std::string>*>& which,
                   bool withNode) {
        sqlite3_stmt* stmt = nullptr;
        if (sqlite3_prepare_v2(m_db, sql, -1, &stmt, nullptr) != SQLITE_OK)
            throw Error(std::string("Failed to change the authorized keys view in memory: ") + sqlite3_errmsg(m_db));
        for (const auto* row : which) {
            const auto& [key, node] = *row;
            sqlite3_bind_text(stmt, 1, key.data(), static_cast<int>(key.size()), SQLITE_STATIC);
            if (withNode)
                sqlite3_bind_text(stmt, 2, node.data(), static_cast<int>(node.size()), SQLITE_STATIC);
            const int rc = sqlite3_step(stmt);
            sqlite3_reset(stmt);
            if (rc != SQLITE_DONE) {
                sqlite3_finalize(stmt);
                throw Error(std::string("Failed to change the authorized keys view in memory: ") +
                            sqlite3_errmsg(m_db));
            }
        }
        sqlite3_finalize(stmt);
    };
    // Deletes first: a key that moved to another node is deleted and added.
    sqlite3_exec(m_db, "BEGIN", nullptr, nullptr, nullptr);
    run("DELETE FROM authorized_keys WHERE public_key = ?1", gone, false);
    run("INSERT INTO authorized_keys (public_key, node) VALUES (?1, ?2)", added, true);
    sqlite3_exec(m_db, "COMMIT", nullptr, nullptr, nullptr);
    m_rows = std::move(rows);
    m_lastChanges = gone.size() + added.size();
}

void AuthorizedKeysViewWriter::write(AuthorizedKeysRows rows, const std::string& path)
{
    try {
        apply(std::move(rows));
        replaceViewFile(path, [&](ViewFile& view) { view.copyFrom(m_db); });
    } catch (...) {
        // The copy may be half changed: the next write makes it anew.
        sqlite3_close_v2(m_db);
        m_db = nullptr;
        m_rows.clear();
        throw;
    }
}

} // namespace ferry
