#include "Manager.h"

#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <climits>
#include <cmath>
#include <filesystem>

#include <nlohmann/json.hpp>
#include <spdlog/spdlog.h>

#include "ferry/Bus.h"
#include "ferry/Crypto.h"
#include "ferry/Files.h"
#include "ferry/PullProtocol.h"
#include "ferry/SshSession.h"

namespace keyregd {

namespace {

bool sameMaster(const MasterRecord& r, const ferry::MasterAddress& m)
{
    return r.host == m.host && r.sshPort == m.sshPort && r.registryPort == m.registryPort;
}

std::string joinFingerprints(const std::vector<MasterRecord>& masters)
{
    std::string out;
    for (const auto& m : masters) {
        if (m.state != "accepted")
            continue;
        for (const auto& k : m.hostKeys) {
            std::string fp;
            try {
                fp = ferry::fingerprintOf(k);
            } catch (const std::exception&) {
                fp = "(unparsable key)";
            }
            if (out.find(fp) == std::string::npos)
                out += (out.empty() ? "" : ", ") + fp;
        }
    }
    return out;
}

} // namespace

ferry::PeriodFloor strictestFloor(const std::vector<MasterRecord>& masters)
{
    ferry::PeriodFloor floor;
    for (const auto& m : masters) {
        if (m.state != "accepted")
            continue;
        if (m.minPushPeriodS > floor.minPushPeriodS) {
            floor.minPushPeriodS = m.minPushPeriodS;
            floor.master = m.host + ":" + std::to_string(m.registryPort);
        }
        floor.minPullIntervalS = std::max(floor.minPullIntervalS, m.minPullIntervalS);
    }
    return floor;
}

Manager::Manager(ferry::Paths paths, ferry::NodeConfig config, ManagerOptions options)
    : m_paths(std::move(paths)), m_config(std::move(config)), m_options(options),
      m_random(std::random_device{}())
{
}

void Manager::prepare()
{
    if (ferry::ensureSecret(m_paths.secretFile()))
        spdlog::warn("Created the node secret {} (it is normally made at package install); give it to the master "
                     "operator: `ferryctl secret`",
                     m_paths.secretFile());
    if (ferry::ensureKeyPair(m_paths.privateKeyFile()))
        spdlog::info("Created the node key pair {}", m_paths.privateKeyFile());
    load();
    const std::string fingerprint = ferry::fingerprintOf(ferry::publicKeyLine(m_paths.privateKeyFile()));
    update([&](Status& s) { s.fingerprint = fingerprint; });
}

Status Manager::status() const
{
    std::lock_guard lock(m_mutex);
    return m_status;
}

void Manager::setOnChange(std::function<void(const Status&, const Status&)> fn)
{
    std::lock_guard lock(m_mutex);
    m_onChange = std::move(fn);
}

void Manager::update(const std::function<void(Status&)>& change)
{
    Status before, after;
    std::function<void(const Status&, const Status&)> notify;
    {
        std::lock_guard lock(m_mutex);
        before = m_status;
        change(m_status);
        after = m_status;
        notify = m_onChange;
    }
    if (notify && !(before == after))
        notify(before, after);
}

void Manager::load()
{
    const auto text = ferry::readFileIfExists(stateFile(), 1024 * 1024);
    if (!text)
        return;
    try {
        const auto j = nlohmann::json::parse(*text);
        std::lock_guard lock(m_mutex);
        m_status.state = j.at("state").get<std::string>();
        m_status.reason = j.at("reason").get<std::string>();
        m_status.lastAttemptMs = j.at("last_attempt_ms").get<std::int64_t>();
        m_status.lastError = j.at("last_error").get<std::string>();
        m_masters.clear();
        for (const auto& m : j.at("masters")) {
            MasterRecord r;
            r.host = m.at("host").get<std::string>();
            r.sshPort = m.at("ssh_port").get<std::uint16_t>();
            r.registryPort = m.at("registry_port").get<std::uint16_t>();
            r.state = m.at("state").get<std::string>();
            r.reason = m.at("reason").get<std::string>();
            r.hostKeys = m.at("host_keys").get<std::vector<std::string>>();
            r.minPushPeriodS = m.value("min_push_period", 0u);
            r.minPullIntervalS = m.value("min_pull_interval", 0u);
            r.certificate = m.value("certificate", std::string());
            r.pullKey = m.value("pull_key", std::string());
            m_masters.push_back(std::move(r));
        }
        m_status.masterHostKeyFingerprint = joinFingerprints(m_masters);
    } catch (const std::exception& e) {
        // The file is ours and only a cache of the masters' answers: the next
        // round rebuilds it.
        spdlog::warn("Ignoring the unreadable registration state {}: {}", stateFile(), e.what());
    }
}

void Manager::save()
{
    nlohmann::json j;
    std::vector<MasterRecord> masters;
    {
        std::lock_guard lock(m_mutex);
        j["state"] = m_status.state;
        j["reason"] = m_status.reason;
        j["last_attempt_ms"] = m_status.lastAttemptMs;
        j["last_error"] = m_status.lastError;
        masters = m_masters;
    }
    j["masters"] = nlohmann::json::array();
    for (const auto& m : masters)
        j["masters"].push_back({{"host", m.host}, {"ssh_port", m.sshPort}, {"registry_port", m.registryPort},
                                {"state", m.state}, {"reason", m.reason}, {"host_keys", m.hostKeys},
                                {"min_push_period", m.minPushPeriodS}, {"min_pull_interval", m.minPullIntervalS},
                                {"certificate", m.certificate}, {"pull_key", m.pullKey}});
    ferry::writeFileAtomic(stateFile(), j.dump(2) + "\n", 0644);
}

std::string Manager::knownHostsText(const std::vector<MasterRecord>& masters)
{
    std::string text;
    for (const auto& m : masters) {
        if (m.state != "accepted")
            continue;
        // OpenSSH's form: the bare name for port 22 (IPv6 too), "[host]:port" otherwise.
        const std::string host = m.sshPort == 22 ? m.host : "[" + m.host + "]:" + std::to_string(m.sshPort);
        for (const auto& k : m.hostKeys)
            text += host + " " + k + "\n";
    }
    return text;
}

void Manager::writeKnownHosts()
{
    std::vector<MasterRecord> masters;
    {
        std::lock_guard lock(m_mutex);
        masters = m_masters;
    }
    const std::string text = knownHostsText(masters);
    const std::string path = m_paths.knownHostsFile();
    if (text.empty()) {
        // No pinned master: pushd must see "not registered", not a stale pin.
        if (::unlink(path.c_str()) != 0 && errno != ENOENT)
            ferry::throwErrno("remove " + path);
        return;
    }
    if (ferry::readFileIfExists(path).value_or("") != text)
        ferry::writeFileAtomic(path, text, 0644);
}

void Manager::writePeriodFloor()
{
    std::vector<MasterRecord> masters;
    {
        std::lock_guard lock(m_mutex);
        masters = m_masters;
    }
    const auto floor = strictestFloor(masters);
    const std::string path = ferry::periodFloorFile(m_paths.stateDir);
    const auto old = ferry::readFileIfExists(path, 4096);
    ferry::PeriodFloor before;
    if (old) {
        try {
            before = ferry::parsePeriodFloor(path, *old);
        } catch (const std::exception& e) {
            spdlog::warn("Rewriting the unreadable {}: {}", path, e.what());
        }
    }
    if (old && before == floor)
        return;
    ferry::writeFileAtomic(path, ferry::formatPeriodFloor(floor), 0644);
    if (floor.minPushPeriodS == before.minPushPeriodS)
        return;
    std::chrono::seconds configured{0};
    try {
        configured = ferry::loadPluginsConfig(m_paths).period;
    } catch (const std::exception& e) {
        spdlog::debug("Cannot read the configured push period: {}", e.what());
    }
    if (floor.minPushPeriodS > 0 && configured.count() < floor.minPushPeriodS)
        spdlog::warn("Master {} allows a push at most every {} s; sender: period: in {} is {} s, so "
                     "ferry-push.timer runs every {} s (ferry-push-generator applies it at the next daemon-reload)",
                     floor.master, floor.minPushPeriodS, m_paths.pluginsFile(), configured.count(),
                     floor.minPushPeriodS);
    else if (floor.minPushPeriodS > 0)
        spdlog::info("Master {} sets a push period floor of {} s (the configured {} s is above it)", floor.master,
                     floor.minPushPeriodS, configured.count());
}

void Manager::writeCertificate()
{
    std::string certificate;
    {
        std::lock_guard lock(m_mutex);
        for (const auto& m : m_masters)
            if (m.state == "accepted" && !m.certificate.empty()) {
                certificate = m.certificate;
                break;
            }
    }
    const std::string path = m_paths.privateKeyFile() + "-cert.pub";
    if (certificate.empty()) {
        if (::unlink(path.c_str()) == 0)
            spdlog::info("Removed the node certificate {}: no master issues one now", path);
        return;
    }
    if (ferry::readFileIfExists(path, 16 * 1024).value_or("") == certificate + "\n")
        return;
    ferry::writeFileAtomic(path, certificate + "\n", 0644);
    spdlog::info("Stored the node certificate from the master's CA in {}", path);
}

CertificateState Manager::certificateState(std::int64_t nowMs) const
{
    CertificateState st;
    const std::string path = m_paths.privateKeyFile() + "-cert.pub";
    const auto text = ferry::readFileIfExists(path, 16 * 1024);
    if (!text)
        return st;
    try {
        st.info = ferry::readCertificate(*text);
    } catch (const std::exception& e) {
        throw CertificateError("Failed to read the certificate of node '" + m_config.nodeName + "' in " + path + ": " +
                               e.what());
    }
    st.present = true;
    const std::int64_t lifetime = st.info.validBeforeMs - st.info.validAfterMs;
    st.dueFromMs = st.info.validBeforeMs == INT64_MAX ? INT64_MAX
                                                      : st.info.validBeforeMs - std::max<std::int64_t>(lifetime, 0) / 3;
    st.expired = nowMs >= st.info.validBeforeMs;
    st.due = nowMs >= st.dueFromMs;
    return st;
}

Renewal Manager::renewCertificate(std::int64_t nowMs)
{
    std::lock_guard round(m_roundMutex);
    const CertificateState before = certificateState(nowMs);
    const std::string node = "node '" + m_config.nodeName + "'";
    if (!before.present)
        return {false, "no certificate to renew: no master issues " + node + " one"};
    const std::string serial = "serial " + std::to_string(before.info.serial);
    if (!before.due)
        return {false, "the certificate of " + node + " (" + serial + ") is valid until " +
                           ferry::formatTime(before.info.validBeforeMs) + "; renewal is due from " +
                           ferry::formatTime(before.dueFromMs)};
    if (before.expired)
        spdlog::warn("The certificate of {} ({}) expired at {}; asking the masters for a new one", node, serial,
                     ferry::formatTime(before.info.validBeforeMs));
    registerLocked();
    const CertificateState after = certificateState(ferry::nowMs());
    if (after.present && !after.due && after.info.serial != before.info.serial) {
        const std::string summary = "renewed the certificate of " + node + ": serial " +
                                    std::to_string(after.info.serial) + ", valid until " +
                                    ferry::formatTime(after.info.validBeforeMs) + " (" + serial +
                                    (before.expired ? " had expired at " : " would have expired at ") +
                                    ferry::formatTime(before.info.validBeforeMs) + ")";
        spdlog::info("{}", summary);
        return {true, summary};
    }
    if (after.present && !after.due)
        return {false, "the certificate of " + node + " (" + serial + ") is valid until " +
                           ferry::formatTime(after.info.validBeforeMs)};
    const Status status = this->status();
    std::string why = !status.lastError.empty()    ? status.lastError
                      : status.state != "accepted" ? "registration is " + status.state +
                                                         (status.reason.empty() ? "" : " (" + status.reason + ")")
                      : !after.present ? "no master sent a certificate"
                                       : "the masters sent no newer certificate";
    const CertificateState& now = after.present ? after : before;
    throw CertificateError(
        "The certificate of " + node + " (serial " + std::to_string(now.info.serial) + ", key ID " +
        ferry::escapeForLog(now.info.keyId, 200) + ") " + (now.expired ? "expired at " : "expires at ") +
        ferry::formatTime(now.info.validBeforeMs) + " and could not be renewed: " + why +
        (now.expired ? "; masters that admit nodes by certificate refuse its pushes until it is renewed" : ""));
}

bool Manager::registerOnce()
{
    std::lock_guard round(m_roundMutex);
    return registerLocked();
}

bool Manager::rotateKey()
{
    std::lock_guard round(m_roundMutex);
    const std::string key = m_paths.privateKeyFile();
    const std::string previous = key + ".previous";
    auto move = [](const std::string& from, const std::string& to) {
        if (::rename(from.c_str(), to.c_str()) != 0 && errno != ENOENT)
            ferry::throwErrno("rename " + from + " to " + to);
    };
    const std::string oldFingerprint = status().fingerprint;
    move(key, previous);
    move(key + ".pub", previous + ".pub");
    bool retry = true;
    std::size_t accepted = 0;
    try {
        ferry::ensureKeyPair(key);
        spdlog::info("Rotating the node key: new key {} replaces {}", ferry::fingerprintOf(ferry::publicKeyLine(key)),
                     oldFingerprint);
        retry = registerLocked(&accepted);
    } catch (const std::exception& e) {
        spdlog::error("Key rotation failed: {}", e.what());
    }
    // A master that did not answer now still holds the old key: it learns
    // the new one at the next round, and pushes through it fail until then.
    if (accepted > 0) {
        ::unlink(previous.c_str());
        ::unlink((previous + ".pub").c_str());
        return retry;
    }
    // No master took the new key: keep the one they know.
    spdlog::warn("No master accepted the new key; keeping the previous key {}", oldFingerprint);
    move(previous, key);
    move(previous + ".pub", key + ".pub");
    const std::string fingerprint = ferry::fingerprintOf(ferry::publicKeyLine(key));
    update([&](Status& st) {
        st.fingerprint = fingerprint;
        st.lastError = "key rotation not done: no master accepted the new key" +
                       (st.lastError.empty() ? std::string() : " (" + st.lastError + ")");
    });
    save();
    return true;
}

bool Manager::registerLocked(std::size_t* acceptedNow)
{
    if (acceptedNow != nullptr)
        *acceptedNow = 0;
    const Status before = status();
    const std::int64_t now = ferry::nowMs();
    if (m_config.masters.empty()) {
        update([&](Status& s) {
            s.state = "unregistered";
            s.reason = "no masters configured in " + m_paths.configFile();
            s.lastAttemptMs = now;
        });
        save();
        return false;
    }

    std::string secret, publicKey;
    std::string localError;
    const auto sshdHostKeys = ferry::readSshdHostKeys(m_options.sshdHostKeyDir);
    try {
        ferry::ensureKeyPair(m_paths.privateKeyFile());
        publicKey = ferry::publicKeyLine(m_paths.privateKeyFile());
        secret = ferry::loadSecret(m_paths.secretFile());
    } catch (const std::exception& e) {
        localError = e.what();
    }
    const std::string fingerprint = publicKey.empty() ? before.fingerprint : ferry::fingerprintOf(publicKey);

    // Carry over what we knew of each configured master; forget the others.
    std::vector<MasterRecord> records;
    {
        std::lock_guard lock(m_mutex);
        for (const auto& m : m_config.masters) {
            MasterRecord r{m.host, m.sshPort, m.registryPort, "unregistered", "", {}, 0, 0, "", ""};
            for (const auto& old : m_masters)
                if (sameMaster(old, m))
                    r = old;
            records.push_back(std::move(r));
        }
    }

    std::vector<std::string> errors;
    ClientTimeouts timeouts{m_config.connectTimeout, m_config.ioTimeout};
    for (std::size_t i = 0; i < records.size(); ++i) {
        auto& r = records[i];
        const auto& address = m_config.masters[i];
        const std::string label = masterLabel(address);
        const std::string previous = r.state;
        std::string error;
        if (!localError.empty()) {
            error = localError;
        } else {
            try {
                const auto answer = registerWithMaster(address, m_config.nodeName, publicKey,
                                                       ferry::toString(m_config.mode), m_config.sshPort,
                                                       sshdHostKeys, secret, timeouts);
                if (!answer.signedByMaster && r.state == "accepted") {
                    // An unsigned answer cannot undo a signed one: anyone on
                    // the path could have sent it.
                    error = "master " + label + " answered 'pending' without a signature; keeping its pinned host keys";
                } else {
                    r.state = ferry::toString(answer.state);
                    r.reason = answer.reason;
                    if (answer.signedByMaster) {
                        r.minPushPeriodS = answer.minPushPeriodS;
                        r.minPullIntervalS = answer.minPullIntervalS;
                    }
                    r.certificate = answer.state == ferry::RegistrationState::Accepted ? answer.certificate : "";
                    if (answer.state == ferry::RegistrationState::Accepted) {
                        r.hostKeys = answer.hostKeys;
                        r.pullKey = answer.pullKey;
                        if (acceptedNow != nullptr)
                            ++*acceptedNow;
                    } else {
                        r.hostKeys.clear();
                        r.pullKey.clear();
                    }
                }
            } catch (const std::exception& e) {
                error = e.what();
            }
        }
        if (!error.empty()) {
            errors.push_back(error);
            // An unreachable master keeps its last answer (and pins); one we
            // never heard from is failing.
            if (r.state == "unregistered" || r.state == "failing") {
                r.state = "failing";
                r.reason = error;
            }
            spdlog::debug("Registration with master {} failed: {}", label, error);
        }
        if (r.state != previous) {
            if (r.state == "accepted")
                spdlog::info("Registered with master {} (host key {})", label, joinFingerprints({r}));
            else if (r.state == "declined")
                spdlog::warn("Master {} declined this node: {}", label, r.reason);
            else if (r.state == "pending")
                spdlog::info("Master {} has this node pending: {}", label, r.reason);
        }
    }

    bool retry = false;
    std::string state = "failing", reason;
    auto pick = [&](const char* wanted) {
        for (const auto& r : records)
            if (r.state == wanted) {
                state = wanted;
                reason = r.reason;
                return true;
            }
        return false;
    };
    if (!pick("accepted") && !pick("pending") && !pick("declined"))
        reason = errors.empty() ? "no answer from any master" : errors.front();
    if (state == "accepted")
        reason.clear();
    for (const auto& r : records)
        retry = retry || r.state == "pending" || r.state == "failing" || r.state == "unregistered";
    retry = retry || !errors.empty();

    {
        std::lock_guard lock(m_mutex);
        m_masters = records;
        if (retry)
            ++m_failures;
        else
            m_failures = 0;
    }
    writeKnownHosts();
    try {
        writeCertificate();
    } catch (const std::exception& e) {
        spdlog::error("Failed to store the node certificate: {}", e.what());
    }
    try {
        writePeriodFloor();
    } catch (const std::exception& e) {
        spdlog::error("Failed to store the masters' period floor: {}", e.what());
    }
    const std::string lastError = errors.empty() ? "" : errors.front();
    if (!lastError.empty() && before.lastError.empty())
        spdlog::warn("Registration started to fail: {}", lastError);
    else if (lastError.empty() && !before.lastError.empty())
        spdlog::info("Registration working again: every master answered");
    update([&](Status& s) {
        s.state = state;
        s.reason = reason;
        s.fingerprint = fingerprint;
        s.masterHostKeyFingerprint = joinFingerprints(records);
        s.lastAttemptMs = now;
        s.lastError = lastError;
    });
    save();
    return retry;
}

std::chrono::milliseconds Manager::nextDelay()
{
    std::lock_guard lock(m_mutex);
    const int steps = std::max(0, std::min(m_failures - 1, 30));
    const double base = std::min<double>(static_cast<double>(m_options.retryMax.count()),
                                         static_cast<double>(m_options.retryInitial.count()) * std::pow(2.0, steps));
    // Jitter in [base/2, base]: nodes that lost the master together do not
    // all come back in the same second.
    std::uniform_real_distribution<double> jitter(0.5, 1.0);
    return std::chrono::milliseconds(static_cast<std::int64_t>(base * jitter(m_random)));
}

} // namespace keyregd
