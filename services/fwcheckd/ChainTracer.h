#pragma once
// A backend-neutral model of netfilter chains and the walk a packet takes
// through them. iptables-save text and nft JSON are both lowered into it, so
// jumps, gotos, RETURN, policies and "unknown match" branching are written
// once.
//
// An unknown match is followed both ways (matched and not matched). When
// every path ends in the same verdict the answer is still exact; otherwise
// the result is Undecided and names the rules that made it so.

#include <functional>
#include <map>
#include <string>
#include <vector>

#include "Packet.h"

namespace fwcheck {

enum class Decision { Accept, Drop, Reject, Undecided };
const char* toString(Decision d);

struct Action {
    enum class Kind { None, Accept, Drop, Reject, Return, Jump, Goto, Undecided };
    Kind kind = Kind::None;
    std::string target;  // chain for Jump/Goto, reason for Undecided
};

struct RuleEval {
    Tri match = Tri::No;
    Action action;
    std::string unknownWhy;  // set when match is Unknown
};

struct TraceRule {
    std::string text;  // how the rule is shown to a person
    std::function<RuleEval(const Packet&)> evaluate;
};

struct TraceChain {
    std::string name;
    Action::Kind policy = Action::Kind::Accept;  // for base chains
    std::vector<TraceRule> rules;
};

using ChainMap = std::map<std::string, TraceChain>;

struct TraceOutcome {
    Decision decision = Decision::Accept;
    std::string rule;                  // the rule (or policy) that decided
    std::string chain;                 // the chain holding that rule
    std::vector<std::string> reasons;  // why undecided: rules not evaluable
};

// Walks base chain `start` of `chains` for packet p.
TraceOutcome traceChain(const ChainMap& chains, const std::string& start, const Packet& p);

} // namespace fwcheck
