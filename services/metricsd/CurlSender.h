#pragma once
// RemoteWriteSender over libcurl: one reused handle (keep-alive), http and
// https only, connect and total timeouts, answers read up to 64 KiB.

#include <string>

struct curl_slist;

#include "RemoteWriteConfig.h"
#include "RemoteWriter.h"

namespace metricsd {

class CurlSender : public RemoteWriteSender {
public:
    explicit CurlSender(const RemoteWriteConfig& config);
    ~CurlSender() override;
    CurlSender(const CurlSender&) = delete;
    CurlSender& operator=(const CurlSender&) = delete;

    HttpResult post(const std::string& snappyBody) override;

private:
    const RemoteWriteConfig& m_config;
    void* m_curl = nullptr;
    curl_slist* m_headers = nullptr;
};

} // namespace metricsd
