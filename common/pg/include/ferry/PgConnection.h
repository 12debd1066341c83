#pragma once
// A PostgreSQL connection through libpq, for masters that share one
// database. Every statement is parameterised (no value is ever pasted into
// SQL text); text parameters go as text, byte strings in binary. Errors name
// the server (host/socket and database, never a password) and the statement.

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "ferry/Error.h"

struct pg_conn;
struct pg_result;

namespace ferry {

// A statement the server refused; sqlState is its five-character code
// ("40001" serialization failure, "23505" unique violation, …).
class PgError : public Error {
public:
    PgError(const std::string& message, std::string sqlState) : Error(message), m_sqlState(std::move(sqlState)) {}
    const std::string& sqlState() const noexcept { return m_sqlState; }

private:
    std::string m_sqlState;
};

// One parameter: a text value, a byte string (sent in binary) or NULL.
struct PgParam {
    enum class Kind { Text, Bytes, Null } kind = Kind::Null;
    std::string value;

    static PgParam text(std::string v) { return {Kind::Text, std::move(v)}; }
    static PgParam bytes(std::string v) { return {Kind::Bytes, std::move(v)}; }
    static PgParam integer(std::int64_t v) { return {Kind::Text, std::to_string(v)}; }
    static PgParam null() { return {Kind::Null, {}}; }
};

// The rows of one result. text() returns a value's bytes whatever their
// format: a bytea column comes back as its raw bytes (unescaped from the
// text format, or as sent with binaryResults).
class PgResult {
public:
    explicit PgResult(pg_result* result);
    ~PgResult();
    PgResult(PgResult&& other) noexcept;
    PgResult& operator=(PgResult&&) = delete;
    PgResult(const PgResult&) = delete;

    int rows() const;
    bool isNull(int row, int column) const;
    std::string text(int row, int column) const;
    std::int64_t int64(int row, int column) const;
    // Rows inserted/updated/deleted by the statement (PQcmdTuples).
    std::uint64_t affected() const;

private:
    pg_result* m_result;
};

class PgConnection {
public:
    // conninfo: a libpq connection string or URI ("postgresql:///ferry?host=/run/postgresql").
    explicit PgConnection(const std::string& conninfo);
    ~PgConnection();
    PgConnection(const PgConnection&) = delete;
    PgConnection& operator=(const PgConnection&) = delete;

    // Runs one statement; throws Error naming the server and `what`.
    PgResult exec(const std::string& sql, const std::vector<PgParam>& params = {}, bool binaryResults = false);
    // Runs several statements without parameters (schema scripts).
    void execScript(const std::string& sql);

    // Between statements: the server has neither closed it nor started to
    // (nothing is waiting to be read). Does not block.
    bool alive();
    // Alive and outside any transaction: fit to lend to the next borrower.
    bool usable();

    // "host:port/db" or "socket-dir/db", for messages.
    const std::string& where() const { return m_where; }
    pg_conn* handle() { return m_conn; }

private:
    PgResult checked(pg_result* raw, const std::string& sql);

    pg_conn* m_conn = nullptr;
    std::string m_where;
};

// BEGIN … COMMIT; rolls back unless committed.
class PgTransaction {
public:
    explicit PgTransaction(PgConnection& connection);
    ~PgTransaction();
    void commit();

private:
    PgConnection& m_connection;
    bool m_done = false;
};

} // namespace ferry
