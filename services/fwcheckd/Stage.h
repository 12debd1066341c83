#pragma once
// One base chain the kernel runs a packet through on its way to a local
// socket, from whichever backend (iptables legacy, iptables-nft, native nft).

#include <memory>
#include <string>

#include "ChainTracer.h"

namespace fwcheck {

enum class Tool { Iptables, Ufw, Firewalld, Docker, Nft };
const char* toString(Tool t);

struct Stage {
    std::string backend;   // "iptables-legacy", "iptables-nft", "nft"
    Family family = Family::V4;
    std::string table;     // "filter", or "inet filter" for nft
    std::string chain;     // base chain name
    int hookOrder = 0;     // 0 ingress, 1 prerouting, 2 input
    int priority = 0;
    std::shared_ptr<const ChainMap> chains;
    // Which chain families exist tells which tool manages the rules.
    Tool tool = Tool::Iptables;
};

} // namespace fwcheck
