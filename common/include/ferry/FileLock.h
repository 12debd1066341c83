#pragma once
// An exclusive flock(2) on a lock file, held for the object's lifetime.
// flock locks belong to the open file description, so two FileLocks on the
// same path exclude each other between processes (ferry-pushd started by
// its timer and one started by the bus) and between threads alike.

#include <string>

namespace ferry {

class FileLock {
public:
    // Creates path (mode 0600) when missing and blocks until the lock is
    // held. Throws Error naming the file when it cannot be opened or locked.
    explicit FileLock(const std::string& path);
    ~FileLock();
    FileLock(const FileLock&) = delete;
    FileLock& operator=(const FileLock&) = delete;

private:
    int m_fd = -1;
};

} // namespace ferry
