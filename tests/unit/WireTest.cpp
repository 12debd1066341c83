#include <fcntl.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cstdint>
#include <string>

#include <gtest/gtest.h>

#include "ferry/Error.h"
#include "ferry/Stream.h"
#include "ferry/Wire.h"

namespace ferry {
namespace {

class AFramedStream : public ::testing::Test {
protected:
    void SetUp() override
    {
        int sv[2];
        ASSERT_EQ(::socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
        a = std::make_unique<FdStream>(sv[0], sv[0], "peer-a", true);
        b = std::make_unique<FdStream>(sv[1], sv[1], "peer-b", true);
    }
    void sendRaw(const std::string& bytes) { a->writeAll(bytes.data(), bytes.size(), deadlineIn(std::chrono::seconds(1))); }
    std::unique_ptr<FdStream> a, b;
};

TEST_F(AFramedStream, CarriesARecordBatchIntact)
{
    std::vector<Record> batch{{1, 1000, "load", "load1 0.5\n"}, {2, 2000, "plugin:x", std::string(70000, 'z')}};
    writeFrame(*a, MessageType::Batch, encode(batch), deadlineIn(std::chrono::seconds(1)));
    const Frame f = readFrame(*b, deadlineIn(std::chrono::seconds(1)));
    ASSERT_EQ(f.type, MessageType::Batch);
    const auto decoded = decodeBatch(f.payload, "peer-a");
    ASSERT_EQ(decoded.size(), 2u);
    EXPECT_EQ(decoded[1].payload, batch[1].payload);
    EXPECT_EQ(decoded[1].kind, "plugin:x");
}

TEST_F(AFramedStream, RejectsAWrongVersionNamingBothVersions)
{
    std::string f = encodeFrame(MessageType::Bye, "");
    f[2] = 2;
    sendRaw(f);
    try {
        readFrame(*b, deadlineIn(std::chrono::seconds(1)));
        FAIL();
    } catch (const ProtocolError& e) {
        EXPECT_STREQ(e.what(), "Bad frame from peer-b: unsupported protocol version 2 (this side speaks 1)");
    }
}

TEST_F(AFramedStream, RejectsAnOversizedFrameBeforeReadingIt)
{
    std::string f = encodeFrame(MessageType::Batch, "");
    f[4] = 0x7f;  // ~2 GiB announced
    sendRaw(f);
    EXPECT_THROW(readFrame(*b, deadlineIn(std::chrono::seconds(1)), 1024), ProtocolError);
}

TEST_F(AFramedStream, ReportsATruncatedFrameAsClosedWithHowMuchArrived)
{
    std::string f = encodeFrame(MessageType::Batch, std::string(100, 'x'));
    sendRaw(f.substr(0, 50));
    a.reset();
    try {
        readFrame(*b, deadlineIn(std::chrono::seconds(1)));
        FAIL();
    } catch (const ClosedError& e) {
        EXPECT_NE(std::string(e.what()).find("after 42 of 100 bytes of a frame payload"), std::string::npos) << e.what();
    }
}

TEST_F(AFramedStream, TimesOutOnASilentPeer)
{
    sendRaw("FY");
    const auto start = Clock::now();
    EXPECT_THROW(readFrame(*b, deadlineIn(std::chrono::milliseconds(200))), TimeoutError);
    EXPECT_LT(Clock::now() - start, std::chrono::seconds(2));
}

TEST_F(AFramedStream, WaitsForInputOrForTheDescriptorItIsWokenBy)
{
    // The master's session waits on its stream and on the eventfd of the
    // commit that runs meanwhile (Session.cpp): whichever comes first.
    const int wake = ::eventfd(0, EFD_CLOEXEC);
    ASSERT_GE(wake, 0);
    EXPECT_FALSE(b->waitForInput(wake, deadlineIn(std::chrono::milliseconds(50)))) << "nothing came: the deadline";
    const std::uint64_t one = 1;
    ASSERT_EQ(::write(wake, &one, sizeof one), static_cast<ssize_t>(sizeof one));
    EXPECT_FALSE(b->waitForInput(wake, deadlineIn(std::chrono::seconds(5)))) << "woken";
    std::uint64_t count = 0;
    ASSERT_EQ(::read(wake, &count, sizeof count), static_cast<ssize_t>(sizeof count));
    sendRaw("x");
    EXPECT_TRUE(b->waitForInput(wake, deadlineIn(std::chrono::seconds(5)))) << "input";
    ::close(wake);
}

TEST(AFdStreamOnPipes, PeeksWithoutTakingAndHandsThePeekedBytesOutFirst)
{
    // collectord serves a relayed session on sshd's pipes, and looks
    // whether the node's Bye is already there (MSG_PEEK works on sockets
    // only).
    int up[2], down[2];
    ASSERT_EQ(::pipe2(up, O_CLOEXEC), 0);
    ASSERT_EQ(::pipe2(down, O_CLOEXEC), 0);
    FdStream s(up[0], down[1], "pipes", true);
    char buf[16] = {};
    EXPECT_EQ(s.peek(buf, 8), 0u) << "nothing has arrived";
    EXPECT_FALSE(s.hasInput());
    ASSERT_EQ(::write(up[1], "abcdef", 6), 6);
    EXPECT_EQ(s.peek(buf, 4), 4u);
    EXPECT_EQ(std::string(buf, 4), "abcd");
    EXPECT_EQ(s.peek(buf, 8), 6u) << "as much as has arrived";
    EXPECT_TRUE(s.hasInput());
    EXPECT_TRUE(s.waitForInput(-1, deadlineIn(std::chrono::milliseconds(10))));
    EXPECT_EQ(s.readSome(buf, 3, deadlineIn(std::chrono::seconds(1))), 3u);
    EXPECT_EQ(std::string(buf, 3), "abc");
    ASSERT_EQ(::write(up[1], "gh", 2), 2);
    std::string rest;
    while (rest.size() < 5)
        rest.append(buf, s.readSome(buf, sizeof buf, deadlineIn(std::chrono::seconds(1))));
    EXPECT_EQ(rest, "defgh");
    s.writeAll("out", 3, deadlineIn(std::chrono::seconds(1)));
    ASSERT_EQ(::read(down[0], buf, sizeof buf), 3);
    ::close(up[1]);
    EXPECT_EQ(s.readSome(buf, sizeof buf, deadlineIn(std::chrono::seconds(1))), 0u) << "then the end";
    ::close(down[0]);
}

TEST(AFdStreamOnPipes, EndsWhenTheDescriptorItWatchesHangsUp)
{
    int up[2], down[2], watched[2];
    ASSERT_EQ(::pipe2(up, O_CLOEXEC), 0);
    ASSERT_EQ(::pipe2(down, O_CLOEXEC), 0);
    ASSERT_EQ(::socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, watched), 0);
    FdStream s(up[0], down[1], "pipes", true);
    s.watch(watched[0]);
    char buf[8];
    EXPECT_THROW(s.readSome(buf, sizeof buf, deadlineIn(std::chrono::milliseconds(50))), TimeoutError);
    ::close(watched[1]);
    const auto start = Clock::now();
    EXPECT_THROW(s.readSome(buf, sizeof buf, deadlineIn(std::chrono::seconds(20))), ClosedError);
    EXPECT_THROW(s.waitForInput(-1, deadlineIn(std::chrono::seconds(20))), ClosedError);
    EXPECT_LT(Clock::now() - start, std::chrono::seconds(5));
    // What had arrived is still read first.
    ASSERT_EQ(::write(up[1], "x", 1), 1);
    EXPECT_EQ(s.readSome(buf, sizeof buf, deadlineIn(std::chrono::seconds(1))), 1u);
    for (int fd : {up[1], down[0], watched[0]})
        ::close(fd);
}

TEST_F(AFramedStream, RejectsGarbage)
{
    sendRaw("GET / HTTP/1.1\r\n\r\n");
    EXPECT_THROW(readFrame(*b, deadlineIn(std::chrono::seconds(1))), ProtocolError);
}

TEST(ABatchDecoder, RejectsSequencesThatDoNotIncrease)
{
    const std::string p = encode(std::vector<Record>{{5, 0, "a", "x"}, {5, 0, "a", "y"}});
    EXPECT_THROW(decodeBatch(p, "n"), ProtocolError);
}

TEST(ABatchDecoder, RejectsTrailingBytesAndTruncation)
{
    std::string p = encode(std::vector<Record>{{1, 0, "a", "x"}});
    EXPECT_THROW(decodeBatch(p + "!", "n"), ProtocolError);
    EXPECT_THROW(decodeBatch(p.substr(0, p.size() - 1), "n"), ProtocolError);
}

TEST(ABatchDecoder, RejectsAnAbsurdRecordCountWithoutAllocatingForIt)
{
    EXPECT_THROW(decodeBatch(Encoder().u32(0xffffffff).take(), "n"), ProtocolError);
    EXPECT_THROW(decodeBatch(Encoder().u32(9000).take(), "n"), ProtocolError);
}

TEST(AFrameParser, SurvivesEveryPrefixOfAValidFrame)
{
    const std::string f = encodeFrame(MessageType::Ack, encode(AckMessage{7, 1, 0}));
    for (std::size_t n = 0; n < f.size(); ++n) {
        Frame out;
        std::size_t used = 1;
        EXPECT_FALSE(parseFrame(f.substr(0, n), kDefaultMaxFrame, out, used));
        EXPECT_EQ(used, 0u);
    }
    Frame out;
    std::size_t used = 0;
    ASSERT_TRUE(parseFrame(f, kDefaultMaxFrame, out, used));
    EXPECT_EQ(decodeAck(out.payload, "x").storedUpTo, 7u);
}

} // namespace
} // namespace ferry
