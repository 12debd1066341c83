// libFuzzer target: /etc/hosts.allow and /etc/hosts.deny as fwcheckd reads
// them (HostsAccess), decided for a master given by address and by name.
// Input: allow NUL deny.

#include "FuzzSupport.h"
#include "HostsAccess.h"
#include "ferry/Error.h"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size)
{
    const auto parts = fuzz::splitNul(fuzz::view(data, size), 2);
    try {
        const fwcheck::HostsAccess access({"/etc/hosts.allow", parts[0]},
                                          {"/etc/hosts.deny", parts.size() > 1 ? std::optional(parts[1]) : std::nullopt});
        (void)access.problems();
        fwcheck::HostsClient client;
        client.address = *fwcheck::Address::parse("192.0.2.1");
        client.server = fwcheck::Address::parse("192.0.2.2");
        (void)access.decide(client);
        client.name = "master.example.org";
        (void)access.decide(client);
        client.address = *fwcheck::Address::parse("2001:db8::1");
        client.server = fwcheck::Address::parse("2001:db8::2");
        (void)access.decide(client);
    } catch (const ferry::Error&) {
    }
    return 0;
}
