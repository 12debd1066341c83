#pragma once
// A thin RAII layer over SQLite: one connection, prepared statements, and
// transactions. Errors become ferry::Error naming the database file.

#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "ferry/Error.h"

struct sqlite3;
struct sqlite3_stmt;

namespace ferry {

// A failure SQLite reported, with its primary result code (SQLITE_NOTADB,
// SQLITE_CORRUPT, SQLITE_IOERR, …) so that a caller can tell a damaged file
// from a busy or full one.
class SqliteError : public Error {
public:
    SqliteError(const std::string& message, int code) : Error(message), m_code(code) {}
    int code() const noexcept { return m_code; }
    // The file is damaged or not a database at all (as opposed to busy,
    // locked, full or read-only, which are conditions to wait out or fix).
    bool isDamage() const noexcept;

private:
    int m_code;
};

class Database {
public:
    // Opens (creating if needed) in WAL mode with synchronous=FULL and a busy
    // timeout, so that a writer in another process waits instead of failing.
    // FULL makes every commit durable against power loss before it returns:
    // docs/durability.md says why both the spool and master.db need that.
    explicit Database(const std::string& path, bool readOnly = false);
    ~Database();
    Database(const Database&) = delete;
    Database& operator=(const Database&) = delete;

    void exec(std::string_view sql);
    std::int64_t lastInsertId() const;
    int changes() const;
    const std::string& path() const { return m_path; }
    sqlite3* handle() { return m_db; }

private:
    friend class Statement;
    // Prepared statements are kept by their SQL text and handed out again:
    // the hot paths (a push cycle's spool reads and acks, a session's batch
    // stores) run the same few statements many times, and parsing them each
    // time cost more CPU than running them. A statement in use is checked
    // out, so two live Statements never share one. The text is looked up
    // as it is given (no copy) and a Statement keeps the slot it goes back
    // to: copying and hashing each statement's text twice was a few percent
    // of collectord's CPU per push (bench/collector-push).
    struct SqlHash {
        using is_transparent = void;
        std::size_t operator()(std::string_view sql) const noexcept { return std::hash<std::string_view>{}(sql); }
    };
    using Cache = std::unordered_map<std::string, std::vector<sqlite3_stmt*>, SqlHash, std::equal_to<>>;
    // slot: where the statement goes back (nullptr: finalized at check-in,
    // for a text beyond kMaxCachedTexts).
    sqlite3_stmt* checkOut(std::string_view sql, Cache::value_type*& slot);
    void checkIn(Cache::value_type* slot, sqlite3_stmt* stmt);

    sqlite3* m_db = nullptr;
    std::string m_path;
    // Elements stay where they are (they are never erased while a Statement
    // may hold one), so a slot pointer outlives rehashing.
    Cache m_cache;
    std::size_t m_cached = 0;
};

class Statement {
public:
    Statement(Database& db, std::string_view sql);
    ~Statement();
    Statement(const Statement&) = delete;
    Statement& operator=(const Statement&) = delete;

    Statement& bind(int index, std::int64_t value);
    Statement& bind(int index, std::string_view text);
    Statement& bindBlob(int index, std::string_view blob);
    Statement& bindNull(int index);
    // Steps once; true when a row is available.
    bool step();
    // Steps to completion (for statements without rows).
    void run();
    void reset();
    // To run again with the values bound so far kept (bind the others anew).
    void rewind();

    std::int64_t int64(int column) const;
    std::string text(int column) const;
    bool isNull(int column) const;

private:
    Database& m_db;
    Database::Cache::value_type* m_slot = nullptr; // where it goes back in the database's cache
    sqlite3_stmt* m_stmt = nullptr;
};

// For its lifetime, commits on db do not wait for the disk
// (synchronous=NORMAL); FULL again afterwards (a failure to restore it ends
// the process rather than leave a connection that would weaken every later
// commit). For commits whose loss to a power cut costs nothing: in WAL mode
// the next FULL commit on the file, by any connection, syncs the WAL up to
// and including them, in order. Users say why their commit may be lost.
class UnsyncedCommits {
public:
    explicit UnsyncedCommits(Database& db);
    ~UnsyncedCommits();
    UnsyncedCommits(const UnsyncedCommits&) = delete;
    UnsyncedCommits& operator=(const UnsyncedCommits&) = delete;

private:
    Database& m_db;
};

// BEGIN IMMEDIATE on construction; ROLLBACK unless commit() was called.
class Transaction {
public:
    explicit Transaction(Database& db);
    ~Transaction();
    void commit();

private:
    Database& m_db;
    bool m_done = false;
};

} // namespace ferry
