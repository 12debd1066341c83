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

// Batches a node sends ahead of their Acks (Session.h). A week of one
// node's samples at the default 1 MiB batches is 7 frames: with 8 in flight
// the node sends them all without waiting for an Ack, and deletes what the
// Acks confirm while the master stores the rest. The master reads no more
// than two groups of 8 ahead of its commits, so a larger window would only
// wait in the transport.
constexpr unsigned kSessionWindow = 8;

// The longest period floor a master may impose (one day): the registration
// answer, registry.yml and the push session's Policy answer are all bounded
// by it, so a master cannot silence a node for longer.
constexpr std::uint32_t kMaxPolicySeconds = 86400;

} // namespace ferry
