#include "ferry/DaemonArgs.h"
#include "ferry/GeneratorArgs.h"

#include <charconv>
#include <cstdio>
#include <cstdlib>
#include <iostream>
#include <sstream>

#ifndef FERRY_VERSION
#error "FERRY_VERSION comes from CMake's project version (common/CMakeLists.txt)"
#endif

namespace ferry {

namespace {

std::vector<std::string> splitNames(const std::string& names)
{
    std::vector<std::string> out;
    std::size_t start = 0;
    while (start <= names.size()) {
        const auto bar = names.find('|', start);
        out.push_back(names.substr(start, bar == std::string::npos ? std::string::npos : bar - start));
        if (bar == std::string::npos)
            break;
        start = bar + 1;
    }
    return out;
}

} // namespace

const char* ferryVersion()
{
    return FERRY_VERSION;
}

ArgParser::ArgParser(std::string program, std::string summary)
    : m_program(std::move(program)), m_summary(std::move(summary))
{}

ArgParser& ArgParser::flag(const std::string& names, const std::string& help, std::function<void()> onSeen)
{
    m_options.push_back({splitNames(names), {}, help, std::move(onSeen), {}});
    return *this;
}

ArgParser& ArgParser::option(const std::string& names, const std::string& metavar, const std::string& help,
                             std::function<void(const std::string&)> onValue)
{
    m_options.push_back({splitNames(names), metavar, help, {}, std::move(onValue)});
    return *this;
}

ArgParser& ArgParser::daemonOptions(DaemonArgs& args)
{
    const auto defaultIdle = std::chrono::duration_cast<std::chrono::seconds>(args.idleTimeout).count();
    flag("-v|--verbose", "more logging (twice: trace)", [&args] { ++args.verbosity; });
    option("--idle-timeout", "SECONDS",
           "exit after this long without work (0: never; default " + std::to_string(defaultIdle) + ")",
           [&args](const std::string& v) {
               args.idleTimeout = std::chrono::seconds(parseNumberArg("--idle-timeout", v, 0, 86400));
           });
    return *this;
}

ArgParser& ArgParser::operands(const std::string& synopsis, std::size_t min, std::size_t max,
                               std::function<void(const std::vector<std::string>&)> onOperands)
{
    m_operandSynopsis = synopsis;
    m_minOperands = min;
    m_maxOperands = max;
    m_onOperands = std::move(onOperands);
    return *this;
}

ArgParser& ArgParser::optionsEndAtFirstOperand()
{
    m_optionsEndAtFirstOperand = true;
    return *this;
}

ArgParser& ArgParser::otherwise(std::function<bool(const std::string&)> handler)
{
    m_otherwise = std::move(handler);
    return *this;
}

ArgParser& ArgParser::epilog(std::string text)
{
    m_epilog = std::move(text);
    return *this;
}

const ArgParser::Option* ArgParser::find(const std::string& name) const
{
    for (const auto& o : m_options)
        for (const auto& n : o.names)
            if (n == name)
                return &o;
    return nullptr;
}

std::string ArgParser::usageLine() const
{
    std::string line = "Usage: " + m_program + " [OPTIONS]";
    if (!m_operandSynopsis.empty())
        line += " " + m_operandSynopsis;
    return line;
}

std::string ArgParser::help() const
{
    std::ostringstream out;
    out << m_program << " " << ferryVersion() << ": " << m_summary << "\n\n" << usageLine() << "\n\nOptions:\n";
    auto row = [&out](std::string left, const std::string& text) {
        left = "  " + left;
        if (left.size() < 30)
            out << left << std::string(30 - left.size(), ' ') << text << "\n";
        else
            out << left << "\n" << std::string(30, ' ') << text << "\n";
    };
    row("-h, --help", "show this help and exit");
    row("    --version", "show the version and exit");
    for (const auto& o : m_options) {
        std::string left;
        for (const auto& n : o.names)
            left += (left.empty() ? "" : ", ") + n;
        if (o.names.front().rfind("--", 0) == 0)
            left = "    " + left;
        if (!o.metavar.empty())
            left += " " + o.metavar;
        row(left, o.help);
    }
    if (!m_epilog.empty())
        out << "\n" << m_epilog << (m_epilog.back() == '\n' ? "" : "\n");
    return out.str();
}

void ArgParser::parse(int argc, char* argv[]) const
{
    std::vector<std::string> args;
    for (int i = 1; i < argc; ++i)
        args.emplace_back(argv[i]);
    parse(args);
}

void ArgParser::parse(const std::vector<std::string>& args) const
{
    auto refuse = [this](const std::string& why) {
        throw UsageError("Failed to parse the command line: " + why + " (" + usageLine() + "; see --help)");
    };
    std::vector<std::string> operands;
    bool optionsEnded = false;
    for (std::size_t i = 0; i < args.size(); ++i) {
        const std::string& a = args[i];
        if (optionsEnded || a.empty() || a[0] != '-' || a == "-") {
            if (!optionsEnded && m_otherwise && m_otherwise(a))
                continue;
            operands.push_back(a);
            optionsEnded = optionsEnded || m_optionsEndAtFirstOperand;
            continue;
        }
        if (a == "--") {
            optionsEnded = true;
            continue;
        }
        if (a == "-h" || a == "--help") {
            std::cout << help() << std::flush;
            std::exit(EXIT_SUCCESS);
        }
        if (a == "--version") {
            std::cout << m_program << " " << ferryVersion() << "\n" << std::flush;
            std::exit(EXIT_SUCCESS);
        }
        const auto eq = a.rfind("--", 0) == 0 ? a.find('=') : std::string::npos;
        const std::string name = a.substr(0, eq);
        const Option* o = find(name);
        if (o == nullptr) {
            if (m_otherwise && m_otherwise(a))
                continue;
            refuse("unknown option '" + a + "'");
        }
        if (o->metavar.empty()) {
            if (eq != std::string::npos)
                refuse(name + " takes no value, got '" + a + "'");
            o->onSeen();
        } else if (eq != std::string::npos) {
            o->onValue(a.substr(eq + 1));
        } else if (i + 1 < args.size()) {
            o->onValue(args[++i]);
        } else {
            refuse(name + " needs a value (" + o->metavar + ")");
        }
    }
    if (operands.size() < m_minOperands || operands.size() > m_maxOperands) {
        if (m_maxOperands == 0)
            refuse("unexpected argument '" + operands.front() + "'");
        refuse("expected " +
               (m_minOperands == m_maxOperands
                    ? std::to_string(m_minOperands)
                    : std::to_string(m_minOperands) + " to " + std::to_string(m_maxOperands)) +
               " operands (" + m_operandSynopsis + "), got " + std::to_string(operands.size()));
    }
    if (m_onOperands)
        m_onOperands(operands);
}

long long parseNumberArg(const std::string& flag, const std::string& value, long long min, long long max)
{
    long long v = 0;
    const auto [p, ec] = std::from_chars(value.data(), value.data() + value.size(), v);
    if (value.empty() || ec != std::errc{} || p != value.data() + value.size() || v < min || v > max)
        throw ConfigError("Failed to parse " + flag + " '" + value + "': expected a number from " +
                          std::to_string(min) + " to " + std::to_string(max));
    return v;
}

DaemonArgs parseDaemonArgs(int argc, char* argv[], std::chrono::milliseconds defaultIdle, const std::string& usage,
                           const std::function<bool(const std::string&)>& extra)
{
    DaemonArgs a;
    a.idleTimeout = defaultIdle;
    ArgParser parser(usage.substr(0, usage.find(' ')), "a Ferry daemon");
    parser.daemonOptions(a).epilog("Usage in full: " + usage);
    if (extra)
        parser.otherwise(extra);
    parser.parse(argc, argv);
    return a;
}

std::string parseGeneratorArgs(const std::string& name, const std::string& summary, int argc, char* argv[])
{
    std::string normalDir;
    ArgParser(name, summary)
        .operands("NORMAL-DIR [EARLY-DIR LATE-DIR]", 1, 3,
                  [&](const std::vector<std::string>& dirs) {
                      if (dirs.size() == 2)
                          throw UsageError("expected 1 or 3 directory arguments, got 2");
                      normalDir = dirs[0];
                  })
        .parse(argc, argv);
    return normalDir;
}

} // namespace ferry
