#include "RemoteWriter.h"

#include <algorithm>
#include <thread>

#include <snappy.h>
#include <spdlog/spdlog.h>

#include "ferry/Bus.h"
#include "ferry/Error.h"
#include "ferry/PullProtocol.h"
#include "ferry/SampleCodec.h"
#include "remote_write.pb.h"

namespace metricsd {

// ---- State ----

RemoteWriteState::RemoteWriteState(const std::string& path, bool readOnly) : m_db(path, readOnly)
{
    if (!readOnly)
        m_db.exec("CREATE TABLE IF NOT EXISTS cursors (node TEXT NOT NULL, epoch BLOB NOT NULL, seq INTEGER NOT NULL,"
                  " time_ms INTEGER NOT NULL, updated_ms INTEGER NOT NULL, PRIMARY KEY (node, epoch)) WITHOUT ROWID;"
                  "CREATE TABLE IF NOT EXISTS counters (name TEXT PRIMARY KEY, value INTEGER NOT NULL) WITHOUT ROWID;");
}

RemoteWriteState::Cursor RemoteWriteState::cursor(const std::string& node, const std::string& epoch)
{
    ferry::Statement s(m_db, "SELECT seq, time_ms FROM cursors WHERE node = ?1 AND epoch = ?2");
    s.bind(1, node).bindBlob(2, epoch);
    if (!s.step())
        return {};
    return {static_cast<std::uint64_t>(s.int64(0)), s.int64(1)};
}

void RemoteWriteState::addCounters(const std::map<std::string, std::int64_t>& deltas)
{
    ferry::Statement s(m_db, "INSERT INTO counters (name, value) VALUES (?1, ?2)"
                             " ON CONFLICT(name) DO UPDATE SET value = value + excluded.value");
    for (const auto& [name, delta] : deltas) {
        s.reset();
        s.bind(1, name).bind(2, delta).run();
    }
}

void RemoteWriteState::advance(const std::string& node, const std::string& epoch, Cursor to,
                               const std::map<std::string, std::int64_t>& counterDeltas)
{
    ferry::Transaction tx(m_db);
    ferry::Statement s(m_db, "INSERT INTO cursors (node, epoch, seq, time_ms, updated_ms) VALUES (?1, ?2, ?3, ?4, ?5)"
                             " ON CONFLICT(node, epoch) DO UPDATE SET seq = excluded.seq, time_ms = excluded.time_ms,"
                             " updated_ms = excluded.updated_ms");
    s.bind(1, node).bindBlob(2, epoch).bind(3, static_cast<std::int64_t>(to.seq)).bind(4, to.timeMs);
    s.bind(5, ferry::nowMs()).run();
    addCounters(counterDeltas);
    tx.commit();
}

void RemoteWriteState::count(const std::map<std::string, std::int64_t>& counterDeltas)
{
    ferry::Transaction tx(m_db);
    addCounters(counterDeltas);
    tx.commit();
}

std::map<std::string, std::int64_t> RemoteWriteState::counters()
{
    std::map<std::string, std::int64_t> out;
    ferry::Statement s(m_db, "SELECT name, value FROM counters");
    while (s.step())
        out[s.text(0)] = s.int64(1);
    return out;
}

std::map<std::string, std::map<std::string, RemoteWriteState::Cursor>> RemoteWriteState::cursors()
{
    std::map<std::string, std::map<std::string, Cursor>> out;
    ferry::Statement s(m_db, "SELECT node, epoch, seq, time_ms FROM cursors");
    while (s.step())
        out[s.text(0)][s.text(1)] = {static_cast<std::uint64_t>(s.int64(2)), s.int64(3)};
    return out;
}

// ---- Encoding ----

std::string encodeWriteRequest(const std::string& node, const std::vector<SequencedRecord>& records,
                               std::size_t& samples, std::size_t& unreadable)
{
    // Series → samples; labels sorted by name with __name__ among them, as the
    // specification asks, samples in time order.
    std::map<std::vector<std::pair<std::string, std::string>>, std::vector<std::pair<std::int64_t, double>>> series;
    for (const auto& r : records) {
        std::vector<ferry::metrics::Sample> decoded;
        try {
            decoded = ferry::metrics::decodeRecord(r.kind, r.payload, r.timeMs);
        } catch (const std::exception& e) {
            ++unreadable;
            spdlog::warn("Skipping record {} ({}) of node {}: {}", r.seq, ferry::escapeForLog(r.kind),
                         ferry::escapeForLog(node), e.what());
            continue;
        }
        for (const auto& s : decoded) {
            std::vector<std::pair<std::string, std::string>> labels;
            labels.emplace_back("__name__", s.name);
            for (const auto& l : s.labels)
                labels.emplace_back(l.name == "node" ? "exported_node" : l.name, l.value);
            labels.emplace_back("node", node);
            std::sort(labels.begin(), labels.end());
            series[std::move(labels)].emplace_back(s.timeMs ? s.timeMs : r.timeMs, s.value);
        }
    }
    prometheus::WriteRequest req;
    for (auto& [labels, points] : series) {
        auto* ts = req.add_timeseries();
        for (const auto& [n, v] : labels) {
            auto* l = ts->add_labels();
            l->set_name(n);
            l->set_value(v);
        }
        std::stable_sort(points.begin(), points.end(), [](const auto& a, const auto& b) { return a.first < b.first; });
        for (const auto& [t, v] : points) {
            auto* s = ts->add_samples();
            s->set_timestamp(t);
            s->set_value(v);
            ++samples;
        }
    }
    std::string raw, compressed;
    req.SerializeToString(&raw);
    snappy::Compress(raw.data(), raw.size(), &compressed);
    return compressed;
}

// ---- Writer ----

namespace {

std::int64_t newestTime(const std::vector<SequencedRecord>& records)
{
    std::int64_t t = 0;
    for (const auto& r : records)
        t = std::max(t, r.timeMs);
    return t;
}

} // namespace

RemoteWriter::RemoteWriter(const RemoteWriteConfig& config, StoreReader& store, RemoteWriteState& state,
                           RemoteWriteSender& sender, Sleep sleep)
    : m_config(config), m_store(store), m_state(state), m_sender(sender), m_sleep(std::move(sleep))
{
}

RemoteWriter::Outcome RemoteWriter::send(const std::string& body, std::string& why)
{
    const auto deadline = std::chrono::steady_clock::now() + m_config.retryFor;
    auto backoff = m_config.minBackoff;
    bool failing = false;
    for (;;) {
        ++m_result.requests;
        const HttpResult r = m_sender.post(body);
        if (r.status >= 200 && r.status < 300) {
            if (failing)
                spdlog::info("Remote-write to {} works again", m_config.url);
            m_state.count({{"requests_ok", 1}});
            return Outcome::Sent;
        }
        std::string_view trimmed(r.body);
        while (!trimmed.empty() && (trimmed.back() == '\n' || trimmed.back() == '\r' || trimmed.back() == ' '))
            trimmed.remove_suffix(1);
        const std::string answer = ferry::escapeForLog(trimmed, 200);
        why = r.status ? "HTTP " + std::to_string(r.status) + ": " + answer : r.error;
        if (r.status == 401 || r.status == 403)
            why += !m_config.basicUser.empty()
                       ? " (the receiver refused basic_auth user " + ferry::escapeForLog(m_config.basicUser) +
                             ": check its password_file)"
                   : !m_config.bearerToken.empty()
                       ? " (the receiver refused the bearer token: check bearer_token_file)"
                       : " (the receiver wants credentials: set basic_auth or bearer_token_file)";
        // Prometheus refuses a whole request for one sample it cannot take
        // (400 out of bounds / out of order / duplicate, 500 too old sample):
        // resending the same request cannot help.
        const bool sampleRefused =
            (r.status == 400 || r.status == 500) &&
            (r.body.find("out of bounds") != std::string::npos || r.body.find("out of order") != std::string::npos ||
             r.body.find("duplicate sample") != std::string::npos || r.body.find("too old sample") != std::string::npos);
        if (sampleRefused) {
            m_state.count({{"requests_rejected", 1}});
            return Outcome::Rejected;
        }
        m_state.count({{r.status ? "requests_failed_http" : "requests_failed_transport", 1}});
        // Other 4xx (401, 403, 404: the receiver is off, 413) and a
        // certificate that does not verify need the operator: stop here and
        // keep everything for the next run.
        if ((r.status >= 400 && r.status < 500 && r.status != 429) || r.permanent)
            return Outcome::Failed;
        if (!failing)
            spdlog::warn("Remote-write to {} started to fail ({}); retrying with backoff", m_config.url, why);
        failing = true;
        if (std::chrono::steady_clock::now() + backoff > deadline)
            return Outcome::Failed;
        m_sleep(backoff);
        backoff = std::min(m_config.maxBackoff, std::max(backoff * 2, std::chrono::milliseconds(1)));
    }
}

RemoteWriteResult RemoteWriter::run()
{
    m_result = {};
    for (const auto& stream : m_store.streams()) {
        auto cursor = m_state.cursor(stream.node, stream.epoch);
        while (cursor.seq < stream.lastOrder) {
            // Gather records until the request holds about max_samples_per_send samples.
            std::vector<SequencedRecord> batch;
            std::size_t samples = 0, unreadable = 0;
            std::string body;
            for (;;) {
                auto more = m_store.recordsAfter(stream, batch.empty() ? cursor.seq : batch.back().order, 16);
                if (more.empty())
                    break;
                for (auto& r : more) {
                    batch.push_back(std::move(r));
                    try {
                        samples += ferry::metrics::decodeRecord(batch.back().kind, batch.back().payload,
                                                                batch.back().timeMs).size();
                    } catch (const std::exception&) {
                        // Counted and logged when the request is encoded.
                    }
                    if (samples >= m_config.maxSamplesPerSend)
                        break;
                }
                if (samples >= m_config.maxSamplesPerSend)
                    break;
            }
            if (batch.empty())
                break;
            samples = 0;
            body = encodeWriteRequest(stream.node, batch, samples, unreadable);
            std::string why;
            const Outcome o = samples == 0 ? Outcome::Sent : send(body, why);
            if (o == Outcome::Failed) {
                m_result.error = "Failed to remote-write to " + m_config.url + ": " + why;
                return m_result;
            }
            if (o == Outcome::Sent) {
                cursor = {batch.back().order, std::max(cursor.timeMs, newestTime(batch))};
                m_state.advance(stream.node, stream.epoch, cursor,
                                {{"samples_sent", static_cast<std::int64_t>(samples)},
                                 {"records_unreadable", static_cast<std::int64_t>(unreadable)}});
                m_result.samplesSent += samples;
                continue;
            }
            // Rejected as a whole: find the records the receiver refuses on their own.
            spdlog::warn("Remote-write of {} records of node {} was refused ({}); sending them one by one",
                         batch.size(), ferry::escapeForLog(stream.node), why);
            for (const auto& r : batch) {
                std::size_t n = 0, bad = 0;
                const std::string one = encodeWriteRequest(stream.node, {r}, n, bad);
                const Outcome single = n == 0 ? Outcome::Sent : send(one, why);
                if (single == Outcome::Failed) {
                    m_result.error = "Failed to remote-write to " + m_config.url + ": " + why;
                    return m_result;
                }
                std::map<std::string, std::int64_t> deltas{{"records_unreadable", static_cast<std::int64_t>(bad)}};
                if (single == Outcome::Rejected) {
                    spdlog::warn("Skipping record {} of node {} stamped {} ({} samples): the receiver refuses it: {}",
                                 r.seq, ferry::escapeForLog(stream.node), ferry::formatTime(r.timeMs), n, why);
                    deltas["samples_rejected"] = static_cast<std::int64_t>(n);
                    ++m_result.recordsRejected;
                } else {
                    deltas["samples_sent"] = static_cast<std::int64_t>(n);
                    m_result.samplesSent += n;
                }
                cursor = {r.order, std::max(cursor.timeMs, r.timeMs)};
                m_state.advance(stream.node, stream.epoch, cursor, deltas);
            }
        }
    }
    m_result.complete = true;
    return m_result;
}

} // namespace metricsd
