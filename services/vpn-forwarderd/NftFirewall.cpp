#include "NftFirewall.h"

#include <memory>

#include <nftables/libnftables.h>

#include "ferry/Error.h"

namespace vpnfwd {

void NftFirewall::run(const std::string& script)
{
    std::unique_ptr<nft_ctx, decltype(&nft_ctx_free)> ctx(nft_ctx_new(NFT_CTX_DEFAULT), &nft_ctx_free);
    if (!ctx)
        throw ferry::Error("Failed to create an nftables context");
    nft_ctx_buffer_output(ctx.get());
    nft_ctx_buffer_error(ctx.get());
    // The whole buffer is one netlink batch: the kernel applies all of it or
    // none of it.
    if (nft_run_cmd_from_buffer(ctx.get(), script.c_str()) != 0) {
        std::string err = nft_ctx_get_error_buffer(ctx.get());
        while (!err.empty() && err.back() == '\n')
            err.pop_back();
        throw ferry::Error("nftables refused the transaction: " + (err.empty() ? std::string("no reason given") : err));
    }
}

} // namespace vpnfwd
