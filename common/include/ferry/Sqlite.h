#pragma once
// A thin RAII layer over SQLite: one connection, prepared statements, and
// transactions. Errors become ferry::Error naming the database file.

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

struct sqlite3;
struct sqlite3_stmt;

namespace ferry {

class Database {
public:
    // Opens (creating if needed) in WAL mode with a busy timeout, so that a
    // writer in another process waits instead of failing.
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
    sqlite3* m_db = nullptr;
    std::string m_path;
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

    std::int64_t int64(int column) const;
    std::string text(int column) const;
    bool isNull(int column) const;

private:
    Database& m_db;
    sqlite3_stmt* m_stmt = nullptr;
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
