#pragma once
// A PostgreSQL database through SqlConnection (SqlConnection.h), so that the
// registry, pulld's state and every reader run on a shared database with
// the same code as on master.db. Statements are parameterised: ?N in the
// shared dialect becomes $N; text goes as text, blobs as binary bytea.

#include <memory>
#include <string>

#include "ferry/PgConnection.h"
#include "ferry/SqlConnection.h"

namespace ferry {

class PgStore;

class PgSqlConnection : public SqlConnection {
public:
    // Connects and brings the schema to the current version (PgStore).
    explicit PgSqlConnection(const std::string& conninfo);
    // Borrows an open connection (its schema already migrated).
    explicit PgSqlConnection(PgConnection& borrowed);
    // Connects as a reader: never migrates (a reader's role may not), and
    // refuses a schema other than the current one (PgStore::requireCurrentSchema).
    static std::unique_ptr<PgSqlConnection> openReader(const std::string& conninfo);
    ~PgSqlConnection() override;

    std::unique_ptr<SqlStatementBackend> prepare(std::string_view sql) override;
    void begin() override;
    void commit() override;
    void rollback() override;
    void lockUntilCommit(std::string_view key) override;
    std::string where() const override;
    bool isPostgres() const override { return true; }

    PgConnection& connection() { return *m_db; }

private:
    explicit PgSqlConnection(std::unique_ptr<PgConnection> owned);

    std::unique_ptr<PgStore> m_owned;
    std::unique_ptr<PgConnection> m_ownedConnection;
    PgConnection* m_db;
};

// The shared dialect's "?N" placeholders as PostgreSQL's "$N" (outside
// quoted text); exposed for its test.
std::string toPostgresPlaceholders(std::string_view sql);

} // namespace ferry
