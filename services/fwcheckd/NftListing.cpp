#include "NftListing.h"

#include <fcntl.h>
#include <linux/netfilter.h>
#include <linux/netfilter/nf_tables.h>
#include <linux/netfilter/nfnetlink.h>
#include <linux/netlink.h>
#include <poll.h>
#include <sched.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstring>
#include <functional>
#include <memory>
#include <thread>

#include <nftables/libnftables.h>
#include <nlohmann/json.hpp>

#include "ferry/Error.h"

namespace fwcheck {

namespace {

// Runs fn in the network namespace at netnsPath (or here when empty).
template <typename F>
void inNetns(const std::string& netnsPath, F&& fn)
{
    if (netnsPath.empty()) {
        fn();
        return;
    }
    std::exception_ptr failure;
    // setns(CLONE_NEWNET) moves only the calling thread, and sockets are
    // made in the namespace of the thread that opens them.
    std::thread worker([&] {
        try {
            const int fd = ::open(netnsPath.c_str(), O_RDONLY | O_CLOEXEC);
            if (fd < 0)
                throw ferry::Error("Failed to open network namespace " + netnsPath + ": " + ferry::errnoMessage(errno));
            const int rc = ::setns(fd, CLONE_NEWNET);
            const int saved = errno;
            ::close(fd);
            if (rc != 0)
                throw ferry::Error("Failed to enter network namespace " + netnsPath + ": " + ferry::errnoMessage(saved));
            fn();
        } catch (...) {
            failure = std::current_exception();
        }
    });
    worker.join();
    if (failure)
        std::rethrow_exception(failure);
}

const char* familyName(int f)
{
    switch (f) {
    case NFPROTO_INET: return "inet";
    case NFPROTO_IPV4: return "ip";
    case NFPROTO_IPV6: return "ip6";
    case NFPROTO_ARP: return "arp";
    case NFPROTO_BRIDGE: return "bridge";
    case NFPROTO_NETDEV: return "netdev";
    default: return nullptr;
    }
}

constexpr std::size_t align4(std::size_t n)
{
    return (n + 3) & ~std::size_t{3};
}
constexpr std::size_t kMsgHeader = align4(sizeof(nlmsghdr));
constexpr std::size_t kGenHeader = align4(sizeof(nfgenmsg));
constexpr std::size_t kAttrHeader = align4(sizeof(nlattr));

// Attributes of one netlink message part: type -> payload.
using Attrs = std::map<int, std::pair<const char*, std::size_t>>;

Attrs parseAttrs(const char* data, std::size_t len)
{
    Attrs out;
    while (len >= sizeof(nlattr)) {
        nlattr a;
        std::memcpy(&a, data, sizeof a);
        if (a.nla_len < sizeof(nlattr) || a.nla_len > len)
            break;
        out[a.nla_type & NLA_TYPE_MASK] = {data + kAttrHeader, a.nla_len - kAttrHeader};
        const std::size_t step = align4(a.nla_len);
        if (step >= len)
            break;
        data += step;
        len -= step;
    }
    return out;
}

std::string attrString(const Attrs& a, int type)
{
    const auto it = a.find(type);
    if (it == a.end())
        return "";
    return std::string(it->second.first, strnlen(it->second.first, it->second.second));
}

// One nfnetlink dump request, of every family or of one table's rules;
// onMessage gets each answer's family and attributes and returns false to
// stop reading (the caller then closes the socket, which ends the dump).
void dump(int fd, std::uint16_t msgType, const std::function<bool(int, const Attrs&)>& onMessage, int family = NFPROTO_UNSPEC,
          const std::string& table = {})
{
    struct {
        nlmsghdr nh;
        nfgenmsg nf;
        char attrs[512];
    } req{};
    std::size_t reqLen = kMsgHeader + kGenHeader;
    if (!table.empty()) {
        // NFTA_RULE_TABLE: the kernel dumps only this table's rules.
        const std::size_t payload = table.size() + 1;
        if (kAttrHeader + align4(payload) > sizeof req.attrs)
            throw ferry::Error("Failed to ask nftables for the rules of a table: its name is too long");
        nlattr a{static_cast<std::uint16_t>(kAttrHeader + payload), NFTA_RULE_TABLE};
        std::memcpy(req.attrs, &a, sizeof a);
        std::memcpy(req.attrs + kAttrHeader, table.c_str(), payload);
        reqLen += kAttrHeader + align4(payload);
    }
    req.nh.nlmsg_len = static_cast<std::uint32_t>(reqLen);
    req.nh.nlmsg_type = static_cast<std::uint16_t>((NFNL_SUBSYS_NFTABLES << 8) | msgType);
    req.nh.nlmsg_flags = NLM_F_REQUEST | NLM_F_DUMP;
    req.nh.nlmsg_seq = msgType;
    req.nf.nfgen_family = static_cast<std::uint8_t>(family);
    req.nf.version = NFNETLINK_V0;
    if (::send(fd, &req, reqLen, 0) != static_cast<ssize_t>(reqLen))
        throw ferry::Error("Failed to ask nftables for its rules: " + ferry::errnoMessage(errno));
    std::vector<char> buf(256 * 1024);
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
    for (;;) {
        const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - std::chrono::steady_clock::now());
        pollfd p{fd, POLLIN, 0};
        if (left.count() <= 0 || ::poll(&p, 1, static_cast<int>(left.count())) == 0)
            throw ferry::Error("Failed to read the nftables rules: no answer within 10 s");
        const ssize_t n = ::recv(fd, buf.data(), buf.size(), 0);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            throw ferry::Error("Failed to read the nftables rules: " + ferry::errnoMessage(errno));
        }
        const std::size_t len = static_cast<std::size_t>(n);
        std::size_t off = 0;
        while (off + kMsgHeader <= len) {
            nlmsghdr nh;
            std::memcpy(&nh, buf.data() + off, sizeof nh);
            if (nh.nlmsg_len < kMsgHeader || off + nh.nlmsg_len > len)
                break;
            const char* payload = buf.data() + off + kMsgHeader;
            const std::size_t payloadLen = nh.nlmsg_len - kMsgHeader;
            off += align4(nh.nlmsg_len);
            if (nh.nlmsg_type == NLMSG_DONE)
                return;
            if (nh.nlmsg_type == NLMSG_ERROR) {
                nlmsgerr e{};
                std::memcpy(&e, payload, std::min(payloadLen, sizeof e));
                throw ferry::Error("Failed to read the nftables rules: " + ferry::errnoMessage(-e.error));
            }
            if (payloadLen < kGenHeader)
                continue;
            nfgenmsg nf;
            std::memcpy(&nf, payload, sizeof nf);
            if (!onMessage(nf.nfgen_family, parseAttrs(payload + kGenHeader, payloadLen - kGenHeader)))
                return;
        }
    }
}

int openNetfilterSocket()
{
    const int fd = ::socket(AF_NETLINK, SOCK_RAW | SOCK_CLOEXEC, NETLINK_NETFILTER);
    if (fd < 0)
        throw ferry::Error("Failed to open a netfilter netlink socket: " + ferry::errnoMessage(errno));
    return fd;
}

struct Socket {
    int fd;
    ~Socket() { ::close(fd); }
};

// Does a rule's expression list hold an xt match or target?
bool hasXt(const Attrs& rule)
{
    const auto exprs = rule.find(NFTA_RULE_EXPRESSIONS);
    if (exprs == rule.end())
        return false;
    // NFTA_LIST_ELEM entries, each with NFTA_EXPR_NAME; walked in order (a
    // map of them would keep only the last).
    const char* data = exprs->second.first;
    std::size_t len = exprs->second.second;
    while (len >= sizeof(nlattr)) {
        nlattr el;
        std::memcpy(&el, data, sizeof el);
        if (el.nla_len < sizeof(nlattr) || el.nla_len > len)
            break;
        const std::string name = attrString(parseAttrs(data + kAttrHeader, el.nla_len - kAttrHeader), NFTA_EXPR_NAME);
        if (name == "match" || name == "target")
            return true;
        const std::size_t step = align4(el.nla_len);
        if (step >= len)
            break;
        data += step;
        len -= step;
    }
    return false;
}

std::map<std::string, NftTableInfo> inventoryHere()
{
    std::vector<std::pair<int, std::string>> found;
    {
        Socket s{openNetfilterSocket()};
        dump(s.fd, NFT_MSG_GETTABLE, [&](int family, const Attrs& a) {
            if (familyName(family))
                found.emplace_back(family, attrString(a, NFTA_TABLE_NAME));
            return true;
        });
    }
    std::map<std::string, NftTableInfo> tables;
    for (const auto& [family, name] : found) {
        auto& info = tables[std::string(familyName(family)) + " " + name];
        // One table's rules, read only until the first xt expression: a big
        // iptables-nft table usually shows one in its first rules.
        Socket s{openNetfilterSocket()};
        dump(
            s.fd, NFT_MSG_GETRULE,
            [&](int, const Attrs& rule) {
                info.xt = hasXt(rule);
                return !info.xt;
            },
            family, name);
    }
    return tables;
}

CommandOutput listHere(const std::vector<std::string>& commands, bool json)
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
    out.exitCode = 0;
    nlohmann::json merged = nlohmann::json::array();
    for (const auto& command : commands) {
        const int rc = nft_run_cmd_from_buffer(ctx.get(), command.c_str());
        const char* o = nft_ctx_get_output_buffer(ctx.get());
        const char* e = nft_ctx_get_error_buffer(ctx.get());
        if (e && *e)
            out.err += e;
        if (rc != 0) {
            out.exitCode = 1;
            if (out.err.empty())
                out.err = "libnftables: '" + command + "' failed";
            return out;
        }
        if (!json) {
            out.out += o ? o : "";
            continue;
        }
        if (commands.size() == 1) {
            out.out = o ? o : "";
            return out;
        }
        try {
            auto doc = nlohmann::json::parse(o ? o : "");
            for (auto& item : doc.at("nftables"))
                if (!item.contains("metainfo") || merged.empty())
                    merged.push_back(std::move(item));
        } catch (const std::exception& x) {
            out.exitCode = 1;
            out.err = "libnftables: the JSON of '" + command + "' cannot be read: " + x.what();
            return out;
        }
    }
    if (json)
        out.out = nlohmann::json{{"nftables", std::move(merged)}}.dump();
    return out;
}

} // namespace

std::map<std::string, NftTableInfo> nftInventory(const std::string& netnsPath)
{
    std::map<std::string, NftTableInfo> out;
    inNetns(netnsPath, [&] { out = inventoryHere(); });
    return out;
}

CommandOutput listNft(const std::vector<std::string>& commands, bool json, const std::string& netnsPath)
{
    CommandOutput out;
    try {
        inNetns(netnsPath, [&] { out = listHere(commands, json); });
    } catch (const std::exception& e) {
        out = {};
        out.err = e.what();
    }
    return out;
}

} // namespace fwcheck
