// ferry-login: the login shell of the node's restricted user `ferry`.
// main() wires: sane fds → journal logging → what was asked → LoginShell.
#include <fcntl.h>
#include <signal.h>
#include <pwd.h>
#include <unistd.h>

#include <cerrno>
#include <climits>
#include <cstdlib>
#include <cstring>

#include <spdlog/sinks/systemd_sink.h>
#include <spdlog/spdlog.h>

#include "LoginShell.h"
#include "ferry/Error.h"
#include "ferry/Log.h"
#include "ferry/PullProtocol.h"
#include "ferry/StandardFds.h"

namespace {

// Journal only: stderr goes to the SSH client, which is told nothing but the
// fixed messages. A failing journal write must not reach stderr either.
void initJournalLogging()
{
    auto sink = std::make_shared<spdlog::sinks::systemd_sink_st>("ferry-login");
    auto logger = std::make_shared<spdlog::logger>("ferry-login", sink);
    logger->set_pattern("%v");
    logger->set_error_handler([](const std::string&) {});
    logger->set_level(spdlog::level::info);
    spdlog::set_default_logger(logger);
}

std::string selfPath()
{
    char buf[PATH_MAX];
    const ssize_t n = ::readlink("/proc/self/exe", buf, sizeof buf - 1);
    return n > 0 ? std::string(buf, static_cast<std::size_t>(n)) : std::string();
}

// "192.0.2.7" from SSH_CLIENT="192.0.2.7 40112 22"; sshd sets it, but it is
// still only ever logged escaped.
std::string clientAddress()
{
    const char* value = std::getenv("SSH_CLIENT");
    if (value == nullptr)
        return "a local caller";
    std::string text = value;
    text = text.substr(0, text.find(' '));
    return ferry::escapeForLog(text, 64);
}

} // namespace

int main(int argc, char* argv[]) try {
    ferry::ensureStandardFds();
    initJournalLogging();
    // A master that hangs up must become a logged error, not a silent death.
    ::signal(SIGPIPE, SIG_IGN);

    pullshell::ShellContext context;
    for (int i = 1; i < argc; ++i)
        context.invocation.args.emplace_back(argv[i]);
    if (const char* original = std::getenv("SSH_ORIGINAL_COMMAND"))
        context.invocation.originalCommand = original;
    context.invocation.selfPath = selfPath();
    context.client = clientAddress();
    context.onTerminal = ::isatty(0) == 1 || ::isatty(1) == 1;

    // Paths come from the system, never from the environment a client might
    // influence: the configuration directory is built in, the state
    // directory is the account's home (/var/lib/ferry for user ferry).
    context.paths.configDir = FERRY_SYSCONFDIR;
    const passwd* user = ::getpwuid(::getuid());
    if (user == nullptr || user->pw_dir == nullptr || user->pw_dir[0] != '/')
        throw ferry::Error("Failed to find the home directory of uid " + std::to_string(::getuid()));
    context.paths.stateDir = user->pw_dir;

    pullshell::PushNotifier notifier{std::chrono::seconds(5)};
    pullshell::LoginShell shell{std::move(context), notifier};
    return shell.run(0, 1, 2);
} catch (const std::exception& e) {
    ferry::logFatal(e);
    const char* message = pullshell::kFailureMessage;
    [[maybe_unused]] const auto n = ::write(2, message, std::strlen(message));
    return EXIT_FAILURE;
}
