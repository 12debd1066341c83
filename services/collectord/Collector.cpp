#include "Collector.h"

#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <vector>

#include <spdlog/spdlog.h>

#include "ferry/Error.h"
#include "ferry/PullProtocol.h"
#include "ferry/RelayHeader.h"
#include "ferry/Stream.h"

namespace collectord {

ferry::TcpServerOptions defaultServerOptions()
{
    ferry::TcpServerOptions o;
    o.maxConnections = 256;
    o.maxUnauthenticated = 32;
    // Per source: per local uid on loopback. Every node's forward comes from
    // sshd as the tunnel user, so that one source gets a generous bucket;
    // the per-source cap only makes a flood evict its own connections.
    // Pushes through the relay socket are limited per node address instead
    // (start(): TcpServerOptions::relayUid).
    o.maxPerSource = 16;
    o.maxPerIdentity = Collector::kMaxSessionsPerNode;
    o.authDeadline = std::chrono::seconds(10);
    o.sourceRate = 50;
    o.sourceBurst = 100;
    o.loopbackByUid = true;
    return o;
}

Collector::Collector(std::string storePath, SessionOptions options, std::function<void(int)> onBusy)
    : m_storePath(std::move(storePath)), m_options(std::move(options)), m_onBusy(std::move(onBusy))
{
}

Collector::~Collector()
{
    stop();
}

void Collector::start(std::vector<int> listenFds, ferry::TcpServerOptions serverOptions)
{
    // Every node's push comes through the tunnel user's relay: its
    // connections are limited per node address, not as one uid.
    if (m_relayUid)
        serverOptions.relayUid = m_relayUid;
    m_server = std::make_unique<ferry::TcpServer>(
        "collector", std::move(listenFds), std::move(serverOptions), [this](ferry::TcpConnection& c) { serve(c); },
        [this] { m_onBusy(+1); }, [this] { m_onBusy(-1); });
    m_server->start();
}

void Collector::stop()
{
    if (m_server)
        m_server->stop();
    flushPending();
    std::lock_guard lock(m_totalsMutex);
    summariseLocked(std::chrono::steady_clock::now(), true);
}

void Collector::countSession(const SessionResult& r)
{
    const auto now = std::chrono::steady_clock::now();
    std::lock_guard lock(m_totalsMutex);
    ++m_totals.sessions;
    m_totals.stored += r.stored;
    m_totals.duplicates += r.duplicates;
    if (r.held)
        ++m_totals.held;
    if (r.comeBackAtMs > 0)
        ++m_totals.early;
    summariseLocked(now, false);
}

void Collector::summariseLocked(std::chrono::steady_clock::time_point now, bool force)
{
    if (m_totals.sessions == 0) {
        m_totalsSince = now;
        return;
    }
    if (!force && now - m_totalsSince < kSummaryInterval)
        return;
    const auto secs = std::chrono::duration_cast<std::chrono::seconds>(now - m_totalsSince).count();
    spdlog::info("In the last {} s: {} push sessions, {} records stored ({} already stored), {} sessions held, {} "
                 "early",
                 secs, m_totals.sessions, m_totals.stored, m_totals.duplicates, m_totals.held, m_totals.early);
    m_totals = {};
    m_totalsSince = now;
}

namespace {

// Descriptors that came with the relay's header (SCM_RIGHTS); closed unless
// taken.
struct PassedFds {
    PassedFds() = default;
    PassedFds(const PassedFds&) = delete;
    PassedFds& operator=(const PassedFds&) = delete;
    ~PassedFds()
    {
        for (int fd : fds)
            ::close(fd);
    }
    std::vector<int> fds;
    bool truncated = false; // more than two came (the rest were closed)
};

// Until the relay socket has something to read (or has ended), or throws
// TimeoutError at the deadline.
void waitForHeader(int fd, const std::string& peer, ferry::Deadline deadline)
{
    for (;;) {
        pollfd pfd{fd, POLLIN, 0};
        const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - ferry::Clock::now());
        const int r = ::poll(&pfd, 1, static_cast<int>(std::clamp<long long>(left.count(), 0, 1 << 30)));
        if (r > 0)
            return;
        if (r == 0)
            throw ferry::TimeoutError("Timed out reading the relay header from " + peer);
        if (errno != EINTR)
            throw ferry::Error("Failed to wait for the relay header from " + peer + ": " + std::strerror(errno));
    }
}

// Takes 1..size bytes of the relay socket, with the descriptors that came
// with them; 0 at its end. Waits until the deadline.
std::size_t takeSome(int fd, char* buf, std::size_t size, const std::string& peer, ferry::Deadline deadline,
                     PassedFds& passed)
{
    for (;;) {
        iovec iov{buf, size};
        // Room for more than the two a relay sends: a peer that sends more
        // is refused, and the extra ones are closed with the rest.
        alignas(cmsghdr) char control[CMSG_SPACE(sizeof(int) * 8)];
        msghdr msg{};
        msg.msg_iov = &iov;
        msg.msg_iovlen = 1;
        msg.msg_control = control;
        msg.msg_controllen = sizeof control;
        const ssize_t n = ::recvmsg(fd, &msg, MSG_DONTWAIT | MSG_CMSG_CLOEXEC);
        if (n >= 0) {
            if ((msg.msg_flags & MSG_CTRUNC) != 0)
                passed.truncated = true;
            for (cmsghdr* c = CMSG_FIRSTHDR(&msg); c != nullptr; c = CMSG_NXTHDR(&msg, c)) {
                if (c->cmsg_level != SOL_SOCKET || c->cmsg_type != SCM_RIGHTS)
                    continue;
                const std::size_t count = (c->cmsg_len - CMSG_LEN(0)) / sizeof(int);
                for (std::size_t i = 0; i < count; ++i) {
                    int passedFd = -1;
                    std::memcpy(&passedFd, CMSG_DATA(c) + i * sizeof(int), sizeof passedFd);
                    // Never more than the channel's two held per connection,
                    // however many a peer sends over its header's bytes.
                    if (passed.fds.size() >= 2) {
                        ::close(passedFd);
                        passed.truncated = true;
                    } else {
                        passed.fds.push_back(passedFd);
                    }
                }
            }
            return static_cast<std::size_t>(n);
        }
        if (errno == EINTR)
            continue;
        if (errno == ECONNRESET)
            return 0;
        if (errno != EAGAIN && errno != EWOULDBLOCK)
            throw ferry::Error("Failed to read the relay header from " + peer + ": " + std::strerror(errno));
        waitForHeader(fd, peer, deadline);
    }
}

// Reads the relay's header line (without its newline) into `line`, and the
// descriptors sent with it into `passed`; returns whether it ended in a
// newline. Nothing of the session after the line is taken. The relay sends
// the line in one write before anything else, so it is nearly always there
// whole once anything is: waited for, looked at in place (MSG_PEEK) and
// taken in one read. (A session's thread often starts before the relay's
// write arrives: byte by byte, that was 30-odd reads per push.) Otherwise
// (arriving in pieces) byte by byte. Bounded in length and by the deadline.
bool readRelayHeader(int fd, const std::string& peer, ferry::Deadline deadline, std::string& line, PassedFds& passed)
{
    char buf[ferry::kRelayHeaderMax];
    ssize_t n = ::recv(fd, buf, sizeof buf, MSG_PEEK | MSG_DONTWAIT);
    while (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR)) {
        waitForHeader(fd, peer, deadline);
        n = ::recv(fd, buf, sizeof buf, MSG_PEEK | MSG_DONTWAIT);
    }
    if (n > 0) {
        const auto* newline = static_cast<const char*>(std::memchr(buf, '\n', static_cast<std::size_t>(n)));
        if (newline != nullptr) {
            const auto take = static_cast<std::size_t>(newline - buf) + 1;
            std::size_t done = 0;
            while (done < take) {
                const std::size_t got = takeSome(fd, buf + done, take - done, peer, deadline, passed);
                if (got == 0)
                    throw ferry::ClosedError(peer + " closed the connection in its relay header");
                done += got;
            }
            line.assign(buf, take - 1);
            return true;
        }
    }
    while (line.size() < ferry::kRelayHeaderMax) {
        char c = 0;
        if (takeSome(fd, &c, 1, peer, deadline, passed) == 0)
            return false;
        if (c == '\n')
            return true;
        line += c;
    }
    return false;
}

// Why a descriptor passed as the channel's `end` ("input", "output") cannot
// be one; empty when it can: a pipe or a socket, open for that direction.
std::string unusableChannelEnd(int fd, bool input)
{
    struct stat st {};
    if (::fstat(fd, &st) != 0)
        return std::string("cannot be examined: ") + std::strerror(errno);
    if (!S_ISFIFO(st.st_mode) && !S_ISSOCK(st.st_mode))
        return "is neither a pipe nor a socket";
    const int mode = ::fcntl(fd, F_GETFL) & O_ACCMODE;
    if (mode != O_RDWR && mode != (input ? O_RDONLY : O_WRONLY))
        return input ? "is not open for reading" : "is not open for writing";
    return {};
}

} // namespace

Collector::Relayed::Relayed(Relayed&& o) noexcept : peer(std::move(o.peer)), in(o.in), out(o.out)
{
    o.in = o.out = -1;
}

Collector::Relayed::~Relayed()
{
    if (in >= 0)
        ::close(in);
    if (out >= 0)
        ::close(out);
}

std::optional<Collector::Relayed> Collector::relayedPeer(ferry::TcpConnection& conn)
{
    const std::uint32_t uid = *conn.unixPeerUid();
    std::string line;
    bool complete = false;
    PassedFds passed;
    try {
        complete = readRelayHeader(conn.fd(), conn.peer(), conn.authDeadline(), line, passed);
    } catch (const std::exception& e) {
        conn.countFailure("relay connections that sent no header");
        spdlog::debug("Relay connection from {} sent no header: {}", conn.peer(), e.what());
        return std::nullopt;
    }
    if (!m_relayUid || uid != *m_relayUid) {
        spdlog::warn("Refusing a connection on the relay socket from uid {}: only the tunnel user's relay may name "
                     "a node's address (it claimed \"{}\")",
                     uid, ferry::escapeForLog(line));
        conn.countFailure("refused on the relay socket: not the tunnel user");
        return std::nullopt;
    }
    const auto address = complete ? ferry::parseRelayHeader(line) : std::nullopt;
    if (!address) {
        spdlog::warn("Refusing a relay connection with a malformed header \"{}\"", ferry::escapeForLog(line));
        conn.countFailure("refused on the relay socket: malformed header");
        return std::nullopt;
    }
    // Version 2 comes with exactly the channel's two ends; version 1 with none.
    std::string wrong;
    const std::size_t expected = address->withFds ? 2 : 0;
    if (passed.truncated || passed.fds.size() != expected)
        wrong = "came with " + std::string(passed.truncated ? "more than 2" : std::to_string(passed.fds.size())) +
                " descriptors, not " + std::to_string(expected);
    else if (address->withFds) {
        if (const auto why = unusableChannelEnd(passed.fds[0], true); !why.empty())
            wrong = "its channel's input " + why;
        else if (const auto why2 = unusableChannelEnd(passed.fds[1], false); !why2.empty())
            wrong = "its channel's output " + why2;
    }
    if (!wrong.empty()) {
        spdlog::warn("Refusing a relay connection for {}: its header \"{}\" {}", address->peerText(),
                     ferry::escapeForLog(line), wrong);
        conn.countFailure("refused on the relay socket: wrong descriptors");
        return std::nullopt;
    }
    // The per-source limits, for the node's address (counted in the
    // server's summary line when refused).
    if (!conn.relayedSource(address->address))
        return std::nullopt;
    Relayed r;
    r.peer = address->peerText();
    if (address->withFds) {
        r.in = passed.fds[0];
        r.out = passed.fds[1];
        passed.fds.clear();
    }
    return r;
}

// master.db's one connection, shared by the sessions (Collector::takeStore).
struct Collector::SharedMaster {
    std::mutex mutex;
    std::unique_ptr<ferry::MasterStore> store;
    std::chrono::steady_clock::time_point opened;
    bool broken = false; // a call failed: later sessions open a new one
};

namespace {

// A session's view of the shared connection: each call of the interface is
// a transaction of its own (or a single read), so sessions take turns call
// by call, each under the connection's lock.
class SharedStoreView : public ferry::SessionStore {
public:
    explicit SharedStoreView(std::shared_ptr<Collector::SharedMaster> shared) : m_shared(std::move(shared)) {}

    template <typename F>
    auto call(F&& f)
    {
        std::lock_guard lock(m_shared->mutex);
        try {
            return f(*m_shared->store);
        } catch (...) {
            // Whatever state the failure left the connection in, no later
            // session gets it.
            m_shared->broken = true;
            throw;
        }
    }

    std::optional<std::string> nodeSecret(const std::string& name) override
    {
        return call([&](ferry::MasterStore& s) { return s.nodeSecret(name); });
    }
    ferry::SessionAdmission admitSession(const ferry::SessionStart& start) override
    {
        return call([&](ferry::MasterStore& s) { return s.admitSession(start); });
    }
    void storeReport(const std::string& node, const ferry::Epoch& epoch, const std::string& via,
                     const std::string& address, const ferry::HealthReport& report) override
    {
        call([&](ferry::MasterStore& s) { s.storeReport(node, epoch, via, address, report); });
    }
    ferry::AckMessage storeBatch(const std::string& node, const ferry::Epoch& epoch,
                                 const std::vector<ferry::Record>& records, const std::string& via,
                                 ferry::BatchLane lane) override
    {
        return call([&](ferry::MasterStore& s) { return s.storeBatch(node, epoch, records, via, lane); });
    }
    std::vector<ferry::AckMessage> storeBatches(const std::string& node, const ferry::Epoch& epoch,
                                                const std::vector<ferry::BatchToStore>& batches, const std::string& via,
                                                const ferry::WithBatches& with) override
    {
        return call([&](ferry::MasterStore& s) { return s.storeBatches(node, epoch, batches, via, with); });
    }
    std::uint64_t pullCursor(const std::string& node, const ferry::Epoch& epoch) override
    {
        return call([&](ferry::MasterStore& s) { return s.pullCursor(node, epoch); });
    }
    void setPullCursor(const std::string& node, const ferry::Epoch& epoch, std::uint64_t cursor) override
    {
        call([&](ferry::MasterStore& s) { s.setPullCursor(node, epoch, cursor); });
    }
    ferry::PushPacing pushPacing(const std::string& node) override
    {
        return call([&](ferry::MasterStore& s) { return s.pushPacing(node); });
    }
    void notePacedPush(const std::string& node, std::int64_t startMs) override
    {
        call([&](ferry::MasterStore& s) { s.notePacedPush(node, startMs); });
    }
    void addCounters(const std::vector<ferry::CounterDelta>& deltas) override
    {
        call([&](ferry::MasterStore& s) { s.addCounters(deltas); });
    }
    // Kept by the shared connection until its next write (MasterStore).
    void addCountersLater(const std::vector<ferry::CounterDelta>& deltas) override
    {
        call([&](ferry::MasterStore& s) { s.addCountersLater(deltas); });
    }
    std::vector<ferry::CounterValue> counters() override
    {
        return call([&](ferry::MasterStore& s) { return s.counters(); });
    }
    // What closing a connection did after the last Ack (its checkpoint).
    void checkpointIfDue()
    {
        call([](ferry::MasterStore& s) { s.checkpointIfDue(); });
    }

private:
    std::shared_ptr<Collector::SharedMaster> m_shared;
};

} // namespace

std::unique_ptr<ferry::SessionStore> Collector::takeStore()
{
    // PostgreSQL has its pool already.
    if (m_store.isPostgres())
        return m_store.sessionStore();
    const auto current = [this](std::chrono::steady_clock::time_point now) -> std::shared_ptr<SharedMaster> {
        std::shared_ptr<SharedMaster> shared;
        {
            std::lock_guard lock(m_sharedMutex);
            shared = m_shared;
        }
        if (!shared)
            return nullptr;
        std::lock_guard lock(shared->mutex);
        return !shared->broken && now - shared->opened < kSharedStoreLife ? shared : nullptr;
    };
    if (auto shared = current(std::chrono::steady_clock::now()))
        return std::make_unique<SharedStoreView>(std::move(shared));
    // One session opens; sessions that found no usable connection at the
    // same moment wait for it and use the one it opened, instead of each
    // opening a connection of its own.
    std::lock_guard opening(m_openingMutex);
    const auto now = std::chrono::steady_clock::now();
    if (auto shared = current(now))
        return std::make_unique<SharedStoreView>(std::move(shared));
    // The first session, one after a failure, or the connection has served
    // kSharedStoreLife (a master.db replaced on disk is opened anew by
    // then): a new connection, opened as pulld's are (master.db held open,
    // its migration run once); sessions still on the old one finish there.
    auto opened = m_store.sessionStore();
    auto* master = dynamic_cast<ferry::MasterStore*>(opened.get());
    if (master == nullptr)
        return opened;
    auto next = std::make_shared<SharedMaster>();
    opened.release();
    next->store.reset(master);
    // Every session uses it, and flushPending() runs every kPendingFlush.
    master->keepSessionNotes();
    next->opened = now;
    std::lock_guard lock(m_sharedMutex);
    m_shared = next;
    return std::make_unique<SharedStoreView>(std::move(next));
}

void Collector::flushPending()
{
    std::shared_ptr<SharedMaster> shared;
    {
        std::lock_guard lock(m_sharedMutex);
        shared = m_shared;
    }
    if (!shared)
        return;
    std::lock_guard lock(shared->mutex);
    try {
        shared->store->flushPending();
    } catch (const std::exception& e) {
        shared->broken = true;
        spdlog::warn("Failed to write the push session counters to {}, ignoring: {}", m_storePath, e.what());
    }
}

void Collector::giveBack(std::unique_ptr<ferry::SessionStore> store)
{
    if (auto* view = dynamic_cast<SharedStoreView*>(store.get()))
        view->checkpointIfDue();
}

void Collector::serve(ferry::TcpConnection& conn)
{
    std::string peer = conn.peer();
    std::optional<Relayed> relayed = conn.unixPeerUid() ? relayedPeer(conn) : std::nullopt;
    if (conn.unixPeerUid()) {
        if (!relayed)
            return;
        peer = relayed->peer;
    } else {
        const int one = 1;
        ::setsockopt(conn.fd(), IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    }
    ++m_sessions;
    // On the socket (not owned: the server closes it when this returns), or
    // on the channel's pipes the relay passed, which this stream closes when
    // the session is over; the relay's socket is then watched, so that the
    // relay's end or the server's cut ends the session.
    const bool onPipes = relayed && relayed->in >= 0;
    ferry::FdStream stream(onPipes ? relayed->in : conn.fd(), onPipes ? relayed->out : conn.fd(), peer, onPipes);
    if (onPipes) {
        relayed->in = relayed->out = -1;
        stream.watch(conn.fd());
    }
    SessionOptions options = m_options;
    options.onAuthenticated = [&conn](const std::string& node) { return conn.authenticated(node); };
    std::unique_ptr<ferry::SessionStore> store;
    auto openStore = [&]() -> ferry::SessionStore& {
        if (!store)
            store = takeStore();
        return *store;
    };
    std::string outcome;
    // Whether the store may serve another session: not after an error that
    // may have come from it.
    bool reusable = false;
    try {
        const auto r = serveSession(stream, openStore, options);
        outcome = r.held ? "held" : "ok";
        reusable = true;
        // One line per push is a journal line per push, 80 a second on a
        // busy master: the detail is at debug, the periodic summary at info.
        // (The escaped name is made only when the line is written.)
        if (spdlog::should_log(spdlog::level::debug)) {
            if (r.batches > 0)
                spdlog::debug("Stored {} records from {} epoch {} ({} already stored)", r.stored,
                              ferry::escapeForLog(r.node), r.epoch, r.duplicates);
            else
                spdlog::debug("Session with {} ended with nothing to store", ferry::escapeForLog(r.node));
        }
        countSession(r);
    } catch (const ferry::AuthError& e) {
        // Like sshd, every failed authentication gets its line.
        outcome = "refused";
        spdlog::warn("Session with {} failed: {}", stream.peer(), e.what());
    } catch (const std::exception& e) {
        // Anyone who can connect can end a connection before authenticating
        // (or have it cut): such endings are counted in the server's summary
        // line, so that a flood cannot flood the journal (nor the store).
        if (conn.wasCut() || !conn.isAuthenticated()) {
            conn.countFailure(conn.wasCut() ? "ended after the server cut them"
                                            : "ended before authenticating");
            spdlog::debug("Session with {} ended before authenticating: {}", stream.peer(), e.what());
        } else {
            outcome = "failed";
            spdlog::warn("Session with {} failed: {}", stream.peer(), e.what());
        }
    }
    // The master's sessions{transport, outcome} counter (metricsd exports
    // it). On master.db it is written with the next session's admission or
    // batch, or by flushPending() (every kPendingFlush, and at stop): a
    // transaction of its own per push was 5 % of collectord's CPU
    // (bench/collector-push). A crash loses those increments, no record.
    if (!outcome.empty()) {
        try {
            openStore().addCountersLater(
                {{"sessions", ferry::counterLabels({{"transport", "push"}, {"outcome", outcome}}), 1}});
        } catch (const std::exception& e) {
            reusable = false;
            spdlog::warn("Failed to count a push session ({}), ignoring: {}", outcome, e.what());
        }
    }
    if (store && reusable)
        giveBack(std::move(store));
}

} // namespace collectord
