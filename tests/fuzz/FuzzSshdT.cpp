// libFuzzer target: `sshd -T` output (parseSshdT) judged for a pull
// (checkSshd), and sshd's wildcard and user@host matching on its patterns.

#include "FuzzSupport.h"
#include "SshdCheck.h"
#include "ferry/Error.h"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size)
{
    const std::string text(fuzz::view(data, size));
    try {
        const auto effective = fwcheck::parseSshdT(text);
        fwcheck::SshdQuestion q;
        q.masterHost = "master.example.org";
        q.masterAddress = "192.0.2.1";
        q.listenAddress = "192.0.2.2";
        q.account = fwcheck::Account{"ferry", "/usr/sbin/ferry-login", {"ferry", "ssh"}, "/nonexistent"};
        (void)fwcheck::checkSshd(effective, q, "/etc/ssh/sshd_config");
        q.account.reset();
        q.port = 2222;
        (void)fwcheck::checkSshd(effective, q, "/etc/ssh/sshd_config");
        for (const auto& [key, values] : effective)
            for (const auto& v : values) {
                (void)fwcheck::sshWildcard(v, "ferry");
                (void)fwcheck::sshUserMatches(v, "ferry", "master.example.org", "192.0.2.1");
            }
    } catch (const ferry::Error&) {
    }
    return 0;
}
