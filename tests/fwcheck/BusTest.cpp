// The daemon on a private bus, reading the rules of the test's node
// namespace: Check(), the properties, VerdictChanged, persistence across a
// restart, and `ferryctl doctor` (human and --json).
