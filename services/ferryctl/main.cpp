// ferryctl: dispatches to one command group; each group talks to its daemon
// over the system bus through the generated proxies.

#include <cstdlib>
#include <cstring>
#include <iostream>
#include <string_view>
#include <vector>

#include "Commands.h"
#include "ferry/DaemonArgs.h"

namespace {

struct Command {
    std::string_view name;
    int (*run)(const ferryctl::Options&);
    std::string_view help;
};

constexpr Command kCommands[] = {
    {"status", ferryctl::statusCommand, "show transport state (push, pull fallback, registration)"},
    {"push", ferryctl::pushCommand, "run one push cycle now and wait for its result"},
    {"register", ferryctl::registerCommand, "send this node's key to the masters now"},
    {"secret", ferryctl::secretCommand, "print this node's secret (root only)"},
    {"doctor", ferryctl::doctorCommand, "can the master reach this node's sshd? findings and fixes"},
    {"vpn", ferryctl::vpnCommand, "VPN port forwarding: status | lan on|off | host-control on|off"},
    {"node", ferryctl::nodeCommand, "node side, root: trust-master (install the masters' pull keys)"},
    {"master", ferryctl::masterCommand,
     "master side: nodes | show NODE | pull NODE|--all | add-node NAME | accept | decline | revoke NAME"},
};

std::string commandList()
{
    std::string out = "Commands:\n";
    for (const auto& c : kCommands)
        out += "  " + std::string(c.name) + std::string(10 - c.name.size(), ' ') + std::string(c.help) + "\n";
    return out;
}

} // namespace

int main(int argc, char* argv[])
{
    ferryctl::Options options;
    std::string_view command;
    std::vector<std::string> operands;
    ferry::ArgParser parser("ferryctl", "controls Ferry's daemons on this node or master");
    parser.flag("--json", "print machine-readable JSON instead of text", [&] { options.json = true; })
        .operands("COMMAND [ARGS…]", 0, 1000, [&](const std::vector<std::string>& o) { operands = o; })
        .optionsEndAtFirstOperand()
        .epilog(commandList());
    try {
        parser.parse(argc, argv);
    } catch (const std::exception& e) {
        std::cerr << "ferryctl: " << e.what() << "\n";
        return 2;
    }
    for (const auto& a : operands) {
        // --json is also taken after the command, as it always was.
        if (a == "--json")
            options.json = true;
        else if (command.empty())
            command = a;
        else
            options.args.emplace_back(a);
    }
    if (command.empty()) {
        std::cerr << parser.usageLine() << "\n\n" << commandList();
        return 2;
    }
    for (const auto& c : kCommands) {
        if (c.name == command) {
            try {
                return c.run(options);
            } catch (const std::exception& e) {
                std::cerr << "ferryctl " << command << ": " << e.what() << "\n";
                return EXIT_FAILURE;
            }
        }
    }
    std::cerr << "ferryctl: unknown command '" << command << "'\n" << commandList();
    return 2;
}
