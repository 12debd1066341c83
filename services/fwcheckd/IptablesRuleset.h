#pragma once
// iptables-save / ip6tables-save text (either backend) lowered into the
// tracer's chains. Lines that cannot be read become rules that are
// "undecided" rather than being skipped, and are listed in problems().

#include <string>
#include <vector>

#include "Stage.h"

namespace fwcheck {

class IptablesRuleset {
public:
    // backend names the source in messages ("iptables-legacy", "iptables-nft").
    IptablesRuleset(std::string backend, Family family, const std::string& saveText);

    // Base chains on the local-input path, in no particular order.
    std::vector<Stage> stages() const;
    const std::vector<std::string>& problems() const { return m_problems; }
    // Tables that have a rule or a non-ACCEPT policy.
    bool empty() const { return m_ruleCount == 0 && !m_restrictivePolicy; }
    std::vector<std::string> tableNames() const;
    std::size_t ruleCount() const { return m_ruleCount; }

private:
    void parseRule(const std::string& table, const std::string& line, int lineNo);

    std::string m_backend;
    Family m_family;
    std::vector<std::pair<std::string, std::shared_ptr<ChainMap>>> m_tables;
    std::vector<std::string> m_problems;
    std::size_t m_ruleCount = 0;
    bool m_restrictivePolicy = false;
    Tool m_tool = Tool::Iptables;
};

// Splits a line as iptables-save quotes it ("a b" stays one word).
std::vector<std::string> splitSaveLine(const std::string& line);

} // namespace fwcheck
