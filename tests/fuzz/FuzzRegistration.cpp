// libFuzzer target: the registration messages registryd reads from any
// address on TCP 50010 (Request) and keyregd reads back (Response), the key
// line normaliser and the node-name check they use.

#include "FuzzSupport.h"
#include "ferry/Error.h"
#include "ferry/RegistryProtocol.h"
#include "ferry/Wire.h"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size)
{
    const auto in = fuzz::view(data, size);
    try {
        const auto request = ferry::decodeRegistrationRequest(in, "fuzz");
        (void)ferry::verifyRegistrationRequest(request, "0123456789abcdef0123456789abcdef");
        // What was decoded re-encodes and decodes to the same fields.
        const auto again = ferry::decodeRegistrationRequest(
            ferry::encodeRegistrationRequest(request.request, "secret"), "fuzz-reencoded");
        if (again.request.node != request.request.node || again.request.publicKey != request.request.publicKey)
            __builtin_trap();
    } catch (const ferry::Error&) {
    }
    try {
        const auto response = ferry::decodeRegistrationResponse(in, "fuzz");
        (void)ferry::verifyRegistrationResponse(response, "0123456789abcdef0123456789abcdef");
    } catch (const ferry::Error&) {
    }
    try {
        (void)ferry::normalizeKeyLine(in);
    } catch (const ferry::Error&) {
    }
    (void)ferry::isValidNodeName(in);
    // The same bytes as a framed message, as the server reads them.
    try {
        ferry::Frame f;
        std::size_t used = 0;
        if (ferry::parseFrame(in, ferry::kMaxRegistryFrame, f, used))
            (void)ferry::decodeRegistrationRequest(f.payload, "fuzz-frame");
    } catch (const ferry::Error&) {
    }
    return 0;
}
