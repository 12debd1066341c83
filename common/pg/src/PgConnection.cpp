#include "ferry/PgConnection.h"

#include <libpq-fe.h>
#include <poll.h>

#include <spdlog/spdlog.h>

namespace ferry {

namespace {

std::string oneLine(std::string text)
{
    while (!text.empty() && (text.back() == '\n' || text.back() == ' '))
        text.pop_back();
    for (char& c : text)
        if (c == '\n')
            c = ' ';
    return text;
}

} // namespace

PgResult::PgResult(pg_result* result) : m_result(result) {}

PgResult::~PgResult()
{
    if (m_result != nullptr)
        PQclear(m_result);
}

PgResult::PgResult(PgResult&& other) noexcept : m_result(other.m_result)
{
    other.m_result = nullptr;
}

int PgResult::rows() const
{
    return PQntuples(m_result);
}

bool PgResult::isNull(int row, int column) const
{
    return PQgetisnull(m_result, row, column) != 0;
}

std::string PgResult::text(int row, int column) const
{
    // bytea in text format arrives hex-escaped ("\\x…"): give its bytes.
    constexpr Oid kByteaOid = 17;
    if (PQfformat(m_result, column) == 0 && PQftype(m_result, column) == kByteaOid && !isNull(row, column)) {
        std::size_t length = 0;
        unsigned char* raw =
            PQunescapeBytea(reinterpret_cast<const unsigned char*>(PQgetvalue(m_result, row, column)), &length);
        if (raw == nullptr)
            throw Error("Failed to decode a bytea value from PostgreSQL: out of memory");
        std::string bytes(reinterpret_cast<const char*>(raw), length);
        PQfreemem(raw);
        return bytes;
    }
    return std::string(PQgetvalue(m_result, row, column), static_cast<std::size_t>(PQgetlength(m_result, row, column)));
}

std::int64_t PgResult::int64(int row, int column) const
{
    if (isNull(row, column))
        return 0;
    return std::stoll(text(row, column));
}

std::uint64_t PgResult::affected() const
{
    const char* n = PQcmdTuples(m_result);
    return (n == nullptr || *n == '\0') ? 0 : std::stoull(n);
}

PgConnection::PgConnection(const std::string& conninfo)
{
    m_conn = PQconnectdb(conninfo.c_str());
    if (m_conn == nullptr)
        throw Error("Failed to connect to PostgreSQL: out of memory");
    const char* host = PQhost(m_conn);
    const char* port = PQport(m_conn);
    const char* db = PQdb(m_conn);
    m_where = std::string(host ? host : "?") + ":" + (port ? port : "?") + "/" + (db ? db : "?");
    if (PQstatus(m_conn) != CONNECTION_OK) {
        const std::string msg = oneLine(PQerrorMessage(m_conn));
        PQfinish(m_conn);
        m_conn = nullptr;
        throw Error("Failed to connect to PostgreSQL at " + m_where + ": " + msg);
    }
    // Server notices ("relation … already exists, skipping") are for a
    // developer, not for stderr of a daemon.
    PQsetNoticeProcessor(
        m_conn, [](void*, const char* message) { spdlog::debug("PostgreSQL: {}", oneLine(message)); }, nullptr);
    // Records and names are text in UTF-8 or bytea; nothing depends on the
    // server's locale.
    exec("SET client_encoding = 'UTF8'");
}

PgConnection::~PgConnection()
{
    if (m_conn != nullptr)
        PQfinish(m_conn);
}

bool PgConnection::alive()
{
    if (m_conn == nullptr || PQstatus(m_conn) != CONNECTION_OK)
        return false;
    // Between statements the server sends nothing, unless it is ending the
    // connection (its FATAL message, then end of file: a restart,
    // pg_terminate_backend, idle_session_timeout). Anything to read means
    // the connection is not one to use again.
    pollfd p{PQsocket(m_conn), POLLIN, 0};
    return ::poll(&p, 1, 0) == 0;
}

bool PgConnection::usable()
{
    return alive() && PQtransactionStatus(m_conn) == PQTRANS_IDLE;
}

PgResult PgConnection::exec(const std::string& sql, const std::vector<PgParam>& params, bool binaryResults)
{
    std::vector<const char*> values;
    std::vector<int> lengths;
    std::vector<int> formats;
    values.reserve(params.size());
    for (const auto& p : params) {
        values.push_back(p.kind == PgParam::Kind::Null ? nullptr : p.value.data());
        lengths.push_back(static_cast<int>(p.value.size()));
        formats.push_back(p.kind == PgParam::Kind::Bytes ? 1 : 0);
    }
    return checked(PQexecParams(m_conn, sql.c_str(), static_cast<int>(params.size()), nullptr, values.data(),
                                lengths.data(), formats.data(), binaryResults ? 1 : 0),
                   sql);
}

PgResult PgConnection::checked(pg_result* raw, const std::string& sql)
{
    PgResult result(raw);
    const ExecStatusType status = raw == nullptr ? PGRES_FATAL_ERROR : PQresultStatus(raw);
    if (status != PGRES_COMMAND_OK && status != PGRES_TUPLES_OK) {
        const std::string msg = oneLine(raw != nullptr ? PQresultErrorMessage(raw) : PQerrorMessage(m_conn));
        const char* state = raw != nullptr ? PQresultErrorField(raw, PG_DIAG_SQLSTATE) : nullptr;
        throw PgError("Failed to run SQL on PostgreSQL at " + m_where + ": " + msg + " (" + sql.substr(0, 80) + ")",
                      state != nullptr ? state : "");
    }
    return result;
}

void PgConnection::execScript(const std::string& sql)
{
    checked(PQexec(m_conn, sql.c_str()), sql);
}

PgTransaction::PgTransaction(PgConnection& connection) : m_connection(connection)
{
    m_connection.exec("BEGIN");
}

PgTransaction::~PgTransaction()
{
    if (!m_done) {
        try {
            m_connection.exec("ROLLBACK");
        } catch (const std::exception& e) {
            spdlog::warn("Failed to roll back a transaction on {}, ignoring: {}", m_connection.where(), e.what());
        }
    }
}

void PgTransaction::commit()
{
    m_connection.exec("COMMIT");
    m_done = true;
}

} // namespace ferry
