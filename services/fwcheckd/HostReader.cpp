#include "HostReader.h"

#include <fcntl.h>
#include <grp.h>
#include <netdb.h>
#include <poll.h>
#include <pwd.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <chrono>
#include <cstdlib>
#include <cstring>
#include <sstream>

#include "Address.h"
#include "Capabilities.h"
#include "NftListing.h"
#include "ferry/Error.h"
#include "ferry/Files.h"

#include <nlohmann/json.hpp>

extern char** environ;

namespace fwcheck {

std::string CommandOutput::describe() const
{
    if (!ran)
        return err.empty() ? "could not be started" : err;
    // Every stderr line (sshd names each bad option on its own line), joined.
    std::string first;
    std::size_t start = 0;
    while (start < err.size() && first.size() < 600) {
        auto end = err.find('\n', start);
        if (end == std::string::npos)
            end = err.size();
        if (end > start)
            first += (first.empty() ? "" : "; ") + err.substr(start, end - start);
        start = end + 1;
    }
    if (first.empty())
        first = out.substr(0, out.find('\n'));
    return (exitCode < 0 ? std::string("killed or timed out") : "exit " + std::to_string(exitCode)) +
           (first.empty() ? "" : ": " + first);
}

namespace {

// argv[0] as execvp would find it, looked up before fork (the child may only
// make async-signal-safe calls).
std::string findProgram(const std::string& name)
{
    if (name.find('/') != std::string::npos)
        return name;
    const char* env = std::getenv("PATH");
    const std::string path = env && *env ? env : "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";
    std::size_t start = 0;
    while (start <= path.size()) {
        auto end = path.find(':', start);
        if (end == std::string::npos)
            end = path.size();
        const std::string dir = end > start ? path.substr(start, end - start) : ".";
        const std::string candidate = dir + "/" + name;
        if (::access(candidate.c_str(), X_OK) == 0)
            return candidate;
        start = end + 1;
    }
    return "";
}

} // namespace

CommandOutput runCommand(const std::vector<std::string>& argv, int timeoutMs,
                         const std::optional<std::vector<int>>& ambientCaps)
{
    CommandOutput result;
    if (argv.empty())
        return result;
    const std::string program = findProgram(argv[0]);
    if (program.empty()) {
        result.err = argv[0] + ": " + ferry::errnoMessage(ENOENT);
        return result;
    }
    int outPipe[2], errPipe[2];
    if (::pipe2(outPipe, O_CLOEXEC) != 0)
        return result;
    if (::pipe2(errPipe, O_CLOEXEC) != 0) {
        ::close(outPipe[0]);
        ::close(outPipe[1]);
        return result;
    }
    const int devNull = ::open("/dev/null", O_RDONLY | O_CLOEXEC);
    std::vector<char*> args;
    for (const auto& a : argv)
        args.push_back(const_cast<char*>(a.c_str()));
    args.push_back(nullptr);
    const pid_t pid = ::fork();
    if (pid == 0) {
        // The child: async-signal-safe calls only, then exec.
        if (devNull < 0 || ::dup2(devNull, 0) < 0 || ::dup2(outPipe[1], 1) < 0 || ::dup2(errPipe[1], 2) < 0)
            ::_exit(126);
        // The daemon blocks SIGTERM/SIGINT for its event loop; children must not inherit that.
        sigset_t none;
        sigemptyset(&none);
        ::sigprocmask(SIG_SETMASK, &none, nullptr);
        if (ambientCaps) {
            ::prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0);
            for (const int cap : *ambientCaps)
                ::prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_RAISE, static_cast<unsigned long>(cap), 0, 0);
        }
        ::execve(program.c_str(), args.data(), environ);
        ::_exit(127);
    }
    const int forkErrno = errno;
    if (devNull >= 0)
        ::close(devNull);
    ::close(outPipe[1]);
    ::close(errPipe[1]);
    if (pid < 0) {
        ::close(outPipe[0]);
        ::close(errPipe[0]);
        result.err = argv[0] + ": cannot start: " + ferry::errnoMessage(forkErrno);
        return result;
    }
    result.ran = true;
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(timeoutMs);
    pollfd fds[2] = {{outPipe[0], POLLIN, 0}, {errPipe[0], POLLIN, 0}};
    int open = 2;
    bool timedOut = false;
    constexpr std::size_t kMaxOutput = 64 * 1024 * 1024;
    while (open > 0) {
        const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - std::chrono::steady_clock::now()).count();
        if (left <= 0) {
            timedOut = true;
            break;
        }
        const int n = ::poll(fds, 2, static_cast<int>(left));
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            continue;
        for (int i = 0; i < 2; ++i) {
            if (fds[i].fd < 0 || !(fds[i].revents & (POLLIN | POLLHUP | POLLERR)))
                continue;
            char buf[65536];
            const ssize_t r = ::read(fds[i].fd, buf, sizeof buf);
            if (r > 0) {
                auto& into = i == 0 ? result.out : result.err;
                if (into.size() < kMaxOutput)
                    into.append(buf, static_cast<std::size_t>(r));
            } else if (r == 0 || (errno != EINTR && errno != EAGAIN)) {
                ::close(fds[i].fd);
                fds[i].fd = -1;
                --open;
            }
        }
    }
    for (auto& f : fds)
        if (f.fd >= 0)
            ::close(f.fd);
    if (timedOut)
        ::kill(pid, SIGKILL);
    int status = 0;
    while (::waitpid(pid, &status, 0) < 0 && errno == EINTR) {
    }
    if (timedOut) {
        result.exitCode = -1;
        result.err += "\n(timed out after " + std::to_string(timeoutMs) + " ms)";
    } else if (WIFEXITED(status)) {
        result.exitCode = WEXITSTATUS(status);
        // The child reports a failed exec as exit 127.
        if (result.exitCode == 127 && result.out.empty())
            result.ran = false;
    }
    return result;
}

CommandOutput HostReader::run(std::vector<std::string> argv, const CapabilityList& caps)
{
    std::vector<std::string> full = m_options.commandPrefix;
    full.insert(full.end(), argv.begin(), argv.end());
    return runCommand(full, m_options.timeoutMs, caps);
}

CommandOutput HostReader::iptablesSave(const std::string& tool)
{
    return run({tool}, tool.find("legacy") != std::string::npos ? kLegacyIptablesCaps : kNftIptablesCaps);
}

namespace {

// nft 1.0.6 takes a table name in `list table` only as an identifier
// (letters, digits, _ - . /, not starting with a digit); it refuses quotes.
bool nftIdentifier(const std::string& name)
{
    if (name.empty() || !(std::isalpha(static_cast<unsigned char>(name[0])) || name[0] == '_'))
        return false;
    return std::all_of(name.begin(), name.end(), [](char c) {
        return std::isalnum(static_cast<unsigned char>(c)) || c == '_' || c == '-' || c == '.' || c == '/';
    });
}

// The items of a whole-ruleset JSON document that belong to these tables.
CommandOutput keepNftTables(CommandOutput whole, const std::vector<std::string>& tables)
{
    if (!whole.ran || whole.exitCode != 0)
        return whole;
    try {
        auto doc = nlohmann::json::parse(whole.out);
        nlohmann::json kept = nlohmann::json::array();
        for (auto& item : doc.at("nftables")) {
            if (!item.is_object() || item.empty())
                continue;
            const auto& body = item.begin().value();
            std::string key;
            if (item.contains("table"))
                key = body.value("family", "") + " " + body.value("name", "");
            else if (body.is_object())
                key = body.value("family", "") + " " + body.value("table", "");
            if (std::find(tables.begin(), tables.end(), key) != tables.end())
                kept.push_back(std::move(item));
        }
        whole.out = nlohmann::json{{"nftables", std::move(kept)}}.dump();
    } catch (const std::exception& e) {
        whole.exitCode = 1;
        whole.err = std::string("the nft JSON cannot be read: ") + e.what();
    }
    return whole;
}

} // namespace

CommandOutput HostReader::nftRuleset()
{
    return listNft({"list ruleset"}, true, netnsPath());
}

std::optional<std::map<std::string, NftTableInfo>> HostReader::nftTables()
{
    try {
        return nftInventory(netnsPath());
    } catch (const std::exception&) {
        // The whole listing then reports why nothing can be read.
        return std::nullopt;
    }
}

CommandOutput HostReader::nftRulesetOf(const std::vector<std::string>& tables)
{
    std::vector<std::string> commands;
    for (const auto& t : tables) {
        const auto sp = t.find(' ');
        // A name `list table` cannot take: list everything and keep those tables.
        if (sp == std::string::npos || !nftIdentifier(t.substr(sp + 1)))
            return keepNftTables(nftRuleset(), tables);
        commands.push_back("list table " + t);
    }
    return listNft(commands, true, netnsPath());
}

CommandOutput HostReader::nftRulesetText(const std::vector<std::string>& tables)
{
    std::vector<std::string> commands;
    for (const auto& t : tables) {
        const auto sp = t.find(' ');
        if (sp == std::string::npos || !nftIdentifier(t.substr(sp + 1)))
            return listNft({"list ruleset"}, false, netnsPath());
        commands.push_back("list table " + t);
    }
    if (commands.empty())
        commands.push_back("list ruleset");
    return listNft(commands, false, netnsPath());
}

std::string HostReader::netnsPath() const
{
    return m_options.netns.empty() ? std::string() : "/run/netns/" + m_options.netns;
}

CommandOutput HostReader::sshdEffective(const std::string& user, const std::string& host, const std::string& addr)
{
    std::vector<std::string> argv = m_options.sshdPrefix;
    argv.push_back(m_options.sshdBinary);
    argv.push_back("-T");
    if (!m_options.sshdConfig.empty()) {
        argv.push_back("-f");
        argv.push_back(m_options.sshdConfig);
    }
    argv.push_back("-C");
    argv.push_back("user=" + user + ",host=" + host + ",addr=" + addr);
    return run(argv, kSshdCaps);
}

std::optional<std::string> HostReader::readFile(const std::string& path)
{
    return ferry::readFileIfExists(path, 4 * 1024 * 1024);
}

std::optional<Account> HostReader::account(const std::string& user)
{
    std::vector<char> buf(16384);
    passwd pw{};
    passwd* found = nullptr;
    if (::getpwnam_r(user.c_str(), &pw, buf.data(), buf.size(), &found) != 0 || found == nullptr)
        return std::nullopt;
    Account a;
    a.name = user;
    a.shell = pw.pw_shell ? pw.pw_shell : "";
    a.home = pw.pw_dir ? pw.pw_dir : "";
    int n = 64;
    std::vector<gid_t> gids(static_cast<std::size_t>(n));
    if (::getgrouplist(user.c_str(), pw.pw_gid, gids.data(), &n) < 0) {
        gids.resize(static_cast<std::size_t>(n));
        ::getgrouplist(user.c_str(), pw.pw_gid, gids.data(), &n);
    }
    gids.resize(static_cast<std::size_t>(n));
    for (gid_t g : gids) {
        group gr{};
        group* gf = nullptr;
        std::vector<char> gbuf(16384);
        if (::getgrgid_r(g, &gr, gbuf.data(), gbuf.size(), &gf) == 0 && gf != nullptr)
            a.groups.emplace_back(gr.gr_name);
    }
    return a;
}

Route HostReader::route(const std::string& address)
{
    Route r;
    const auto out = run({"ip", "-o", "route", "get", address});
    if (!out.ran || out.exitCode != 0)
        return r;
    std::istringstream in(out.out);
    std::string word, prev;
    while (in >> word) {
        if (prev == "dev")
            r.interface = word;
        else if (prev == "src")
            r.source = word;
        prev = word;
    }
    // A local address is reached over loopback.
    if (out.out.rfind("local ", 0) == 0) {
        r.interface = "lo";
        if (r.source.empty())
            r.source = address;
    }
    return r;
}

std::vector<std::string> HostReader::resolve(const std::string& host)
{
    if (Address::parse(host))
        return {host};
    addrinfo hints{};
    hints.ai_socktype = SOCK_STREAM;
    addrinfo* res = nullptr;
    std::vector<std::string> out;
    if (::getaddrinfo(host.c_str(), nullptr, &hints, &res) != 0)
        return out;
    for (auto* p = res; p; p = p->ai_next) {
        char buf[NI_MAXHOST];
        if (::getnameinfo(p->ai_addr, p->ai_addrlen, buf, sizeof buf, nullptr, 0, NI_NUMERICHOST) == 0) {
            std::string s = buf;
            if (std::find(out.begin(), out.end(), s) == out.end())
                out.push_back(s);
        }
    }
    ::freeaddrinfo(res);
    return out;
}

CommandOutput HostReader::listeningSockets()
{
    return run({"ss", "-H", "-l", "-t", "-n"});
}

} // namespace fwcheck
