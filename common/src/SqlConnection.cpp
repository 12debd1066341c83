#include "ferry/SqlConnection.h"

#include <spdlog/spdlog.h>

#include "ferry/MasterStore.h"

namespace ferry {

SqlTransaction::SqlTransaction(SqlConnection& connection)
    : m_connection(connection), m_depth(connection.m_transactionDepth)
{
    if (m_depth == 0)
        m_connection.begin();
    else
        SqlStatement(m_connection, "SAVEPOINT " + savepointName()).run();
    ++m_connection.m_transactionDepth;
}

SqlTransaction::~SqlTransaction()
{
    if (m_done)
        return;
    --m_connection.m_transactionDepth;
    try {
        if (m_depth == 0) {
            m_connection.rollback();
        } else {
            // ROLLBACK TO keeps the savepoint open; RELEASE closes it.
            SqlStatement(m_connection, "ROLLBACK TO SAVEPOINT " + savepointName()).run();
            SqlStatement(m_connection, "RELEASE SAVEPOINT " + savepointName()).run();
        }
    } catch (const std::exception& e) {
        spdlog::warn("Failed to roll back a transaction on {}, ignoring: {}", m_connection.where(), e.what());
    }
}

void SqlTransaction::commit()
{
    if (m_depth == 0)
        m_connection.commit();
    else
        SqlStatement(m_connection, "RELEASE SAVEPOINT " + savepointName()).run();
    --m_connection.m_transactionDepth;
    m_done = true;
}

std::string SqlTransaction::savepointName() const
{
    return "ferry_nested_" + std::to_string(m_depth);
}

SqlUnsyncedCommits::SqlUnsyncedCommits(SqlConnection& connection)
{
    if (Database* db = connection.sqliteDatabase())
        m_sqlite = std::make_unique<UnsyncedCommits>(*db);
}

namespace {

class SqliteStatementBackend : public SqlStatementBackend {
public:
    SqliteStatementBackend(Database& db, std::string_view sql) : m_db(db), m_statement(db, sql) {}

    void bind(int index, std::int64_t value) override { m_statement.bind(index, value); }
    void bind(int index, std::string_view text) override { m_statement.bind(index, text); }
    void bindBlob(int index, std::string_view blob) override { m_statement.bindBlob(index, blob); }
    void bindNull(int index) override { m_statement.bindNull(index); }
    bool step() override
    {
        if (m_statement.step())
            return true;
        m_affected = static_cast<std::uint64_t>(m_db.changes());
        return false;
    }
    std::uint64_t affected() const override { return m_affected; }
    std::int64_t int64(int column) const override { return m_statement.int64(column); }
    std::string text(int column) const override { return m_statement.text(column); }
    bool isNull(int column) const override { return m_statement.isNull(column); }

private:
    Database& m_db;
    Statement m_statement;
    std::uint64_t m_affected = 0;
};

} // namespace

SqliteConnection::SqliteConnection(const std::string& path)
    : m_owned(std::make_unique<Database>(path)), m_db(m_owned.get())
{
    MasterStore::attachNodeKeys(*m_db);
    MasterStore::migrate(*m_db);
}

SqliteConnection::SqliteConnection(Database& borrowed) : m_db(&borrowed)
{}

std::unique_ptr<SqlStatementBackend> SqliteConnection::prepare(std::string_view sql)
{
    return std::make_unique<SqliteStatementBackend>(*m_db, sql);
}

void SqliteConnection::begin()
{
    m_db->exec("BEGIN IMMEDIATE");
}

void SqliteConnection::commit()
{
    m_db->exec("COMMIT");
}

void SqliteConnection::rollback()
{
    m_db->exec("ROLLBACK");
}

std::string SqliteConnection::where() const
{
    return m_db->path();
}

} // namespace ferry
