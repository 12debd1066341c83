#pragma once
// The node's own diagnosis for the master: fwcheckd's last result (the file
// it keeps in the state directory, fwcheck.json) condensed into the health
// report's bounded verdict text, so that a master whose pulls fail sees why
// as soon as the node pushes ("ferryctl master show NODE").

#include <cstddef>
#include <cstdint>
#include <string>

namespace pushd {

// "blocked (checked 2026-11-30 08:43:51): firewall.blocked: <message> | fix: <command>; …",
// at most maxBytes (whole findings dropped from the end, the count said).
// Empty when fwcheckd has not checked yet; an unreadable file says so.
std::string fwcheckSummary(const std::string& file, std::size_t maxBytes);

// When fwcheckd's result in file was checked (ms since the epoch); 0 when
// there is none or it cannot be read.
std::int64_t fwcheckCheckedMs(const std::string& file);

} // namespace pushd
