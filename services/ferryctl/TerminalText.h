#pragma once
// Text that came from a peer (a registry's refusal, a reason relayed by
// keyregd) before it reaches the operator's terminal: control characters,
// C1 controls and bytes that are not UTF-8 become \xHH, so that no escape
// sequence from the network can drive the terminal or forge an output line.
// Already escaped text passes unchanged, so escaping twice is harmless.

#include <string>
#include <string_view>

namespace ferryctl {

std::string terminalSafe(std::string_view text);

} // namespace ferryctl
