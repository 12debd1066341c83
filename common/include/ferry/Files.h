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

} // namespace ferry
