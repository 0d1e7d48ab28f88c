#include <cerrno>
#include <chrono>
#include <cstdio>
#include <utility>

#include <fcntl.h>
#include <poll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include "backend/epoll_backend.hpp"
#include "backend/epoll_test_support.hpp"
#include "support/sockets.hpp"

// The epoll backend's error paths on the real kernel: peer reset, end of stream, cancellation,
// fd numbers reused after forget_fd, files epoll refuses, bad fds.

namespace aioloop::testing {
namespace {

using std::chrono::nanoseconds;

// SO_LINGER with a zero timeout makes close() send RST instead of FIN.
void reset(scoped_fd& fd) {
    linger lg{1, 0};
    ASSERT_EQ(::setsockopt(fd.get(), SOL_SOCKET, SO_LINGER, &lg, sizeof(lg)), 0);
    fd.reset();
}

// The same file under fd number `number` (socket() often hands the freed number back itself).
scoped_fd renumber(scoped_fd fd, int number) {
    if (fd.get() == number) {
        return fd;
    }
    EXPECT_EQ(::dup2(fd.get(), number), number);
    return scoped_fd(number);
}

bool is_reset_error(std::int64_t result) {
    return result == -EPIPE || result == -ECONNRESET;
}

TEST(EpollErrors, PeerResetWakesEveryWaiter) {
    epoll_harness h;
    auto [a, b] = tcp_pair();
    auto& in = h.recv(a.get());
    auto& hangup = h.poll(a.get(), POLLIN);
    std::string big(8 << 20, 'z');
    auto& partial = h.send(a.get(), big);
    ASSERT_TRUE(h.is_done(partial));
    auto& out = h.send(a.get(), big); // waits: the socket buffer is full
    ASSERT_FALSE(h.is_done(out));
    ASSERT_FALSE(h.is_done(in));

    reset(b);
    ASSERT_TRUE(h.wait_for(in));
    ASSERT_TRUE(h.wait_for(out));
    ASSERT_TRUE(h.wait_for(hangup));
    EXPECT_EQ(in.result, -ECONNRESET);
    EXPECT_TRUE(is_reset_error(out.result)) << out.result;
    EXPECT_TRUE(hangup.result & (POLLERR | POLLHUP)) << hangup.result;
    EXPECT_EQ(h.waiting(), 0u);
}

TEST(EpollErrors, SendAfterResetFails) {
    epoll_harness h;
    auto [a, b] = tcp_pair();
    reset(b);
    auto& in = h.recv(a.get());
    ASSERT_TRUE(h.wait_for(in));
    EXPECT_EQ(in.result, -ECONNRESET);
    auto& out = h.send(a.get(), "late");
    ASSERT_TRUE(h.wait_for(out));
    EXPECT_TRUE(is_reset_error(out.result)) << out.result;
    auto& after = h.recv(a.get()); // the error was reported once; now it is end of stream
    ASSERT_TRUE(h.wait_for(after));
    EXPECT_EQ(after.result, 0);
}

TEST(EpollErrors, EndOfStreamIsZeroAndStaysZero) {
    epoll_harness h;
    auto [a, b] = tcp_pair();
    auto& first = h.recv(a.get());
    write_all(b.get(), "last words");
    ::shutdown(b.get(), SHUT_WR);
    ASSERT_TRUE(h.wait_for(first));
    EXPECT_EQ(epoll_harness::data_of(first), "last words");
    auto& eof = h.recv(a.get());
    ASSERT_TRUE(h.wait_for(eof));
    EXPECT_EQ(eof.result, 0);
    auto waits = h.calls(syscall_name::epoll_wait);
    auto& again = h.recv(a.get());
    ASSERT_TRUE(h.is_done(again)) << "at end of stream a recv never waits";
    EXPECT_EQ(again.result, 0);
    EXPECT_EQ(h.calls(syscall_name::epoll_wait), waits);
    EXPECT_EQ(h.stats().eagain, 0u);
}

TEST(EpollErrors, CancelWaitingRecvThenRecvAgain) {
    epoll_harness h;
    auto [a, b] = stream_pair();
    auto& doomed = h.recv(a.get());
    ASSERT_FALSE(h.is_done(doomed));
    h.cancel(doomed);
    ASSERT_TRUE(h.is_done(doomed));
    EXPECT_EQ(doomed.result, -ECANCELED);
    EXPECT_EQ(h.waiting(), 0u);

    auto& next = h.recv(a.get());
    write_all(b.get(), "after");
    ASSERT_TRUE(h.wait_for(next));
    EXPECT_EQ(epoll_harness::data_of(next), "after");
    EXPECT_EQ(h.completed(), 2u); // the cancelled one came back once, not again with the data
}

TEST(EpollErrors, CancelOneOfSeveralWaiters) {
    epoll_harness h;
    auto [a, b] = stream_pair();
    auto& p1 = h.poll(a.get(), POLLIN);
    auto& p2 = h.poll(a.get(), POLLIN);
    auto& p3 = h.poll(a.get(), POLLIN);
    h.cancel(p2);
    EXPECT_EQ(p2.result, -ECANCELED);
    write_all(b.get(), "x");
    ASSERT_TRUE(h.wait_for(p1));
    ASSERT_TRUE(h.wait_for(p3));
    EXPECT_EQ(p1.result, POLLIN);
    EXPECT_EQ(p3.result, POLLIN);
}

// The number comes back for a new socket: it is registered afresh and works.
TEST(EpollErrors, ForgetFdThenNumberReused) {
    epoll_harness h;
    auto [a, b] = stream_pair();
    write_all(b.get(), "old");
    auto& first = h.recv(a.get());
    ASSERT_TRUE(h.wait_for(first));
    int number = a.get();
    h.backend().forget_fd(number);
    a.reset();

    auto [c, d] = stream_pair();
    scoped_fd reused = renumber(std::move(c), number);
    auto& second = h.recv(reused.get());
    EXPECT_FALSE(h.is_done(second)) << second.result;
    write_all(d.get(), "new");
    ASSERT_TRUE(h.wait_for(second));
    EXPECT_EQ(epoll_harness::data_of(second), "new");
    EXPECT_EQ(h.calls(syscall_name::epoll_ctl), 2u);
}

// A dup keeps the old file in the epoll set under the old number: its events must not wake the
// new file's operations.
TEST(EpollErrors, EventsOfTheNumbersOldFileAreDropped) {
    epoll_harness h;
    auto [a, b] = stream_pair();
    auto& first = h.recv(a.get());
    h.turn(nanoseconds{0});
    ASSERT_FALSE(h.is_done(first));
    h.cancel(first);
    int number = a.get();
    scoped_fd keeps_old_open(::dup(number));
    h.backend().forget_fd(number);
    a.reset();

    auto [c, d] = stream_pair();
    scoped_fd reused = renumber(std::move(c), number);
    auto& second = h.recv(reused.get());
    write_all(b.get(), "stale");
    h.turn(nanoseconds{0});
    EXPECT_FALSE(h.is_done(second)) << "woken by the old file's edge";
    write_all(d.get(), "fresh");
    ASSERT_TRUE(h.wait_for(second));
    EXPECT_EQ(epoll_harness::data_of(second), "fresh");
    EXPECT_EQ(h.stats().eagain, 0u);
}

// forget_fd without close: the number is still in the set, and ADD's EEXIST becomes a MOD.
TEST(EpollErrors, ForgetFdWithoutCloseStillWorks) {
    epoll_harness h;
    auto [a, b] = stream_pair();
    auto& first = h.recv(a.get());
    write_all(b.get(), "1");
    ASSERT_TRUE(h.wait_for(first));
    h.backend().forget_fd(a.get());
    auto& second = h.recv(a.get());
    write_all(b.get(), "2");
    ASSERT_TRUE(h.wait_for(second));
    EXPECT_EQ(epoll_harness::data_of(second), "2");
    EXPECT_EQ(h.calls(syscall_name::epoll_ctl), 3u); // ADD, ADD (EEXIST), MOD
}

// epoll_ctl refuses regular files with EPERM; poll(2) calls them always ready, and so do we.
TEST(EpollErrors, PollOnRegularFileIsReadyAtOnce) {
    epoll_harness h;
    std::string path = temp_path("epoll-poll");
    scoped_fd file(::open(path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0600));
    ASSERT_GE(file.get(), 0);
    std::remove(path.c_str());
    auto& both = h.poll(file.get(), POLLIN | POLLOUT);
    ASSERT_TRUE(h.is_done(both));
    EXPECT_EQ(both.result, POLLIN | POLLOUT);
    auto& readable = h.poll(file.get(), POLLIN);
    ASSERT_TRUE(h.is_done(readable));
    EXPECT_EQ(readable.result, POLLIN);
    EXPECT_EQ(h.calls(syscall_name::epoll_ctl), 1u);
}

TEST(EpollErrors, ReadAtAndWriteAtOnAFile) {
    epoll_harness h;
    std::string path = temp_path("epoll-file");
    scoped_fd file(::open(path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0600));
    ASSERT_GE(file.get(), 0);
    std::remove(path.c_str());

    std::string text = "written at 3";
    auto& put = h.make(op_kind::write_at, file.get());
    put.buf = reinterpret_cast<std::byte*>(text.data());
    put.len = text.size();
    put.offset = 3;
    h.start(put);
    ASSERT_TRUE(h.is_done(put));
    EXPECT_EQ(put.result, static_cast<std::int64_t>(text.size()));

    std::string back(64, '\0');
    auto& get = h.make(op_kind::read_at, file.get());
    get.buf = reinterpret_cast<std::byte*>(back.data());
    get.len = back.size();
    get.offset = 3;
    h.start(get);
    ASSERT_TRUE(h.is_done(get));
    EXPECT_EQ(back.substr(0, static_cast<std::size_t>(get.result)), text);
    EXPECT_EQ(h.calls(syscall_name::read), 1u);
    EXPECT_EQ(h.calls(syscall_name::write), 1u);
}

TEST(EpollErrors, BadFdFailsAtOnce) {
    epoll_harness h;
    auto& negative = h.recv(-1);
    ASSERT_TRUE(h.is_done(negative));
    EXPECT_EQ(negative.result, -EBADF);
    int closed = ::eventfd(0, EFD_CLOEXEC);
    ASSERT_GE(closed, 0);
    ::close(closed);
    auto& gone = h.recv(closed);
    ASSERT_TRUE(h.is_done(gone));
    EXPECT_EQ(gone.result, -EBADF);
    auto& gone_send = h.send(closed, "x");
    ASSERT_TRUE(h.is_done(gone_send));
    EXPECT_EQ(gone_send.result, -EBADF);
}

// Pipes aren't sockets: recv and send fall back to read and write once, then stay there.
TEST(EpollErrors, PipesWorkThroughReadAndWrite) {
    epoll_harness h;
    int fds[2];
    ASSERT_EQ(::pipe2(fds, O_NONBLOCK | O_CLOEXEC), 0);
    scoped_fd r(fds[0]);
    scoped_fd w(fds[1]);
    auto& in = h.recv(r.get());
    auto& out = h.send(w.get(), "through a pipe");
    ASSERT_TRUE(h.is_done(out));
    EXPECT_EQ(out.result, 14);
    ASSERT_TRUE(h.wait_for(in));
    EXPECT_EQ(epoll_harness::data_of(in), "through a pipe");
    w.reset();
    auto& eof = h.recv(r.get());
    ASSERT_TRUE(h.wait_for(eof));
    EXPECT_EQ(eof.result, 0);
}

} // namespace
} // namespace aioloop::testing
