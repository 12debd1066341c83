// ferryctl: dispatches to one command group; each group talks to its daemon
// over the system bus through the generated proxies.

#include <cstdlib>
#include <cstring>
#include <iostream>
#include <string_view>

#include "Commands.h"

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
    {"master", ferryctl::masterCommand, "master side: nodes | show NODE | add-node NAME | accept | decline | revoke NAME"},
};

void usage(std::ostream& out)
{
    out << "Usage: ferryctl [--json] COMMAND [ARGS…]\n\nCommands:\n";
    for (const auto& c : kCommands)
        out << "  " << c.name << std::string(10 - c.name.size(), ' ') << c.help << "\n";
}

} // namespace

int main(int argc, char* argv[])
{
    ferryctl::Options options;
    std::string_view command;
    for (int i = 1; i < argc; ++i) {
        std::string_view a = argv[i];
        if (a == "--json")
            options.json = true;
        else if (a == "-h" || a == "--help") {
            usage(std::cout);
            return EXIT_SUCCESS;
        } else if (command.empty())
            command = a;
        else
            options.args.emplace_back(a);
    }
    if (command.empty()) {
        usage(std::cerr);
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
    std::cerr << "ferryctl: unknown command '" << command << "'\n";
    usage(std::cerr);
    return 2;
}
