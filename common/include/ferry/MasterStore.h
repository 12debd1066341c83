#pragma once
// The master's store (SQLite, WAL): the nodes it knows and the records they
// sent. Records are keyed by (node, sequence), so a batch that arrives twice
// — retried after a lost ack, or once by push and once by pull — is stored
// once. collectord, pulld and registryd share it.

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "ferry/Sqlite.h"
#include "ferry/Wire.h"

namespace ferry {

struct NodeInfo {
    std::string name;
    std::string state;  // accepted | pending | declined | revoked
    std::string mode;   // push | pull | auto
    std::string publicKey;
    std::string sshHost;
    std::uint16_t sshPort = 22;
    std::int64_t firstSeenMs = 0;
    std::int64_t lastSeenMs = 0;
    std::int64_t lastPushMs = 0;
    std::int64_t lastPullMs = 0;
    std::uint64_t recordsStored = 0;
    std::uint64_t lastSeq = 0;
    std::string reason;  // why declined/revoked
};

class MasterStore {
public:
    explicit MasterStore(const std::string& path);

    // Enrols (or re-keys) a node with its secret, state accepted.
    void addNode(const std::string& name, const std::string& secret);
    std::optional<std::string> nodeSecret(const std::string& name);
    std::optional<NodeInfo> node(const std::string& name);
    std::vector<NodeInfo> nodes();

    // Stores a batch in one transaction; duplicates are ignored and counted.
    // via is "push" or "pull" (which timestamp to update).
    AckMessage storeBatch(const std::string& node, const std::vector<Record>& records, const std::string& via);
    std::uint64_t countRecords(const std::string& node);
    std::vector<Record> records(const std::string& node, std::uint64_t afterSeq, std::size_t limit);

    Database& database() { return m_db; }

private:
    Database m_db;
};

// "<state dir>/master.db"
std::string masterStorePath(const std::string& stateDir);

} // namespace ferry
