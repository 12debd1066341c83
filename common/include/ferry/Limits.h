#pragma once
// Size limits that the configuration and the wire must agree on. They live
// in the base layer so that config validation (NodeConfig) and the frame
// codec (Wire.h, Session.h) read the same numbers: a node configured above
// what a receiver accepts would fail every session and lose data to the
// spool bound.

#include <cstdint>

namespace ferry {

// The largest frame payload a reader accepts by default, and so the largest
// batch frame on any side of a session.
constexpr std::uint32_t kDefaultMaxFrame = 4 * 1024 * 1024;
constexpr std::uint32_t kMaxBatchFrame = kDefaultMaxFrame;
// What `transport: batch_bytes` may ask for: the frame less room for the
// per-record framing, so that a full batch still encodes within the frame.
constexpr std::uint32_t kMaxBatchBytes = kMaxBatchFrame - 64 * 1024;

// The longest period floor a master may impose (one day): the registration
// answer, registry.yml and the push session's Policy answer are all bounded
// by it, so a master cannot silence a node for longer.
constexpr std::uint32_t kMaxPolicySeconds = 86400;

} // namespace ferry
