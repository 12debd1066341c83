// libFuzzer target: every decoder a peer's bytes reach (frame parser, Hello,
// Auth, AuthOk, Batch, Ack, Error). Anything but ProtocolError escaping, a
// crash, or a sanitizer report is a bug.

#include <cstddef>
#include <cstdint>
#include <string_view>

#include "ferry/Error.h"
#include "ferry/Wire.h"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size)
{
    const std::string_view in(reinterpret_cast<const char*>(data), size);
    try {
        ferry::Frame f;
        std::size_t used = 0;
        if (ferry::parseFrame(in, 1 << 20, f, used)) {
            switch (f.type) {
            case ferry::MessageType::Hello: ferry::decodeHello(f.payload, "fuzz"); break;
            case ferry::MessageType::Auth: ferry::decodeAuth(f.payload, "fuzz"); break;
            case ferry::MessageType::AuthOk: ferry::decodeAuthOk(f.payload, "fuzz"); break;
            case ferry::MessageType::Batch: ferry::decodeBatch(f.payload, "fuzz"); break;
            case ferry::MessageType::Ack: ferry::decodeAck(f.payload, "fuzz"); break;
            case ferry::MessageType::Error: ferry::decodeError(f.payload, "fuzz"); break;
            default: break;
            }
        }
        // The payload decoders also see raw bytes directly.
        ferry::decodeBatch(in, "fuzz");
    } catch (const ferry::ProtocolError&) {
    }
    return 0;
}
