#pragma once
// Remote-write settings: the `remote_write:` section of /etc/ferry/metrics.yml
// on the master. Without a url, remote-write is off (the default).
//
//   remote_write:
//     url: https://prometheus.example.org/api/v1/write
//     bearer_token_file: /etc/ferry/remote-write.token     # or
//     basic_auth: {username: ferry, password_file: /etc/ferry/remote-write.password}
//     ca_file: /etc/ferry/remote-write-ca.pem               # default: the system's CAs
//     timeout: 30s             # per request
//     max_samples_per_send: 5000
//     min_backoff: 1s          # retries double from here …
//     max_backoff: 30s         # … up to this
//     retry_for: 2m            # then the run ends; the next run resumes at the cursor

#include <chrono>
#include <optional>
#include <string>

namespace metricsd {

struct RemoteWriteConfig {
    std::string url;  // empty: off
    std::string bearerToken;
    std::string basicUser;
    std::string basicPassword;
    std::string caFile;
    std::chrono::milliseconds timeout{30000};
    std::size_t maxSamplesPerSend = 5000;
    std::chrono::milliseconds minBackoff{1000};
    std::chrono::milliseconds maxBackoff{30000};
    std::chrono::milliseconds retryFor{120000};

    bool enabled() const { return !url.empty(); }
};

// Reads the file (missing: defaults, remote-write off); ConfigError names
// the file, line and key of anything wrong. Secret files are read here.
RemoteWriteConfig loadRemoteWriteConfig(const std::string& path);
RemoteWriteConfig parseRemoteWriteConfig(const std::string& name, const std::string& text);

} // namespace metricsd
