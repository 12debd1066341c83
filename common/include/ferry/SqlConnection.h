#pragma once
// The master's tables through either backend: master.db (SQLite) or a
// PostgreSQL database that several masters share (common/pg). Code that
// reads or writes the registry, the pull state or the records beyond a data
// session (RegistryStore, MasterQueries, pulld, ferryctl, metricsd) is
// written once against this interface; each backend brings its own schema
// migrations (MasterSchema.h, PgStore.cpp) to the same tables.
//
// SQL text is the dialect both understand: parameters are ?1, ?2, … (the
// PostgreSQL backend numbers them $1, $2, …), upserts are
// `INSERT … ON CONFLICT … DO …`, no SQLite-only functions (scalar MAX,
// INSERT OR IGNORE/REPLACE), no boolean columns in results (write
// `CASE WHEN … THEN 1 ELSE 0 END`). A parameter whose type PostgreSQL cannot
// infer from its place (compared with nothing, a bare CASE condition) needs
// CAST(?1 AS BIGINT), which both accept.

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>

#include "ferry/Sqlite.h"

namespace ferry {

// One prepared statement of a backend.
class SqlStatementBackend {
public:
    virtual ~SqlStatementBackend() = default;
    virtual void bind(int index, std::int64_t value) = 0;
    virtual void bind(int index, std::string_view text) = 0;
    virtual void bindBlob(int index, std::string_view blob) = 0;
    virtual void bindNull(int index) = 0;
    // Runs the statement at the first call; true while a row is available.
    virtual bool step() = 0;
    // Rows the statement inserted, updated or deleted (after step()).
    virtual std::uint64_t affected() const = 0;
    virtual std::int64_t int64(int column) const = 0;
    // Text, or a blob column's bytes.
    virtual std::string text(int column) const = 0;
    virtual bool isNull(int column) const = 0;
};

class SqlConnection {
public:
    virtual ~SqlConnection() = default;

    virtual std::unique_ptr<SqlStatementBackend> prepare(std::string_view sql) = 0;
    // A write transaction: SQLite takes the file's write lock at once (BEGIN
    // IMMEDIATE), PostgreSQL starts one at READ COMMITTED.
    virtual void begin() = 0;
    virtual void commit() = 0;
    virtual void rollback() = 0;
    // Inside a transaction: waits until no other master holds `key` in its
    // own transaction (PostgreSQL: a transaction-scoped advisory lock).
    // SQLite needs none: its write lock already serialises writers.
    virtual void lockUntilCommit(std::string_view key) = 0;
    // "master.db at PATH" or "PostgreSQL at HOST:PORT/DB", for messages.
    virtual std::string where() const = 0;
    // master.db's connection (SqlUnsyncedCommits); nullptr on PostgreSQL.
    virtual Database* sqliteDatabase() { return nullptr; }
    virtual bool isPostgres() const = 0;

    // Whether a SqlTransaction is open on this connection.
    bool inTransaction() const { return m_transactionDepth > 0; }

private:
    friend class SqlTransaction;
    int m_transactionDepth = 0; // open SqlTransactions, the outermost included
};

// A statement with the interface of ferry::Statement, on either backend.
class SqlStatement {
public:
    SqlStatement(SqlConnection& connection, std::string_view sql) : m_backend(connection.prepare(sql)) {}

    SqlStatement& bind(int index, std::int64_t value)
    {
        m_backend->bind(index, value);
        return *this;
    }
    SqlStatement& bind(int index, std::string_view text)
    {
        m_backend->bind(index, text);
        return *this;
    }
    SqlStatement& bind(int index, const std::string& text) { return bind(index, std::string_view(text)); }
    SqlStatement& bind(int index, const char* text) { return bind(index, std::string_view(text)); }
    SqlStatement& bindBlob(int index, std::string_view blob)
    {
        m_backend->bindBlob(index, blob);
        return *this;
    }
    SqlStatement& bindNull(int index)
    {
        m_backend->bindNull(index);
        return *this;
    }
    bool step() { return m_backend->step(); }
    // Runs a statement without rows; returns the rows it changed.
    std::uint64_t run()
    {
        while (m_backend->step()) {
        }
        return m_backend->affected();
    }
    std::int64_t int64(int column) const { return m_backend->int64(column); }
    std::string text(int column) const { return m_backend->text(column); }
    bool isNull(int column) const { return m_backend->isNull(column); }

private:
    std::unique_ptr<SqlStatementBackend> m_backend;
};

// begin() on construction; rollback() unless commit() was called.
// Transactions nest: one begun while another is open on the connection is a
// SAVEPOINT of it (both backends), so a store call that makes its own
// transaction joins the caller's (registryd runs a group of registrations
// in one transaction, each in its own nested one). An inner commit() only
// releases the savepoint: nothing is durable before the outermost commits.
// An inner rollback undoes that inner transaction's changes alone.
class SqlTransaction {
public:
    explicit SqlTransaction(SqlConnection& connection);
    ~SqlTransaction();
    SqlTransaction(const SqlTransaction&) = delete;
    SqlTransaction& operator=(const SqlTransaction&) = delete;
    void commit();

private:
    std::string savepointName() const;

    SqlConnection& m_connection;
    int m_depth; // 0: the outermost
    bool m_done = false;
};

// For its lifetime, commits on connection do not wait for the disk where
// the backend lets them (master.db: UnsyncedCommits, whose comment says
// when that is safe); PostgreSQL commits as it always does.
class SqlUnsyncedCommits {
public:
    explicit SqlUnsyncedCommits(SqlConnection& connection);
    SqlUnsyncedCommits(const SqlUnsyncedCommits&) = delete;
    SqlUnsyncedCommits& operator=(const SqlUnsyncedCommits&) = delete;

private:
    std::unique_ptr<UnsyncedCommits> m_sqlite;
};

// master.db through SqlConnection. Opening it by path applies MasterSchema.h
// (MasterStore::migrate); the other constructor borrows an open Database.
class SqliteConnection : public SqlConnection {
public:
    explicit SqliteConnection(const std::string& path);
    explicit SqliteConnection(Database& borrowed);

    std::unique_ptr<SqlStatementBackend> prepare(std::string_view sql) override;
    void begin() override;
    void commit() override;
    void rollback() override;
    void lockUntilCommit(std::string_view) override {}
    std::string where() const override;
    bool isPostgres() const override { return false; }
    Database* sqliteDatabase() override { return m_db; }

    Database& database() { return *m_db; }

private:
    std::unique_ptr<Database> m_owned;
    Database* m_db;
};

} // namespace ferry
