// libFuzzer target: iptables-save / ip6tables-save text as fwcheckd reads it
// (IptablesRuleset), then a trace of the master's SYN through every chain it
// built, so the parsed matches are evaluated too.

#include "ChainTracer.h"
#include "FuzzSupport.h"
#include "IptablesRuleset.h"
#include "ferry/Error.h"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size)
{
    const std::string text(fuzz::view(data, size));
    (void)fwcheck::splitSaveLine(text.substr(0, text.find('\n')));
    const bool v6 = size > 0 && (data[0] & 1) != 0;
    try {
        const fwcheck::IptablesRuleset rules("iptables-nft", v6 ? fwcheck::Family::V6 : fwcheck::Family::V4, text);
        (void)rules.problems();
        (void)rules.tableNames();
        fwcheck::Packet p;
        p.source = *fwcheck::Address::parse(v6 ? "2001:db8::1" : "192.0.2.1");
        p.destination = *fwcheck::Address::parse(v6 ? "2001:db8::2" : "192.0.2.2");
        p.inInterface = "eth0";
        for (const auto& stage : rules.stages())
            if (stage.chains)
                (void)fwcheck::traceChain(*stage.chains, stage.chain, p);
    } catch (const ferry::Error&) {
    }
    return 0;
}
