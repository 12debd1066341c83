#include "ferry/PgSqlConnection.h"

#include <optional>

#include "ferry/PgStore.h"

namespace ferry {

std::string toPostgresPlaceholders(std::string_view sql)
{
    std::string out;
    out.reserve(sql.size());
    char quote = 0;
    for (std::size_t i = 0; i < sql.size(); ++i) {
        const char c = sql[i];
        if (quote != 0) {
            if (c == quote)
                quote = 0;
            out += c;
        } else if (c == '\'' || c == '"') {
            quote = c;
            out += c;
        } else if (c == '?' && i + 1 < sql.size() && sql[i + 1] >= '0' && sql[i + 1] <= '9') {
            out += '$';
        } else {
            out += c;
        }
    }
    return out;
}

namespace {

class PgStatementBackend : public SqlStatementBackend {
public:
    PgStatementBackend(PgConnection& db, std::string_view sql) : m_db(db), m_sql(toPostgresPlaceholders(sql)) {}

    void bind(int index, std::int64_t value) override { slot(index) = PgParam::integer(value); }
    void bind(int index, std::string_view text) override { slot(index) = PgParam::text(std::string(text)); }
    void bindBlob(int index, std::string_view blob) override { slot(index) = PgParam::bytes(std::string(blob)); }
    void bindNull(int index) override { slot(index) = PgParam::null(); }

    bool step() override
    {
        if (!m_result)
            m_result.emplace(m_db.exec(m_sql, m_params));
        else
            ++m_row;
        return m_row < m_result->rows();
    }
    std::uint64_t affected() const override { return m_result ? m_result->affected() : 0; }
    std::int64_t int64(int column) const override { return m_result->int64(m_row, column); }
    std::string text(int column) const override
    {
        return m_result->isNull(m_row, column) ? std::string() : m_result->text(m_row, column);
    }
    bool isNull(int column) const override { return m_result->isNull(m_row, column); }

private:
    PgParam& slot(int index)
    {
        if (index < 1)
            throw Error("SQL parameter index " + std::to_string(index) + " is not 1 or more");
        if (m_params.size() < static_cast<std::size_t>(index))
            m_params.resize(static_cast<std::size_t>(index));
        return m_params[static_cast<std::size_t>(index - 1)];
    }

    PgConnection& m_db;
    std::string m_sql;
    std::vector<PgParam> m_params;
    std::optional<PgResult> m_result;
    int m_row = 0;
};

} // namespace

PgSqlConnection::PgSqlConnection(const std::string& conninfo)
    : m_owned(std::make_unique<PgStore>(conninfo)), m_db(&m_owned->connection())
{}

PgSqlConnection::PgSqlConnection(PgConnection& borrowed) : m_db(&borrowed)
{}

PgSqlConnection::PgSqlConnection(std::unique_ptr<PgConnection> owned)
    : m_ownedConnection(std::move(owned)), m_db(m_ownedConnection.get())
{}

std::unique_ptr<PgSqlConnection> PgSqlConnection::openReader(const std::string& conninfo)
{
    auto connection = std::make_unique<PgConnection>(conninfo);
    PgStore::requireCurrentSchema(*connection);
    return std::unique_ptr<PgSqlConnection>(new PgSqlConnection(std::move(connection)));
}

PgSqlConnection::~PgSqlConnection() = default;

std::unique_ptr<SqlStatementBackend> PgSqlConnection::prepare(std::string_view sql)
{
    return std::make_unique<PgStatementBackend>(*m_db, sql);
}

void PgSqlConnection::begin()
{
    m_db->exec("BEGIN");
}

void PgSqlConnection::commit()
{
    m_db->exec("COMMIT");
}

void PgSqlConnection::rollback()
{
    m_db->exec("ROLLBACK");
}

void PgSqlConnection::lockUntilCommit(std::string_view key)
{
    m_db->exec("SELECT pg_advisory_xact_lock(hashtextextended($1, 0))", {PgParam::text(std::string(key))});
}

std::string PgSqlConnection::where() const
{
    return "PostgreSQL at " + m_db->where();
}

} // namespace ferry
