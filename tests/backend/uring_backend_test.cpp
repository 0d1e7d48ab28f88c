// The uring backend's operations one by one: what each returns, cancellation, errors.

#include <array>
#include <thread>

#include <fcntl.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include "support/sockets.hpp"
#include "uring_test_support.hpp"

namespace aioloop::backend {
namespace {

using namespace uring_testing;
using aioloop::testing::scoped_fd;
using aioloop::testing::stream_pair;
using aioloop::testing::tcp_pair;
using aioloop::testing::write_all;

TEST_F(UringBackend, RecvReadsWhatThePeerSent) {
    auto [a, b] = stream_pair();
    write_all(b.get(), "hello");
    operation& op = start(op_kind::recv, a.get());
    auto got = collect(1);
    ASSERT_EQ(got.size(), 1U);
    EXPECT_EQ(got[0], &op);
    EXPECT_EQ(op.result, 5);
    EXPECT_EQ(text(op), "hello");
    EXPECT_EQ(op.state, op_state::done);
}

TEST_F(UringBackend, RecvWaitsForData) {
    auto [a, b] = stream_pair();
    operation& op = start(op_kind::recv, a.get());
    EXPECT_TRUE(turn().empty());
    write_all(b.get(), "later");
    auto got = collect(1);
    ASSERT_EQ(got.size(), 1U);
    EXPECT_EQ(text(op), "later");
    EXPECT_EQ(uring_->in_flight(), 0U);
}

TEST_F(UringBackend, SendWritesToThePeer) {
    auto [a, b] = stream_pair();
    operation& op = start_send(a.get(), "ping");
    ASSERT_EQ(collect(1).size(), 1U);
    EXPECT_EQ(op.result, 4);
    std::array<char, 8> buf{};
    ASSERT_EQ(::read(b.get(), buf.data(), buf.size()), 4);
    EXPECT_EQ(std::string(buf.data(), 4), "ping");
}

TEST_F(UringBackend, PollReportsReadiness) {
    auto [a, b] = stream_pair();
    operation& op = start_poll(a.get(), POLLIN);
    EXPECT_TRUE(turn().empty());
    write_all(b.get(), "x");
    ASSERT_EQ(collect(1).size(), 1U);
    EXPECT_NE(op.result & POLLIN, 0);
}

TEST_F(UringBackend, ReadAtAndWriteAtUseTheOffset) {
    std::string path = testing::temp_path("uring_file");
    scoped_fd file(::open(path.c_str(), O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0600));
    ::unlink(path.c_str());
    ASSERT_GE(file.get(), 0);
    operation& write = start(op_kind::write_at, file.get(), 6, 3);
    std::memcpy(write.buf, "abcdef", 6);
    ASSERT_EQ(collect(1).size(), 1U);
    EXPECT_EQ(write.result, 6);
    operation& read = start(op_kind::read_at, file.get(), 4, 5);
    ASSERT_EQ(collect(1).size(), 1U);
    EXPECT_EQ(text(read), "cdef");
}

TEST_F(UringBackend, RecvAndSendAtOnceOnOneSocket) {
    auto [a, b] = tcp_pair();
    operation& recv = start(op_kind::recv, a.get());
    operation& send = start_send(a.get(), "ping");
    auto first = collect(1);
    ASSERT_EQ(first.size(), 1U);
    EXPECT_EQ(first[0], &send);
    EXPECT_EQ(send.result, 4);
    std::array<char, 8> buf{};
    ::pollfd readable{b.get(), POLLIN, 0};
    ASSERT_EQ(::poll(&readable, 1, 4000), 1);
    ASSERT_EQ(::read(b.get(), buf.data(), buf.size()), 4);
    write_all(b.get(), "pong");
    ASSERT_EQ(collect(1).size(), 1U);
    EXPECT_EQ(text(recv), "pong");
}

TEST_F(UringBackend, CancelOfAPendingRecvCompletesOnceWithECanceled) {
    auto [a, b] = stream_pair();
    operation& op = start(op_kind::recv, a.get());
    EXPECT_TRUE(turn().empty());
    op.cancel_requested = true;
    backend_->cancel(op, done_);
    auto got = collect(1);
    ASSERT_EQ(got.size(), 1U);
    EXPECT_EQ(op.result, -ECANCELED);
    EXPECT_TRUE(turn().empty());
    EXPECT_EQ(uring_->in_flight(), 0U);
    EXPECT_EQ(backend_->stats().cancels, 1U);
}

TEST_F(UringBackend, CancelOfAPendingPollCompletesOnceWithECanceled) {
    auto [a, b] = stream_pair();
    operation& op = start_poll(a.get(), POLLIN);
    EXPECT_TRUE(turn().empty());
    backend_->cancel(op, done_);
    ASSERT_EQ(collect(1).size(), 1U);
    EXPECT_EQ(op.result, -ECANCELED);
    EXPECT_TRUE(turn().empty());
}

TEST_F(UringBackend, CancelBeforeSubmissionCompletesAtOnceAndReadsNothing) {
    auto [a, b] = stream_pair();
    operation& op = start(op_kind::recv, a.get());
    std::uint64_t before = enters(backend_->stats());
    backend_->cancel(op, done_);
    // Withdrawn from the SQ: done without a system call.
    EXPECT_EQ(done_.pop(), &op);
    EXPECT_EQ(op.result, -ECANCELED);
    EXPECT_EQ(enters(backend_->stats()), before);
    write_all(b.get(), "kept");
    EXPECT_TRUE(turn().empty());
    std::array<char, 8> buf{};
    EXPECT_EQ(::read(a.get(), buf.data(), buf.size()), 4); // the withdrawn recv took nothing
}

TEST_F(UringBackend, CancelRacingItsCompletionCompletesOnce) {
    auto [a, b] = stream_pair();
    operation& op = start(op_kind::recv, a.get());
    EXPECT_TRUE(turn().empty());
    write_all(b.get(), "race");
    backend_->cancel(op, done_);
    ASSERT_EQ(collect(1).size(), 1U);
    EXPECT_TRUE(op.result == 4 || op.result == -ECANCELED) << op.result;
    EXPECT_TRUE(turn().empty());
    EXPECT_EQ(uring_->in_flight(), 0U);
}

TEST_F(UringBackend, RecvSeesEndOfStream) {
    auto [a, b] = stream_pair();
    operation& op = start(op_kind::recv, a.get());
    b.reset();
    ASSERT_EQ(collect(1).size(), 1U);
    EXPECT_EQ(op.result, 0);
}

TEST_F(UringBackend, RecvSeesPeerReset) {
    auto [a, b] = tcp_pair();
    operation& op = start(op_kind::recv, a.get());
    EXPECT_TRUE(turn().empty());
    ::linger abort{1, 0}; // close() sends RST
    ASSERT_EQ(::setsockopt(b.get(), SOL_SOCKET, SO_LINGER, &abort, sizeof(abort)), 0);
    b.reset();
    ASSERT_EQ(collect(1).size(), 1U);
    EXPECT_EQ(op.result, -ECONNRESET);
}

TEST_F(UringBackend, SendToAClosedPeerFailsWithoutSigpipe) {
    auto [a, b] = stream_pair();
    b.reset();
    operation& op = start_send(a.get(), "lost");
    ASSERT_EQ(collect(1).size(), 1U);
    EXPECT_EQ(op.result, -EPIPE);
}

TEST_F(UringBackend, RecvCompletesWhenAnotherThreadSends) {
    auto [a, b] = stream_pair();
    operation& op = start(op_kind::recv, a.get());
    std::thread sender([fd = b.get()] {
        std::this_thread::sleep_for(20ms);
        write_all(fd, "across");
    });
    auto got = collect(1);
    sender.join();
    ASSERT_EQ(got.size(), 1U);
    EXPECT_EQ(text(op), "across");
    EXPECT_GE(backend_->stats().blocking_waits, 1U);
}

} // namespace
} // namespace aioloop::backend
