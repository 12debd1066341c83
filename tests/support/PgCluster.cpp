#include "support/PgCluster.h"

#include <sys/stat.h>
#include <unistd.h>

#include <filesystem>
#include <stdexcept>

namespace ferry::test {

namespace {
constexpr const char* kBinDir = "/usr/lib/postgresql/15/bin";
}

bool PgCluster::available()
{
    return isRoot() && ::access((std::string(kBinDir) + "/initdb").c_str(), X_OK) == 0;
}

std::string PgCluster::bin(const std::string& tool) const
{
    return std::string(kBinDir) + "/" + tool;
}

PgCluster::PgCluster()
{
    if (!available())
        throw std::runtime_error("PgCluster needs root and postgresql-15 (" + std::string(kBinDir) + ")");
    // Every parent must be traversable by postgres (a TMPDIR under /root is not).
    ::chmod(m_dir.path().c_str(), 0755);
    m_data = m_dir / "data";
    m_socketDir = m_dir / "sock";
    std::filesystem::create_directories(m_socketDir);
    run({"chown", "-R", "postgres:postgres", m_dir.path()});
    m_port = freePort();
    const auto r = run({"runuser", "-u", "postgres", "--", bin("initdb"), "-D", m_data, "-U", "postgres", "-A", "trust",
                        "-E", "UTF8", "--locale=C.UTF-8", "--no-sync"},
                       {}, {}, std::chrono::seconds(120));
    if (r.exitCode != 0)
        throw std::runtime_error("initdb failed: " + r.out + r.err);
    start();
}

PgCluster::~PgCluster()
{
    stop();
}

void PgCluster::start()
{
    const auto r = run({"runuser", "-u", "postgres", "--", bin("pg_ctl"), "-D", m_data, "-l", m_dir / "server.log", "-w",
                        "-o", "-k " + m_socketDir + " -p " + std::to_string(m_port) + " -c listen_addresses=''", "start"},
                       {}, {}, std::chrono::seconds(60));
    if (r.exitCode != 0)
        throw std::runtime_error("pg_ctl start failed: " + r.out + r.err + log());
    m_running = true;
}

void PgCluster::stop()
{
    if (!m_running)
        return;
    run({"runuser", "-u", "postgres", "--", bin("pg_ctl"), "-D", m_data, "-m", "immediate", "-w", "stop"}, {}, {},
        std::chrono::seconds(60));
    m_running = false;
}

std::string PgCluster::log() const
{
    return readFile(m_dir / "server.log");
}

void PgCluster::createDatabase(const std::string& db)
{
    const auto r = run({"runuser", "-u", "postgres", "--", "/usr/bin/psql", "-h",
                        m_socketDir, "-p", std::to_string(m_port), "-U", "postgres", "-d", "postgres", "-v",
                        "ON_ERROR_STOP=1", "-c", "CREATE DATABASE \"" + db + "\""});
    if (r.exitCode != 0 && r.err.find("already exists") == std::string::npos)
        throw std::runtime_error("CREATE DATABASE " + db + " failed: " + r.err);
}

std::string PgCluster::conninfo(const std::string& db)
{
    createDatabase(db);
    return "host=" + m_socketDir + " port=" + std::to_string(m_port) + " user=postgres dbname=" + db +
           " connect_timeout=10";
}

} // namespace ferry::test
