// libFuzzer target: `nft -j list ruleset` JSON (NftRuleset) and the netdev
// ingress devices read from `nft list ruleset` text (parseIngressDevices),
// then a trace of the master's SYN through every stage of both families.

#include "ChainTracer.h"
#include "FuzzSupport.h"
#include "NftRuleset.h"
#include "ferry/Error.h"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size)
{
    const std::string text(fuzz::view(data, size));
    const auto devices = fwcheck::parseIngressDevices(text);
    try {
        const fwcheck::NftRuleset rules(text, {}, devices);
        (void)rules.problems();
        for (const auto family : {fwcheck::Family::V4, fwcheck::Family::V6}) {
            fwcheck::Packet p;
            const bool v6 = family == fwcheck::Family::V6;
            p.source = *fwcheck::Address::parse(v6 ? "2001:db8::1" : "192.0.2.1");
            p.destination = *fwcheck::Address::parse(v6 ? "2001:db8::2" : "192.0.2.2");
            p.inInterface = "eth0";
            for (const auto& stage : rules.stages(family))
                if (stage.chains)
                    (void)fwcheck::traceChain(*stage.chains, stage.chain, p);
        }
    } catch (const ferry::Error&) {
    }
    return 0;
}
