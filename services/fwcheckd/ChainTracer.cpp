#include "ChainTracer.h"

#include <algorithm>
#include <utility>

namespace fwcheck {

const char* toString(Decision d)
{
    switch (d) {
    case Decision::Accept: return "accept";
    case Decision::Drop: return "drop";
    case Decision::Reject: return "reject";
    case Decision::Undecided: return "undecided";
    }
    return "undecided";
}

namespace {

// What running a chain from some rule can end in. "Returned" means control
// goes back to the caller (fall-through or RETURN).
struct PathEnd {
    enum class Kind { Returned, Accept, Drop, Reject, Undecided } kind;
    std::string rule;
    bool operator==(const PathEnd& o) const { return kind == o.kind; }
};

// The kernel refuses rule sets deeper than this; we refuse to recurse past it.
constexpr int kMaxDepth = 64;

class Walker {
public:
    Walker(const ChainMap& chains, const Packet& p) : m_chains(chains), m_packet(p) {}

    std::vector<PathEnd> run(const std::string& chain, std::size_t from, int depth)
    {
        const auto key = std::make_pair(chain, from);
        if (auto it = m_memo.find(key); it != m_memo.end())
            return it->second;
        auto result = compute(chain, from, depth);
        m_memo.emplace(key, result);
        return result;
    }

    std::vector<std::string> reasons;

private:
    static void add(std::vector<PathEnd>& into, const std::vector<PathEnd>& more)
    {
        for (const auto& e : more)
            if (std::find(into.begin(), into.end(), e) == into.end())
                into.push_back(e);
    }

    void note(const std::string& why)
    {
        if (std::find(reasons.begin(), reasons.end(), why) == reasons.end())
            reasons.push_back(why);
    }

    std::vector<PathEnd> compute(const std::string& chainName, std::size_t from, int depth)
    {
        auto it = m_chains.find(chainName);
        if (it == m_chains.end()) {
            note("chain '" + chainName + "' is jumped to but does not exist");
            return {{PathEnd::Kind::Undecided, chainName}};
        }
        if (depth > kMaxDepth) {
            note("chain '" + chainName + "' is nested more than 64 levels deep");
            return {{PathEnd::Kind::Undecided, chainName}};
        }
        const auto& rules = it->second.rules;
        for (std::size_t i = from; i < rules.size(); ++i) {
            const RuleEval ev = rules[i].evaluate(m_packet);
            if (ev.match == Tri::No || ev.action.kind == Action::Kind::None)
                continue;
            auto taken = apply(chainName, i, rules[i].text, ev.action, depth);
            if (ev.match == Tri::Yes)
                return taken;
            // Unknown: both the matched and the not-matched path are possible.
            note(rules[i].text + ": " + ev.unknownWhy);
            auto skipped = run(chainName, i + 1, depth);
            add(taken, skipped);
            return taken;
        }
        return {{PathEnd::Kind::Returned, ""}};
    }

    std::vector<PathEnd> apply(const std::string& chainName, std::size_t index, const std::string& text,
                               const Action& a, int depth)
    {
        switch (a.kind) {
        case Action::Kind::Accept: return {{PathEnd::Kind::Accept, text}};
        case Action::Kind::Drop: return {{PathEnd::Kind::Drop, text}};
        case Action::Kind::Reject: return {{PathEnd::Kind::Reject, text}};
        case Action::Kind::Return: return {{PathEnd::Kind::Returned, text}};
        case Action::Kind::Undecided:
            note(text + ": " + a.target);
            return {{PathEnd::Kind::Undecided, text}};
        case Action::Kind::Jump: {
            std::vector<PathEnd> out;
            for (const auto& e : run(a.target, 0, depth + 1)) {
                if (e.kind == PathEnd::Kind::Returned)
                    add(out, run(chainName, index + 1, depth));
                else
                    add(out, {e});
            }
            return out;
        }
        case Action::Kind::Goto:
            // A goto replaces this chain's frame: a RETURN there returns to
            // our caller, which is what a Returned end already means.
            return run(a.target, 0, depth + 1);
        case Action::Kind::None: break;
        }
        return run(chainName, index + 1, depth);
    }

    const ChainMap& m_chains;
    const Packet& m_packet;
    std::map<std::pair<std::string, std::size_t>, std::vector<PathEnd>> m_memo;
};

Decision decisionOf(PathEnd::Kind k)
{
    switch (k) {
    case PathEnd::Kind::Accept: return Decision::Accept;
    case PathEnd::Kind::Drop: return Decision::Drop;
    case PathEnd::Kind::Reject: return Decision::Reject;
    default: return Decision::Undecided;
    }
}

} // namespace

TraceOutcome traceChain(const ChainMap& chains, const std::string& start, const Packet& p)
{
    Walker w(chains, p);
    auto ends = w.run(start, 0, 0);
    const auto base = chains.find(start);
    const Action::Kind policy = base == chains.end() ? Action::Kind::Accept : base->second.policy;
    std::vector<std::pair<Decision, std::string>> finals;
    for (const auto& e : ends) {
        if (e.kind == PathEnd::Kind::Returned) {
            const Decision d = policy == Action::Kind::Drop     ? Decision::Drop
                               : policy == Action::Kind::Reject ? Decision::Reject
                                                                : Decision::Accept;
            finals.emplace_back(d, "policy " + std::string(toString(d)) + " of chain " + start);
        } else {
            finals.emplace_back(decisionOf(e.kind), e.rule);
        }
    }
    TraceOutcome out;
    out.decision = finals.front().first;
    out.rule = finals.front().second;
    for (const auto& f : finals)
        if (f.first != out.decision || f.first == Decision::Undecided) {
            out.decision = Decision::Undecided;
            out.reasons = w.reasons;
            return out;
        }
    return out;
}

} // namespace fwcheck
