#include "NftListing.h"

#include <fcntl.h>
#include <sched.h>
#include <unistd.h>

#include <memory>
#include <thread>

#include <nftables/libnftables.h>

#include "ferry/Error.h"

namespace fwcheck {

namespace {

CommandOutput listHere(bool json)
{
    CommandOutput out;
    std::unique_ptr<nft_ctx, decltype(&nft_ctx_free)> ctx(nft_ctx_new(NFT_CTX_DEFAULT), &nft_ctx_free);
    if (!ctx) {
        out.err = "libnftables: cannot create a context";
        return out;
    }
    nft_ctx_output_set_flags(ctx.get(), json ? static_cast<unsigned>(NFT_CTX_OUTPUT_JSON) : 0u);
    if (nft_ctx_buffer_output(ctx.get()) != 0 || nft_ctx_buffer_error(ctx.get()) != 0) {
        out.err = "libnftables: cannot buffer its output";
        return out;
    }
    out.ran = true;
    const int rc = nft_run_cmd_from_buffer(ctx.get(), "list ruleset");
    out.exitCode = rc == 0 ? 0 : 1;
    if (const char* o = nft_ctx_get_output_buffer(ctx.get()))
        out.out = o;
    if (const char* e = nft_ctx_get_error_buffer(ctx.get()))
        out.err = e;
    if (rc != 0 && out.err.empty())
        out.err = "libnftables: list ruleset failed";
    return out;
}

} // namespace

CommandOutput listNftRuleset(bool json, const std::string& netnsPath)
{
    if (netnsPath.empty())
        return listHere(json);
    CommandOutput out;
    // setns(CLONE_NEWNET) moves only the calling thread, and libnftables
    // opens its netlink socket in the namespace of the thread that lists.
    std::thread worker([&] {
        const int fd = ::open(netnsPath.c_str(), O_RDONLY | O_CLOEXEC);
        if (fd < 0) {
            out.err = "cannot open network namespace " + netnsPath + ": " + ferry::errnoMessage(errno);
            return;
        }
        const int rc = ::setns(fd, CLONE_NEWNET);
        const int saved = errno;
        ::close(fd);
        if (rc != 0) {
            out.err = "cannot enter network namespace " + netnsPath + ": " + ferry::errnoMessage(saved);
            return;
        }
        try {
            out = listHere(json);
        } catch (const std::exception& e) {
            out = {};
            out.err = std::string("libnftables: ") + e.what();
        }
    });
    worker.join();
    return out;
}

} // namespace fwcheck
