#pragma once
// Small file helpers: whole-file reads and atomic writes (temp file + rename).

#include <optional>
#include <string>
#include <sys/types.h>

namespace ferry {

// Reads the whole file; std::nullopt if it does not exist; throws Error if
// it exists but cannot be read, or is larger than maxBytes.
std::optional<std::string> readFileIfExists(const std::string& path, std::size_t maxBytes = 16 * 1024 * 1024);
std::string readFile(const std::string& path, std::size_t maxBytes = 16 * 1024 * 1024);

// Writes via a temporary file in the same directory, fsync, rename.
void writeFileAtomic(const std::string& path, const std::string& content, mode_t mode = 0600);

// Makes this process non-dumpable (PR_SET_DUMPABLE 0): its /proc entries
// belong to root, so another process of the same user (metricsd and
// remote-write run as ferry too) can neither read its memory
// (/proc/PID/mem, ptrace) nor reopen its files (/proc/PID/fd/N, node-keys.db
// included). For the daemons that hold node keys. Throws Error on failure.
void refuseSameUserInspection();

} // namespace ferry
