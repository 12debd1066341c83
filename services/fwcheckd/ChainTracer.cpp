#include "ChainTracer.h"

#include <algorithm>
#include <unordered_set>
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

// What running a chain can end in. "Returned" means control goes back to
// the caller (fall-through or RETURN).
struct PathEnd {
    enum class Kind { Returned, Accept, Drop, Reject, Undecided } kind;
    std::string rule;
    std::string chain;  // the chain holding rule
    bool operator==(const PathEnd& o) const { return kind == o.kind; }
};

// The kernel refuses jumps nested deeper than this; we stop there too.
constexpr int kMaxDepth = 64;
constexpr std::size_t kMaxReasons = 20;

// Walks a chain forward, rule by rule, in a loop: a rule whose match is
// unknown adds what taking it can end in and the walk goes on with the next
// rule (the path that skips it), so the cost and the stack stay the same
// however many unknown rules a chain has. Only jumps and gotos recurse, one
// level per nested chain, at most kMaxDepth deep; each chain is walked once
// per packet (memoised).
class Walker {
public:
    Walker(const ChainMap& chains, const Packet& p) : m_chains(chains), m_packet(p) {}

    const std::vector<PathEnd>& run(const std::string& chainName, int depth)
    {
        if (auto it = m_memo.find(chainName); it != m_memo.end())
            return it->second;
        auto result = walk(chainName, depth);
        return m_memo.emplace(chainName, std::move(result)).first->second;
    }

    std::vector<std::string> reasons;
    // Where the first rule that could not be decided sits.
    std::string firstUnknownChain;
    // Reasons past the first kMaxReasons, counted only: a person reads the
    // first few, and the report stays small.
    std::size_t moreReasons = 0;

private:
    static void add(std::vector<PathEnd>& into, const PathEnd& e)
    {
        if (std::find(into.begin(), into.end(), e) == into.end())
            into.push_back(e);
    }

    void note(const std::string& why)
    {
        if (!m_noted.insert(why).second)
            return;
        if (reasons.size() < kMaxReasons)
            reasons.push_back(why);
        else
            ++moreReasons;
    }

    std::vector<PathEnd> walk(const std::string& chainName, int depth)
    {
        auto it = m_chains.find(chainName);
        if (it == m_chains.end()) {
            note("chain '" + chainName + "' is jumped to but does not exist");
            return {{PathEnd::Kind::Undecided, chainName, chainName}};
        }
        if (depth > kMaxDepth) {
            note("undecided: too deep: chain '" + chainName + "' is reached through more than " +
                 std::to_string(kMaxDepth) + " nested jumps, which the kernel does not allow either");
            return {{PathEnd::Kind::Undecided, chainName, chainName}};
        }
        std::vector<PathEnd> ends;
        const auto& rules = it->second.rules;
        for (std::size_t i = 0; i < rules.size(); ++i) {
            const RuleEval ev = rules[i].evaluate(m_packet);
            if (ev.match == Tri::No || ev.action.kind == Action::Kind::None)
                continue;
            if (ev.match == Tri::Unknown) {
                note(rules[i].text + ": " + ev.unknownWhy);
                if (firstUnknownChain.empty())
                    firstUnknownChain = chainName;
            }
            // Whether the path that takes this rule can go on with the next rule.
            bool continues = false;
            const std::string& text = rules[i].text;
            switch (ev.action.kind) {
            case Action::Kind::Accept: add(ends, {PathEnd::Kind::Accept, text, chainName}); break;
            case Action::Kind::Drop: add(ends, {PathEnd::Kind::Drop, text, chainName}); break;
            case Action::Kind::Reject: add(ends, {PathEnd::Kind::Reject, text, chainName}); break;
            case Action::Kind::Return: add(ends, {PathEnd::Kind::Returned, text, chainName}); break;
            case Action::Kind::Undecided:
                note(text + ": " + ev.action.target);
                if (firstUnknownChain.empty())
                    firstUnknownChain = chainName;
                add(ends, {PathEnd::Kind::Undecided, text, chainName});
                break;
            case Action::Kind::Jump:
                for (const auto& e : run(ev.action.target, depth + 1)) {
                    if (e.kind == PathEnd::Kind::Returned)
                        continues = true;
                    else
                        add(ends, e);
                }
                break;
            case Action::Kind::Goto:
                // A goto replaces this chain's frame: a RETURN there returns
                // to our caller, which is what a Returned end already means.
                for (const auto& e : run(ev.action.target, depth + 1))
                    add(ends, e);
                break;
            case Action::Kind::None: continues = true; break;
            }
            // Unknown: the path that skips the rule goes on as well.
            if (ev.match == Tri::Yes && !continues)
                return ends;
        }
        add(ends, {PathEnd::Kind::Returned, "", chainName});
        return ends;
    }

    const ChainMap& m_chains;
    const Packet& m_packet;
    std::map<std::string, std::vector<PathEnd>> m_memo;
    std::unordered_set<std::string> m_noted;
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
    const auto ends = w.run(start, 0);
    const auto base = chains.find(start);
    const Action::Kind policy = base == chains.end() ? Action::Kind::Accept : base->second.policy;
    struct Final {
        Decision decision;
        std::string rule, chain;
    };
    std::vector<Final> finals;
    for (const auto& e : ends) {
        if (e.kind == PathEnd::Kind::Returned) {
            const Decision d = policy == Action::Kind::Drop     ? Decision::Drop
                               : policy == Action::Kind::Reject ? Decision::Reject
                                                                : Decision::Accept;
            finals.push_back({d, "policy " + std::string(toString(d)) + " of chain " + start, start});
        } else {
            finals.push_back({decisionOf(e.kind), e.rule, e.chain});
        }
    }
    TraceOutcome out;
    out.decision = finals.front().decision;
    out.rule = finals.front().rule;
    out.chain = finals.front().chain;
    for (const auto& f : finals)
        if (f.decision != out.decision || f.decision == Decision::Undecided) {
            out.decision = Decision::Undecided;
            out.reasons = w.reasons;
            if (w.moreReasons > 0)
                out.reasons.push_back("… and " + std::to_string(w.moreReasons) + " more rules that cannot be evaluated");
            if (!w.firstUnknownChain.empty())
                out.chain = w.firstUnknownChain;
            return out;
        }
    return out;
}

} // namespace fwcheck
