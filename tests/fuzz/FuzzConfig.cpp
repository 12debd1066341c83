// libFuzzer target: the YAML loaders an operator's files go through —
// /etc/ferry/ferry.yml (parseNodeConfig), plugins.yml (parsePluginsConfig),
// master addresses (parseMasterAddress) and pulld.yml (parsePulldConfig).
// A bad file must end in ConfigError, never a crash or another exception.

#include "FuzzSupport.h"
#include "PulldConfig.h"
#include "ferry/Error.h"
#include "ferry/NodeConfig.h"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size)
{
    const std::string text(fuzz::view(data, size));
    try {
        (void)ferry::parseNodeConfig("ferry.yml", text);
    } catch (const ferry::Error&) {
    }
    try {
        (void)ferry::parsePluginsConfig("plugins.yml", text);
    } catch (const ferry::Error&) {
    }
    try {
        (void)ferry::parseMasterAddress(text, 22);
    } catch (const ferry::Error&) {
    }
    try {
        (void)pulld::parsePulldConfig(ferry::Paths{}, "pulld.yml", text);
    } catch (const ferry::Error&) {
    }
    return 0;
}
