#include "CurlSender.h"

#include <curl/curl.h>

#include "ferry/Error.h"
#include "ferry/PullProtocol.h"

namespace metricsd {

namespace {

constexpr std::size_t kMaxAnswer = 64 * 1024;

std::size_t collect(char* data, std::size_t size, std::size_t n, void* user)
{
    auto* out = static_cast<std::string*>(user);
    const std::size_t bytes = size * n;
    if (out->size() < kMaxAnswer)
        out->append(data, std::min(bytes, kMaxAnswer - out->size()));
    return bytes;
}

} // namespace

CurlSender::CurlSender(const RemoteWriteConfig& config) : m_config(config)
{
    curl_global_init(CURL_GLOBAL_DEFAULT);
    m_curl = curl_easy_init();
    if (!m_curl)
        throw ferry::Error("Failed to initialise libcurl");
    CURL* c = static_cast<CURL*>(m_curl);
    m_headers = curl_slist_append(m_headers, "Content-Type: application/x-protobuf");
    m_headers = curl_slist_append(m_headers, "Content-Encoding: snappy");
    m_headers = curl_slist_append(m_headers, "X-Prometheus-Remote-Write-Version: 0.1.0");
    m_headers = curl_slist_append(m_headers, "User-Agent: ferry-remote-write");
    // No "Expect: 100-continue" round trip before large bodies.
    m_headers = curl_slist_append(m_headers, "Expect:");
    if (!config.bearerToken.empty())
        m_headers = curl_slist_append(m_headers, ("Authorization: Bearer " + config.bearerToken).c_str());
    curl_easy_setopt(c, CURLOPT_URL, config.url.c_str());
    curl_easy_setopt(c, CURLOPT_HTTPHEADER, m_headers);
    curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(c, CURLOPT_PROTOCOLS_STR, "http,https");
    curl_easy_setopt(c, CURLOPT_REDIR_PROTOCOLS_STR, "http,https");
    curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT_MS, static_cast<long>(std::min<long long>(config.timeout.count(), 10000)));
    curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, static_cast<long>(config.timeout.count()));
    if (!config.basicUser.empty()) {
        curl_easy_setopt(c, CURLOPT_HTTPAUTH, CURLAUTH_BASIC);
        curl_easy_setopt(c, CURLOPT_USERNAME, config.basicUser.c_str());
        curl_easy_setopt(c, CURLOPT_PASSWORD, config.basicPassword.c_str());
    }
    if (!config.caFile.empty())
        curl_easy_setopt(c, CURLOPT_CAINFO, config.caFile.c_str());
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, &collect);
}

CurlSender::~CurlSender()
{
    curl_easy_cleanup(static_cast<CURL*>(m_curl));
    curl_slist_free_all(m_headers);
}

HttpResult CurlSender::post(const std::string& snappyBody)
{
    CURL* c = static_cast<CURL*>(m_curl);
    HttpResult r;
    curl_easy_setopt(c, CURLOPT_POSTFIELDS, snappyBody.data());
    curl_easy_setopt(c, CURLOPT_POSTFIELDSIZE_LARGE, static_cast<curl_off_t>(snappyBody.size()));
    curl_easy_setopt(c, CURLOPT_WRITEDATA, &r.body);
    char detail[CURL_ERROR_SIZE] = {};
    curl_easy_setopt(c, CURLOPT_ERRORBUFFER, detail);
    const CURLcode rc = curl_easy_perform(c);
    curl_easy_setopt(c, CURLOPT_ERRORBUFFER, nullptr);
    if (rc != CURLE_OK) {
        // libcurl's detail names the TLS problem ("SSL certificate problem:
        // unable to get local issuer certificate"); its code alone does not.
        r.error =
            detail[0] != '\0' ? ferry::escapeForLog(detail, CURL_ERROR_SIZE) : std::string(curl_easy_strerror(rc));
        r.permanent = rc == CURLE_PEER_FAILED_VERIFICATION || rc == CURLE_SSL_CACERT_BADFILE;
        if (r.permanent || rc == CURLE_SSL_CONNECT_ERROR)
            r.error += m_config.caFile.empty()
                           ? " (the receiver's certificate does not verify against the system's CAs;"
                             " set remote_write: ca_file)"
                           : " (the receiver's certificate does not verify against ca_file " + m_config.caFile + ")";
        return r;
    }
    curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &r.status);
    return r;
}

} // namespace metricsd
