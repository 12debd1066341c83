#include "ferry/Sqlite.h"

#include <sqlite3.h>
#include <spdlog/spdlog.h>

#include "ferry/Error.h"

namespace ferry {

bool SqliteError::isDamage() const noexcept
{
    return m_code == SQLITE_NOTADB || m_code == SQLITE_CORRUPT || m_code == SQLITE_IOERR || m_code == SQLITE_FORMAT;
}

Database::Database(const std::string& path, bool readOnly) : m_path(path)
{
    const int flags = readOnly ? SQLITE_OPEN_READONLY : (SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE);
    if (sqlite3_open_v2(path.c_str(), &m_db, flags | SQLITE_OPEN_NOMUTEX, nullptr) != SQLITE_OK) {
        const std::string msg = m_db ? sqlite3_errmsg(m_db) : "out of memory";
        const int code = m_db ? sqlite3_errcode(m_db) : SQLITE_NOMEM;
        sqlite3_close(m_db);
        m_db = nullptr;
        throw SqliteError("Failed to open database " + path + ": " + msg, code & 0xff);
    }
    sqlite3_busy_timeout(m_db, 10000);
    sqlite3_extended_result_codes(m_db, 1);
    // A file that is not a database fails here, not at the open: the
    // destructor does not run for a constructor that throws, so close the
    // connection (and its file descriptor) ourselves.
    try {
        if (!readOnly) {
            exec("PRAGMA journal_mode=WAL");
            // NORMAL would survive a process crash but not a power loss: the
            // last commits could vanish after the master acknowledged them (and
            // the node deleted its copy), or after the spool handed out their
            // sequence numbers (which would then be reused). FULL syncs the WAL
            // at every commit, so a commit that returned is on disk.
            exec("PRAGMA synchronous=FULL");
        }
        exec("PRAGMA foreign_keys=ON");
    } catch (...) {
        sqlite3_close_v2(m_db);
        m_db = nullptr;
        throw;
    }
}

Database::~Database()
{
    for (auto& [sql, stmts] : m_cache)
        for (sqlite3_stmt* stmt : stmts)
            sqlite3_finalize(stmt);
    if (m_db != nullptr)
        sqlite3_close_v2(m_db);
}

// At most this many idle statements are kept; beyond it they are finalized.
constexpr std::size_t kMaxCachedStatements = 64;
// At most this many texts have a slot; statements of others are finalized
// when they are checked in (a program runs a bounded set of texts; this
// bounds one that builds them from data).
constexpr std::size_t kMaxCachedTexts = 256;

sqlite3_stmt* Database::checkOut(std::string_view sql, Cache::value_type*& slot)
{
    auto it = m_cache.find(sql);
    bool added = false;
    if (it == m_cache.end() && m_cache.size() < kMaxCachedTexts) {
        it = m_cache.emplace(std::string(sql), std::vector<sqlite3_stmt*>{}).first;
        added = true;
    }
    slot = it == m_cache.end() ? nullptr : &*it;
    if (slot != nullptr && !slot->second.empty()) {
        sqlite3_stmt* stmt = slot->second.back();
        slot->second.pop_back();
        --m_cached;
        return stmt;
    }
    sqlite3_stmt* stmt = nullptr;
    if (sqlite3_prepare_v2(m_db, sql.data(), static_cast<int>(sql.size()), &stmt, nullptr) != SQLITE_OK) {
        // No Statement holds a slot added for a text that does not compile.
        if (added)
            m_cache.erase(it);
        throw SqliteError("Failed to prepare SQL on " + m_path + ": " + sqlite3_errmsg(m_db),
                          sqlite3_errcode(m_db) & 0xff);
    }
    return stmt;
}

void Database::checkIn(Cache::value_type* slot, sqlite3_stmt* stmt)
{
    // A reset statement holds no read transaction and no bound copies.
    sqlite3_reset(stmt);
    sqlite3_clear_bindings(stmt);
    if (slot == nullptr || m_cached >= kMaxCachedStatements) {
        sqlite3_finalize(stmt);
        return;
    }
    slot->second.push_back(stmt);
    ++m_cached;
}

void Database::exec(std::string_view sql)
{
    char* err = nullptr;
    const std::string s(sql);
    if (sqlite3_exec(m_db, s.c_str(), nullptr, nullptr, &err) != SQLITE_OK) {
        std::string msg = err ? err : sqlite3_errmsg(m_db);
        sqlite3_free(err);
        throw SqliteError("Failed to run SQL on " + m_path + ": " + msg + " (" + s.substr(0, 80) + ")",
                          sqlite3_errcode(m_db) & 0xff);
    }
}

std::int64_t Database::lastInsertId() const
{
    return sqlite3_last_insert_rowid(m_db);
}

int Database::changes() const
{
    return sqlite3_changes(m_db);
}

Statement::Statement(Database& db, std::string_view sql) : m_db(db), m_stmt(db.checkOut(sql, m_slot))
{}

Statement::~Statement()
{
    if (m_stmt != nullptr)
        m_db.checkIn(m_slot, m_stmt);
}

Statement& Statement::bind(int index, std::int64_t value)
{
    sqlite3_bind_int64(m_stmt, index, value);
    return *this;
}

Statement& Statement::bind(int index, std::string_view text)
{
    sqlite3_bind_text(m_stmt, index, text.data(), static_cast<int>(text.size()), SQLITE_TRANSIENT);
    return *this;
}

Statement& Statement::bindBlob(int index, std::string_view blob)
{
    sqlite3_bind_blob(m_stmt, index, blob.data(), static_cast<int>(blob.size()), SQLITE_TRANSIENT);
    return *this;
}

Statement& Statement::bindNull(int index)
{
    sqlite3_bind_null(m_stmt, index);
    return *this;
}

bool Statement::step()
{
    const int rc = sqlite3_step(m_stmt);
    if (rc == SQLITE_ROW)
        return true;
    if (rc == SQLITE_DONE)
        return false;
    throw SqliteError("Failed to execute SQL on " + m_db.path() + ": " + sqlite3_errmsg(m_db.handle()),
                      rc & 0xff);
}

void Statement::run()
{
    while (step()) {
    }
}

void Statement::reset()
{
    sqlite3_reset(m_stmt);
    sqlite3_clear_bindings(m_stmt);
}

void Statement::rewind()
{
    sqlite3_reset(m_stmt);
}

std::int64_t Statement::int64(int column) const
{
    return sqlite3_column_int64(m_stmt, column);
}

std::string Statement::text(int column) const
{
    const auto* p = static_cast<const char*>(sqlite3_column_blob(m_stmt, column));
    const int n = sqlite3_column_bytes(m_stmt, column);
    return p ? std::string(p, static_cast<std::size_t>(n)) : std::string();
}

bool Statement::isNull(int column) const
{
    return sqlite3_column_type(m_stmt, column) == SQLITE_NULL;
}

UnsyncedCommits::UnsyncedCommits(Database& db) : m_db(db)
{
    Statement(m_db, "PRAGMA synchronous=NORMAL").run();
}

UnsyncedCommits::~UnsyncedCommits()
{
    try {
        Statement(m_db, "PRAGMA synchronous=FULL").run();
    } catch (const std::exception& e) {
        spdlog::critical("Failed to restore synchronous=FULL on {}: {}", m_db.path(), e.what());
        std::terminate();
    }
}

Transaction::Transaction(Database& db) : m_db(db)
{
    Statement(m_db, "BEGIN IMMEDIATE").run();
}

Transaction::~Transaction()
{
    if (!m_done) {
        try {
            Statement(m_db, "ROLLBACK").run();
        } catch (const std::exception& e) {
            spdlog::warn("Ignoring failed rollback on {}: {}", m_db.path(), e.what());
        }
    }
}

void Transaction::commit()
{
    Statement(m_db, "COMMIT").run();
    m_done = true;
}

} // namespace ferry
