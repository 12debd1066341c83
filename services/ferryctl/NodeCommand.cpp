// ferryctl node trust-master: installs the pull keys of the masters this
// node is registered with into /etc/ferry/pull_authorized_keys, the file the
// node's sshd drop-in (/etc/ssh/sshd_config.d/ferry-node.conf) names as the
// only AuthorizedKeysFile of user ferry.
//
// Why a root step and not the package: a master's pull key is made on that
// master when ferry-master is installed, so no package can carry it. It
// reaches the node inside the registration answer, under a MAC made with the
// node's secret (RegistryProtocol.h), and keyregd keeps it in
// registration.json. keyregd runs as user ferry and must not be able to
// change who may log in as ferry, so the authorized keys file is root's:
// ferry-trust-master.path runs this command (as root) whenever
// registration.json changes; an operator may run it by hand too. The
// confinement (no forwarding, no tty, no rc, the login shell forced, key
// only) is fixed by the sshd drop-in; each key line repeats it
// (restrict,command=) and limits the key to its master's addresses (from=).

#include <netdb.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <iostream>
#include <set>

#include <nlohmann/json.hpp>

#include "Commands.h"
#include "ferry/Files.h"
#include "ferry/NodeConfig.h"
#include "ferry/RegistryProtocol.h"

namespace ferryctl {

namespace {

constexpr const char* kLoginShell = "/usr/sbin/ferry-login";

int usage()
{
    std::cerr << "usage: ferryctl node trust-master   (root: install the registered masters' pull keys)\n";
    return 2;
}

// The addresses sshd will see a master connect from: sshd compares from= with
// the client's address (UseDNS is off by default), so a name is resolved here.
std::vector<std::string> addressesOf(const std::string& host)
{
    addrinfo hints{};
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    addrinfo* res = nullptr;
    const int rc = ::getaddrinfo(host.c_str(), nullptr, &hints, &res);
    if (rc != 0)
        throw std::runtime_error("Failed to resolve master " + host + ": " + ::gai_strerror(rc));
    std::vector<std::string> out;
    for (addrinfo* a = res; a != nullptr; a = a->ai_next) {
        char buf[NI_MAXHOST];
        if (::getnameinfo(a->ai_addr, a->ai_addrlen, buf, sizeof buf, nullptr, 0, NI_NUMERICHOST) == 0 &&
            std::find(out.begin(), out.end(), buf) == out.end())
            out.emplace_back(buf);
    }
    ::freeaddrinfo(res);
    return out;
}

struct TrustedKey {
    std::string key;                   // "type base64"
    std::vector<std::string> from;     // addresses
    std::vector<std::string> masters;  // "host:port" for the comment
};

int trustMaster(const Options& options)
{
    const auto paths = ferry::pathsFromEnvironment();
    const std::string stateFile = paths.stateDir + "/registration.json";
    const std::string target = paths.configDir + "/pull_authorized_keys";
    std::vector<TrustedKey> keys;
    std::vector<std::string> notes;
    if (const auto text = ferry::readFileIfExists(stateFile, 1024 * 1024)) {
        nlohmann::json j;
        try {
            j = nlohmann::json::parse(*text);
        } catch (const std::exception& e) {
            throw std::runtime_error("Failed to parse " + stateFile + ": " + e.what());
        }
        for (const auto& m : j.value("masters", nlohmann::json::array())) {
            const std::string host = m.value("host", std::string());
            const std::string label = host + ":" + std::to_string(m.value("ssh_port", 22));
            const std::string pullKey = m.value("pull_key", std::string());
            if (m.value("state", std::string()) != "accepted") {
                notes.push_back("master " + label + " is not accepting this node: no pull key from it");
                continue;
            }
            if (pullKey.empty()) {
                notes.push_back("master " + label + " sent no pull key (ferry-master older, or no key made)");
                continue;
            }
            std::string key;
            try {
                key = ferry::normalizeKeyLine(pullKey);
            } catch (const std::exception& e) {
                notes.push_back("master " + label + ": unusable pull key in " + stateFile + ": " + e.what());
                continue;
            }
            std::vector<std::string> from;
            try {
                from = addressesOf(host);
            } catch (const std::exception& e) {
                notes.push_back(std::string(e.what()) + ": its pull key is left out");
                continue;
            }
            auto same = std::find_if(keys.begin(), keys.end(), [&](const TrustedKey& k) { return k.key == key; });
            if (same == keys.end())
                keys.push_back({key, from, {label}});
            else {
                for (const auto& a : from)
                    if (std::find(same->from.begin(), same->from.end(), a) == same->from.end())
                        same->from.push_back(a);
                same->masters.push_back(label);
            }
        }
    } else {
        notes.push_back(stateFile + " does not exist yet: this node has not registered (ferryctl register)");
    }

    std::string text =
        "# Written by `ferryctl node trust-master` from " + stateFile +
        "; do not edit (it is rewritten at\n"
        "# every registration). The pull keys of the masters that accepted this node, each limited to\n"
        "# its master's addresses. sshd reads this file for user ferry only\n"
        "# (/etc/ssh/sshd_config.d/ferry-node.conf).\n";
    for (const auto& k : keys) {
        std::string from;
        for (const auto& a : k.from)
            from += (from.empty() ? "" : ",") + a;
        std::string masters;
        for (const auto& m : k.masters)
            masters += (masters.empty() ? "" : ",") + m;
        text += "restrict,command=\"" + std::string(kLoginShell) + "\",from=\"" + from + "\" " + k.key +
                " ferry-pull@" + masters + "\n";
    }
    const auto old = ferry::readFileIfExists(target, 1024 * 1024);
    const bool changed = !old || *old != text;
    if (changed)
        ferry::writeFileAtomic(target, text, 0644);
    if (options.json) {
        nlohmann::json j{{"file", target}, {"changed", changed}, {"notes", notes}};
        j["keys"] = nlohmann::json::array();
        for (const auto& k : keys)
            j["keys"].push_back({{"key", k.key}, {"from", k.from}, {"masters", k.masters}});
        std::cout << j.dump(2) << "\n";
        return 0;
    }
    for (const auto& n : notes)
        std::cout << "note: " << n << "\n";
    std::cout << (changed ? "Wrote " : "Unchanged: ") << target << " (" << keys.size() << " pull key"
              << (keys.size() == 1 ? "" : "s") << ")\n";
    return 0;
}

} // namespace

int nodeCommand(const Options& options)
{
    if (options.args.size() != 1 || options.args[0] != "trust-master")
        return usage();
    if (::geteuid() != 0) {
        std::cerr << "ferryctl node trust-master: only root may change who can log in as ferry\n";
        return 1;
    }
    return trustMaster(options);
}

} // namespace ferryctl
