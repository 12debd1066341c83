#pragma once
// A throwaway PostgreSQL 15 cluster for tests: initdb into a temporary
// directory owned by user postgres, started with pg_ctl on a Unix socket in
// that directory and no TCP listener, removed when the object dies. Needs
// root (initdb and postgres refuse root, so both run through runuser).

#include <string>

#include "support/TestSupport.h"

namespace ferry::test {

class PgCluster {
public:
    PgCluster();
    ~PgCluster();
    PgCluster(const PgCluster&) = delete;
    PgCluster& operator=(const PgCluster&) = delete;

    // A libpq connection string for database `db` (created on first use).
    std::string conninfo(const std::string& db = "ferry");
    void createDatabase(const std::string& db);
    // pg_ctl stop -m immediate / start: a server crash and return.
    void stop();
    void start();
    std::string log() const;

    static bool available();

private:
    std::string bin(const std::string& tool) const;
    TempDir m_dir;
    std::string m_data;
    std::string m_socketDir;
    int m_port = 0;
    bool m_running = false;
};

} // namespace ferry::test
