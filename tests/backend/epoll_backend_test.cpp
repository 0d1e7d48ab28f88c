#include <atomic>
#include <chrono>
#include <thread>

#include <poll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include "backend/epoll_backend.hpp"
#include "backend/epoll_test_support.hpp"
#include "support/sockets.hpp"

// The epoll backend on the real kernel: what completes at once, what waits for an edge, and what
// each operation costs in system calls. Error paths are in epoll_errors_test.cpp.

namespace aioloop::testing {
namespace {

using std::chrono::milliseconds;
using std::chrono::nanoseconds;

TEST(EpollBackend, NamesItself) {
    epoll_harness h;
    EXPECT_EQ(h.backend().name(), "epoll");
}

// Registration's own event says the data is there: ADD, epoll_wait, then exactly one read.
TEST(EpollBackend, RecvOnReadySocketCostsOneRead) {
    epoll_harness h;
    auto [a, b] = stream_pair();
    write_all(b.get(), "hello");
    auto& op = h.recv(a.get());
    ASSERT_TRUE(h.wait_for(op));
    EXPECT_EQ(op.result, 5);
    EXPECT_EQ(epoll_harness::data_of(op), "hello");
    EXPECT_EQ(h.calls(syscall_name::read), 1u);
    EXPECT_EQ(h.calls(syscall_name::epoll_ctl), 1u);
    EXPECT_EQ(h.stats().eagain, 0u);
}

TEST(EpollBackend, TwoRecvsOnOneFdRegisterOnce) {
    epoll_harness h;
    auto [a, b] = tcp_pair();
    write_all(b.get(), "one");
    auto& first = h.recv(a.get());
    ASSERT_TRUE(h.wait_for(first));
    EXPECT_EQ(epoll_harness::data_of(first), "one");
    auto& second = h.recv(a.get()); // the first read was short: this one waits for the edge
    EXPECT_FALSE(h.is_done(second));
    write_all(b.get(), "two");
    ASSERT_TRUE(h.wait_for(second));
    EXPECT_EQ(epoll_harness::data_of(second), "two");
    EXPECT_EQ(h.calls(syscall_name::epoll_ctl), 1u);
    EXPECT_EQ(h.calls(syscall_name::read), 2u);
    EXPECT_EQ(h.stats().eagain, 0u);
}

// A new socket has room: the send runs inside start(), with no registration and no epoll_wait.
TEST(EpollBackend, SendOnFreshSocketFinishesInStart) {
    epoll_harness h;
    auto [a, b] = stream_pair();
    auto& op = h.send(a.get(), "ping");
    ASSERT_TRUE(h.is_done(op));
    EXPECT_EQ(op.result, 4);
    EXPECT_EQ(read_some(b.get()), "ping");
    EXPECT_EQ(h.calls(syscall_name::write), 1u);
    EXPECT_EQ(h.calls(syscall_name::epoll_ctl), 0u);
    EXPECT_EQ(h.calls(syscall_name::epoll_wait), 0u);
}

// A full buffer probably left more behind: the next recv reads at once, without epoll_wait.
TEST(EpollBackend, RecvAfterAFullBufferReadsAtOnce) {
    epoll_harness h;
    auto [a, b] = stream_pair();
    write_all(b.get(), "abcdef");
    auto& first = h.recv(a.get(), 3);
    ASSERT_TRUE(h.wait_for(first));
    auto waits = h.calls(syscall_name::epoll_wait);
    auto& second = h.recv(a.get(), 3);
    ASSERT_TRUE(h.is_done(second));
    EXPECT_EQ(epoll_harness::data_of(first) + epoll_harness::data_of(second), "abcdef");
    EXPECT_EQ(h.calls(syscall_name::epoll_wait), waits);
}

TEST(EpollBackend, RecvCompletesWhenDataArrivesFromAnotherThread) {
    epoll_harness h;
    auto [a, b] = tcp_pair();
    auto& op = h.recv(a.get());
    ASSERT_FALSE(h.is_done(op));
    std::atomic<bool> go{false};
    std::thread writer([&, fd = b.get()] {
        while (!go.load()) {
            std::this_thread::yield();
        }
        write_all(fd, "from afar");
    });
    go.store(true);
    bool finished = h.wait_for(op);
    writer.join();
    ASSERT_TRUE(finished);
    EXPECT_EQ(epoll_harness::data_of(op), "from afar");
}

// With nothing ready, poll(0) returns at once. A watchdog unblocks a poll that would sleep, so a
// bug fails the test instead of hanging it.
TEST(EpollBackend, PollWithZeroTimeoutDoesNotBlock) {
    epoll_harness h;
    auto [a, b] = stream_pair();
    auto& op = h.recv(a.get());
    std::atomic<bool> returned{false};
    std::atomic<bool> rescued{false};
    std::thread watchdog([&, fd = b.get()] {
        auto give_up = std::chrono::steady_clock::now() + std::chrono::seconds(3);
        while (!returned.load() && std::chrono::steady_clock::now() < give_up) {
            std::this_thread::sleep_for(milliseconds(1));
        }
        if (!returned.load()) {
            rescued.store(true);
            write_all(fd, "x");
        }
    });
    h.turn(nanoseconds{0});
    returned.store(true);
    watchdog.join();
    EXPECT_FALSE(rescued.load()) << "poll(0) slept";
    EXPECT_FALSE(h.is_done(op));
    EXPECT_EQ(h.stats().blocking_waits, 0u);
}

// The kernel never ends a timed wait early (no signals here), so the lower bound is exact.
TEST(EpollBackend, PollWithTimeoutReturnsAfterItWithNothingDone) {
    epoll_harness h;
    auto [a, b] = stream_pair();
    auto& op = h.recv(a.get());
    auto before = std::chrono::steady_clock::now();
    h.turn(milliseconds(30));
    auto slept = std::chrono::steady_clock::now() - before;
    EXPECT_GE(slept, milliseconds(30));
    EXPECT_FALSE(h.is_done(op));
    EXPECT_EQ(h.completed(), 0u);
    EXPECT_EQ(h.stats().blocking_waits, 1u);
    EXPECT_EQ(h.waiting(), 1u);
}

// Full duplex: a recv waits while a send fills the socket; each finishes on its own edge.
TEST(EpollBackend, ConcurrentRecvAndSendOnOneFd) {
    epoll_harness h;
    auto [a, b] = tcp_pair();
    auto& in = h.recv(a.get());
    ASSERT_FALSE(h.is_done(in));
    std::string big(8 << 20, 'z');
    auto& out = h.send(a.get(), big);
    ASSERT_TRUE(h.is_done(out)) << "the first write has room for part of it";
    ASSERT_GT(out.result, 0);
    ASSERT_LT(out.result, static_cast<std::int64_t>(big.size()));
    auto& rest = h.send(a.get(), big.substr(static_cast<std::size_t>(out.result)));
    EXPECT_FALSE(h.is_done(rest)) << "the socket buffer is full";

    write_all(b.get(), "hi");
    ASSERT_TRUE(h.wait_for(in));
    EXPECT_EQ(epoll_harness::data_of(in), "hi");
    EXPECT_FALSE(h.is_done(rest));

    std::size_t drained = 0;
    while (!h.is_done(rest) && drained < big.size()) {
        drained += read_some(b.get(), 1 << 20).size();
        h.turn(nanoseconds{0});
    }
    ASSERT_TRUE(h.wait_for(rest));
    EXPECT_GT(rest.result, 0);
    EXPECT_EQ(h.stats().eagain, 0u);
}

// A poll beside a recv on the same fd: both hear about the data.
TEST(EpollBackend, PollAlongsideRecvOnOneFd) {
    epoll_harness h;
    auto [a, b] = stream_pair();
    auto& in = h.recv(a.get());
    auto& readable = h.poll(a.get(), POLLIN);
    auto& closed = h.poll(a.get(), POLLRDHUP);
    write_all(b.get(), "data");
    ASSERT_TRUE(h.wait_for(in));
    ASSERT_TRUE(h.wait_for(readable));
    EXPECT_EQ(epoll_harness::data_of(in), "data");
    EXPECT_TRUE(readable.result & POLLIN);
    EXPECT_FALSE(h.is_done(closed)) << "data is not a hang-up";

    ::shutdown(b.get(), SHUT_WR);
    ASSERT_TRUE(h.wait_for(closed));
    EXPECT_TRUE(closed.result & POLLRDHUP);
}

// A poll's owner consumes readiness where the backend can't see: the next poll must neither
// spin on a stale flag nor wait for an edge when the fd is still ready.
TEST(EpollBackend, PollIsLevelTriggeredForItsOwner) {
    epoll_harness h;
    scoped_fd efd(::eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC));
    std::uint64_t one = 1;
    ASSERT_EQ(::write(efd.get(), &one, sizeof(one)), 8);

    auto& first = h.poll(efd.get(), POLLIN);
    ASSERT_TRUE(h.wait_for(first));
    auto& again = h.poll(efd.get(), POLLIN); // not drained: still ready
    ASSERT_TRUE(h.is_done(again));
    EXPECT_TRUE(again.result & POLLIN);

    std::uint64_t value = 0;
    ASSERT_EQ(::read(efd.get(), &value, sizeof(value)), 8);
    auto& drained = h.poll(efd.get(), POLLIN);
    h.turn(nanoseconds{0});
    EXPECT_FALSE(h.is_done(drained));
    ASSERT_EQ(::write(efd.get(), &one, sizeof(one)), 8);
    ASSERT_TRUE(h.wait_for(drained));
    EXPECT_EQ(drained.result, POLLIN);
}

// Request and response through the backend on both ends: one read or write per operation, one
// registration per fd, no EAGAIN.
TEST(EpollBackend, EchoCostsOneSyscallPerTransfer) {
    epoll_harness h;
    auto [client, server] = stream_pair();
    constexpr int rounds = 100;
    const std::string request(64, 'q');
    for (int i = 0; i < rounds; ++i) {
        auto& reply_in = h.recv(client.get());
        auto& ask = h.send(client.get(), request);
        ASSERT_TRUE(h.is_done(ask));
        auto& got = h.recv(server.get());
        ASSERT_TRUE(h.wait_for(got));
        auto& answer = h.send(server.get(), epoll_harness::data_of(got));
        ASSERT_TRUE(h.is_done(answer));
        ASSERT_TRUE(h.wait_for(reply_in));
        ASSERT_EQ(epoll_harness::data_of(reply_in), request);
    }
    EXPECT_EQ(h.calls(syscall_name::read), 2u * rounds);
    EXPECT_EQ(h.calls(syscall_name::write), 2u * rounds);
    EXPECT_EQ(h.calls(syscall_name::epoll_ctl), 2u);
    EXPECT_EQ(h.calls(syscall_name::other), 0u);
    EXPECT_EQ(h.stats().eagain, 0u);
}

// More ready fds than one epoll_wait returns: every recv still finishes in one poll().
TEST(EpollBackend, MoreEventsThanOneBatch) {
    epoll_harness h;
    constexpr std::size_t count = backend::epoll_backend::event_batch + 44;
    std::vector<std::pair<scoped_fd, scoped_fd>> pairs;
    std::vector<detail::operation*> ops;
    for (std::size_t i = 0; i < count; ++i) {
        pairs.push_back(stream_pair());
        ops.push_back(&h.recv(pairs.back().first.get()));
        write_all(pairs.back().second.get(), "m");
    }
    h.turn(milliseconds(1000));
    for (auto* op : ops) {
        EXPECT_TRUE(h.is_done(*op));
        EXPECT_EQ(op->result, 1);
    }
    EXPECT_EQ(h.calls(syscall_name::epoll_wait), 2u);
}

} // namespace
} // namespace aioloop::testing
