// Escape attempts against ferry-login through a real sshd, as a real
// restricted user: each is refused with the one fixed message, logged to the
// journal, and nothing runs (every attempt tries to create a file in a
// directory the user may write to; none may appear).
#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <filesystem>

#include <gtest/gtest.h>

#include "LoginShell.h"
#include "NodeSshd.h"
#include "ferry/PullProtocol.h"

using namespace ferry::test;
using pulltest::NodeSshd;

namespace {

const std::string kRefusal = "ferry-login: refused: this account only serves Ferry pulls";

class ALoginShellBehindSshd : public ::testing::Test {
protected:
    void SetUp() override
    {
        if (!isRoot())
            GTEST_SKIP() << "needs root to create a system user and run sshd";
        node.emplace();
    }

    RunResult ssh(const std::string& key, const std::vector<std::string>& options, const std::vector<std::string>& command)
    {
        return run(node->sshArgv(key, options, command), {}, "", std::chrono::seconds(20));
    }

    // One SSH connection per key, each attempt a new session on it (as a
    // master would multiplex): the shell still starts afresh every time.
    std::vector<std::string> multiplexed(const std::string& key)
    {
        return {"-o", "ControlMaster=auto", "-o", "ControlPath=" + key + ".control", "-o", "ControlPersist=30"};
    }

    std::size_t refusalsLogged()
    {
        std::size_t n = 0;
        for (const auto& e : node->journal())
            if (e.fields.count("SYSLOG_IDENTIFIER") && e.fields.at("SYSLOG_IDENTIFIER") == "ferry-login" &&
                e.message().rfind("Refused a request", 0) == 0)
                ++n;
        return n;
    }

    // Whether a refusal after the first `after` ones mentions text.
    bool lastRefusalNames(const std::string& text, std::size_t after)
    {
        std::size_t n = 0;
        for (const auto& e : node->journal()) {
            if (e.message().rfind("Refused a request", 0) != 0)
                continue;
            if (n++ >= after && e.message().find(text) != std::string::npos)
                return true;
        }
        return false;
    }

    void expectTrapEmpty()
    {
        std::vector<std::string> found;
        for (const auto& entry : std::filesystem::directory_iterator(node->trapDir()))
            found.push_back(entry.path().filename());
        EXPECT_TRUE(found.empty()) << "an escape attempt created " << found.front();
    }

    std::optional<NodeSshd> node;
};

std::vector<std::string> escapeCommands(const std::string& trap)
{
    const std::string t = trap + "/";
    return {
        "fetch 0; touch " + t + "semicolon",
        "fetch 0 && touch " + t + "and",
        "fetch 0 | touch " + t + "pipe",
        "fetch $(touch " + t + "subst)",
        "fetch `touch " + t + "backtick`",
        "fetch 0\ntouch " + t + "newline",
        "status\ntouch " + t + "newline2",
        "fetch '0'",
        "fetch \"0\"",
        "fetch *",
        "fetch ?",
        "status *",
        "fetch 0 1",
        "status now",
        "fetch " + std::string(100000, '1'),
        "fetch " + std::string(ferry::kMaxPullCommand, '1'),
        "fetch \xff\xfe",
        "st\xc3\x28tus",
        "fetch /etc/passwd",
        "status /etc/shadow",
        "fetch ../../etc/passwd",
        "fetch ~",
        "sh",
        "/bin/sh -c 'touch " + t + "sh'",
        "touch " + t + "plain",
        "cat /etc/passwd",
        "scp -f /etc/passwd",
        "/usr/lib/openssh/sftp-server",
        "git-upload-pack /srv",
        "FETCH 0",
        " fetch 0",
        "fetch  0",
        "fetch 0 ",
        "fetch\t0",
        "fetch -1",
        "fetch +1",
        "fetch 01",
        "fetch 99999999999999999999",
        "fetch 0x10",
        "status\r",
    };
}

// Listens on a loopback port and reports whether anyone connected.
class Target {
public:
    Target()
    {
        // Port 0: the kernel picks a port and it is ours from the bind on.
        m_fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
        sockaddr_in a{};
        a.sin_family = AF_INET;
        a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        socklen_t len = sizeof a;
        if (::bind(m_fd, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0 || ::listen(m_fd, 8) != 0 ||
            ::getsockname(m_fd, reinterpret_cast<sockaddr*>(&a), &len) != 0)
            throw std::runtime_error("target listen failed");
        port = ntohs(a.sin_port);
    }
    ~Target() { ::close(m_fd); }
    bool wasReached()
    {
        const int c = ::accept(m_fd, nullptr, nullptr);
        if (c >= 0) {
            ::close(c);
            return true;
        }
        return false;
    }
    std::uint16_t port = 0;

private:
    int m_fd = -1;
};

int connectLoopback(std::uint16_t port)
{
    const int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_port = htons(port);
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (::connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0) {
        ::close(fd);
        return -1;
    }
    return fd;
}

// Reads until EOF or 5 s; returns what arrived.
std::string drain(int fd)
{
    std::string out;
    char buf[512];
    const auto end = std::chrono::steady_clock::now() + std::chrono::seconds(5);
    while (std::chrono::steady_clock::now() < end) {
        pollfd p{fd, POLLIN, 0};
        if (::poll(&p, 1, 100) <= 0)
            continue;
        const ssize_t n = ::read(fd, buf, sizeof buf);
        if (n <= 0)
            break;
        out.append(buf, static_cast<std::size_t>(n));
    }
    return out;
}

} // namespace

TEST_F(ALoginShellBehindSshd, RefusesEveryCommandOutsideTheTableWithTheFixedMessage)
{
    const auto commands = escapeCommands(node->trapDir());
    for (const std::string& key : {node->plainKey(), node->restrictedKey()}) {
        for (const auto& command : commands) {
            SCOPED_TRACE((key == node->plainKey() ? "plain key, command '" : "restricted key, command '") +
                         ferry::escapeForLog(command) + "'");
            const RunResult r = ssh(key, multiplexed(key), {command});
            EXPECT_NE(r.exitCode, 0);
            EXPECT_NE(r.err.find(kRefusal), std::string::npos) << r.err;
            EXPECT_TRUE(r.out.empty()) << r.out;
        }
    }
    for (const std::string& key : {node->plainKey(), node->restrictedKey()}) {
        auto options = multiplexed(key);
        options.insert(options.end(), {"-O", "exit"});
        ssh(key, options, {});
    }
    expectTrapEmpty();
    // Every refusal left a journal line naming what was refused.
    EXPECT_TRUE(waitUntil([&] { return refusalsLogged() >= 2 * commands.size(); }, std::chrono::seconds(5)))
        << refusalsLogged() << " of " << 2 * commands.size() << " refusals logged";
}

TEST_F(ALoginShellBehindSshd, RefusesAnInteractiveLogin)
{
    // No command at all: sshd starts the login shell without -c.
    for (const std::string& key : {node->plainKey(), node->restrictedKey()}) {
        SCOPED_TRACE(key);
        const RunResult r = ssh(key, {"-T"}, {});
        EXPECT_NE(r.exitCode, 0);
        EXPECT_NE(r.err.find(kRefusal), std::string::npos) << r.err;
    }
    // With a terminal, as a person would log in: the plain key gets its pty
    // and the shell refuses; the shipped key line does not even get a pty.
    const RunResult plain = ssh(node->plainKey(), {"-tt"}, {});
    EXPECT_NE(plain.exitCode, 0);
    EXPECT_NE((plain.out + plain.err).find(kRefusal), std::string::npos) << plain.out << plain.err;
    // (The client then gives up at once, so the shell may not even get to
    // refuse: what matters is that nothing ran.)
    const RunResult restricted = ssh(node->restrictedKey(), {"-tt"}, {"touch " + node->trapDir() + "/tty"});
    EXPECT_NE(restricted.exitCode, 0);
    EXPECT_NE(restricted.err.find("PTY allocation request failed"), std::string::npos) << restricted.err;
    EXPECT_TRUE(waitUntil([&] { return refusalsLogged() >= 3; }, std::chrono::seconds(5)));
    expectTrapEmpty();
}

TEST_F(ALoginShellBehindSshd, RefusesAPullCommandOnATerminal)
{
    const RunResult plain = ssh(node->plainKey(), {"-tt"}, {"status"});
    EXPECT_NE(plain.exitCode, 0);
    EXPECT_NE((plain.out + plain.err).find(kRefusal), std::string::npos) << plain.out << plain.err;
    // The shipped key line: sshd refuses the pty itself.
    const RunResult restricted = ssh(node->restrictedKey(), {"-tt"}, {"status"});
    EXPECT_NE(restricted.err.find("PTY allocation request failed"), std::string::npos) << restricted.err;
    EXPECT_TRUE(waitUntil([&] { return refusalsLogged() >= 1; }, std::chrono::seconds(5)));
}

TEST_F(ALoginShellBehindSshd, RefusesSftpAndScp)
{
    const std::string copy = node->trapDir() + "/copied";
    for (const std::string& key : {node->plainKey(), node->restrictedKey()}) {
        SCOPED_TRACE(key);
        const std::vector<std::string> common{"-F", "/dev/null", "-i", key, "-P", std::to_string(node->port()),
                                              "-o", "IdentitiesOnly=yes", "-o", "BatchMode=yes",
                                              "-o", "UserKnownHostsFile=" + node->knownHosts(),
                                              "-o", "StrictHostKeyChecking=yes"};
        std::vector<std::string> sftp{"/usr/bin/sftp"};
        sftp.insert(sftp.end(), common.begin(), common.end());
        sftp.insert(sftp.end(), {"-b", "/dev/null", node->user() + "@127.0.0.1"});
        // sshd gives a subsystem no stderr channel, so the fixed message
        // stays on the node; the journal line is the evidence.
        std::size_t before = refusalsLogged();
        const RunResult s = run(sftp, {}, "", std::chrono::seconds(20));
        EXPECT_NE(s.exitCode, 0);
        EXPECT_TRUE(waitUntil([&] { return lastRefusalNames("sftp-server", before); }, std::chrono::seconds(5)));

        for (bool legacy : {false, true}) {
            std::vector<std::string> scp{"/usr/bin/scp"};
            if (legacy)
                scp.push_back("-O");
            scp.insert(scp.end(), common.begin(), common.end());
            scp.insert(scp.end(), {node->user() + "@127.0.0.1:/etc/passwd", copy});
            before = refusalsLogged();
            const RunResult c = run(scp, {}, "", std::chrono::seconds(20));
            EXPECT_NE(c.exitCode, 0);
            EXPECT_TRUE(waitUntil([&] { return lastRefusalNames(legacy ? "scp -f" : "sftp-server", before); },
                                  std::chrono::seconds(5)))
                << (legacy ? "scp -O: " : "scp: ") << c.err;
        }
        // The subsystem asked for by name, as `ssh -s` does.
        before = refusalsLogged();
        const RunResult sub = ssh(key, {"-s"}, {"sftp"});
        EXPECT_NE(sub.exitCode, 0);
        EXPECT_TRUE(waitUntil([&] { return lastRefusalNames("sftp-server", before); }, std::chrono::seconds(5)));
    }
    EXPECT_FALSE(std::filesystem::exists(copy));
    expectTrapEmpty();
}

// Forwarding never reaches a shell, so only sshd can refuse it: the shipped
// authorized_keys line (restrict) must.
TEST_F(ALoginShellBehindSshd, ShippedKeyLineRefusesLocalForwarding)
{
    Target target;
    const std::uint16_t local = static_cast<std::uint16_t>(freePort());
    Process fwd(node->sshArgv(node->restrictedKey(),
                              {"-N", "-L", "127.0.0.1:" + std::to_string(local) + ":127.0.0.1:" + std::to_string(target.port)},
                              {}));
    int fd = -1;
    ASSERT_TRUE(waitUntil([&] { return (fd = connectLoopback(local)) >= 0; }, std::chrono::seconds(10)));
    const std::string got = drain(fd);
    ::close(fd);
    EXPECT_TRUE(got.empty());
    EXPECT_FALSE(target.wasReached());

    // -W is the same direct-tcpip request, with ssh's own verdict.
    const RunResult w = ssh(node->restrictedKey(), {"-W", "127.0.0.1:" + std::to_string(target.port)}, {});
    EXPECT_NE(w.exitCode, 0);
    EXPECT_TRUE(w.err.find("administratively prohibited") != std::string::npos ||
                w.err.find("stdio forwarding failed") != std::string::npos)
        << w.err;
    EXPECT_FALSE(target.wasReached());
}

TEST_F(ALoginShellBehindSshd, ShippedKeyLineRefusesRemoteForwarding)
{
    const RunResult r = ssh(node->restrictedKey(),
                            {"-N", "-o", "ExitOnForwardFailure=yes", "-R",
                             "127.0.0.1:" + std::to_string(freePort()) + ":127.0.0.1:9"},
                            {});
    EXPECT_NE(r.exitCode, 0);
    EXPECT_NE(r.err.find("remote port forwarding failed"), std::string::npos) << r.err;
}

TEST_F(ALoginShellBehindSshd, ShippedKeyLineRefusesDynamicForwarding)
{
    Target target;
    const std::uint16_t socks = static_cast<std::uint16_t>(freePort());
    Process fwd(node->sshArgv(node->restrictedKey(), {"-N", "-D", "127.0.0.1:" + std::to_string(socks)}, {}));
    int fd = -1;
    ASSERT_TRUE(waitUntil([&] { return (fd = connectLoopback(socks)) >= 0; }, std::chrono::seconds(10)));
    // SOCKS5: no authentication, then CONNECT 127.0.0.1:<target>.
    const unsigned char hello[] = {5, 1, 0};
    ASSERT_EQ(::write(fd, hello, sizeof hello), 3);
    unsigned char method[2] = {};
    ASSERT_EQ(::read(fd, method, 2), 2);
    const unsigned char connect[] = {5, 1, 0, 1, 127, 0, 0, 1, static_cast<unsigned char>(target.port >> 8),
                                     static_cast<unsigned char>(target.port & 0xff)};
    ASSERT_EQ(::write(fd, connect, sizeof connect), static_cast<ssize_t>(sizeof connect));
    const std::string reply = drain(fd);
    ::close(fd);
    // Either a failure reply (REP != 0) or a closed connection; never success.
    EXPECT_TRUE(reply.size() < 2 || reply[1] != 0) << "SOCKS CONNECT succeeded";
    EXPECT_FALSE(target.wasReached());
}

TEST_F(ALoginShellBehindSshd, AnswersAProperCommandWithTheProtocol)
{
    // Sanity for the refusals above: the same account does answer a proper
    // command (a Hello frame comes back before the proof is checked).
    const RunResult r = ssh(node->restrictedKey(), {"-T"}, {"status"});
    EXPECT_EQ(r.out.substr(0, 2), "FY") << r.err;
    EXPECT_EQ(r.err.find(kRefusal), std::string::npos);
}
