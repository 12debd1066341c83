#pragma once
// The one command-line parser of every Ferry daemon and tool. Each program
// declares its switches, options and operands; every program then takes
// -h/--help (a usage text built from those declarations) and --version (the
// project version from CMake), and refuses anything undeclared with an
// error that quotes the argument and the usage line.
//
// Options take "--name VALUE" or "--name=VALUE". "--" ends the options.
// parse() prints --help / --version to stdout and exits 0 there, as getopt
// tools do: call it first in main(), before anything needs cleaning up.

#include <chrono>
#include <cstddef>
#include <functional>
#include <string>
#include <vector>

#include "ferry/Error.h"

namespace ferry {

// A command line that cannot be used: names the argument and the usage line.
class UsageError : public ConfigError {
public:
    using ConfigError::ConfigError;
};

// "0.1.0": the project version the binaries were built from.
const char* ferryVersion();

struct DaemonArgs {
    int verbosity = 0;
    std::chrono::milliseconds idleTimeout{30000};
};

class ArgParser {
public:
    // program: the binary's name; summary: one sentence for --help.
    ArgParser(std::string program, std::string summary);

    // A switch. names: "-v|--verbose" or "--check".
    ArgParser& flag(const std::string& names, const std::string& help, std::function<void()> onSeen);
    // An option with a value, shown as "--name METAVAR" in --help.
    ArgParser& option(const std::string& names, const std::string& metavar, const std::string& help,
                      std::function<void(const std::string&)> onValue);
    // -v/--verbose (repeatable) and --idle-timeout SECONDS (0: never).
    ArgParser& daemonOptions(DaemonArgs& args);
    // Operands (arguments that are not options), between min and max of
    // them, handed over together after parsing. synopsis is how --help shows them.
    ArgParser& operands(const std::string& synopsis, std::size_t min, std::size_t max,
                        std::function<void(const std::vector<std::string>&)> onOperands);
    // From the first operand on, everything is an operand even if it starts
    // with '-' (a command and its own arguments, as ferryctl takes them).
    ArgParser& optionsEndAtFirstOperand();
    // Arguments nobody declared go here first (returns true when taken):
    // for callers that still match raw arguments themselves.
    ArgParser& otherwise(std::function<bool(const std::string&)> handler);
    // Extra text at the end of --help (environment, examples).
    ArgParser& epilog(std::string text);

    // Parses argv[1..]: calls the handlers in order, prints --help or
    // --version and exits 0, throws UsageError (or what a handler threw)
    // for an argument that cannot be used.
    void parse(int argc, char* argv[]) const;
    void parse(const std::vector<std::string>& args) const;

    std::string usageLine() const;
    std::string help() const;

private:
    struct Option {
        std::vector<std::string> names;
        std::string metavar; // empty for a switch
        std::string help;
        std::function<void()> onSeen;
        std::function<void(const std::string&)> onValue;
    };
    const Option* find(const std::string& name) const;

    std::string m_program;
    std::string m_summary;
    std::string m_epilog;
    std::vector<Option> m_options;
    std::string m_operandSynopsis;
    std::size_t m_minOperands = 0;
    std::size_t m_maxOperands = 0;
    std::function<void(const std::vector<std::string>&)> m_onOperands;
    bool m_optionsEndAtFirstOperand = false;
    std::function<bool(const std::string&)> m_otherwise;
};

// A whole-number flag value in [min, max]; ConfigError naming the flag otherwise.
long long parseNumberArg(const std::string& flag, const std::string& value, long long min, long long max);

// The daemon options alone, plus raw arguments for `extra` (kept for the
// daemons that match their own arguments that way). usage's first word is
// the program name.
DaemonArgs parseDaemonArgs(int argc, char* argv[], std::chrono::milliseconds defaultIdle, const std::string& usage,
                           const std::function<bool(const std::string&)>& extra = {});

} // namespace ferry
