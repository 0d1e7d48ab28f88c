#include <atomic>
#include <chrono>
#include <cstring>
#include <thread>

#include <poll.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include <aioloop/loop.hpp>

#include "support/loop_fixture.hpp"
#include "support/sockets.hpp"

namespace aioloop {
namespace {

using namespace std::chrono_literals;
using testing::loop_test;

class LoopBasics : public loop_test {};

task<int> add(int a, int b) {
    co_return a + b;
}

task<int> nested() {
    int x = co_await add(1, 2);
    int y = co_await add(x, 10);
    co_return y;
}

TEST_P(LoopBasics, BlockOnReturnsTheTaskValue) {
    EXPECT_EQ(ev().block_on(nested()), 13);
    EXPECT_EQ(ev().backend_name(), to_string(GetParam()));
}

task<void> throws() {
    throw std::runtime_error("boom");
    co_return;
}

TEST_P(LoopBasics, BlockOnRethrows) {
    EXPECT_THROW(ev().block_on(throws()), std::runtime_error);
}

task<std::string> echo_once(loop& l, int fd) {
    std::byte buf[64];
    auto n = co_await l.recv(fd, buf);
    if (!n) {
        co_return "error: " + n.error().message();
    }
    auto sent = co_await l.send(fd, std::span<const std::byte>(buf, *n));
    if (!sent) {
        co_return "send error: " + sent.error().message();
    }
    co_return std::string(reinterpret_cast<const char*>(buf), *n);
}

TEST_P(LoopBasics, RecvAndSendOnASocketPair) {
    auto [a, b] = testing::stream_pair();
    testing::write_all(a.get(), "hello");
    EXPECT_EQ(ev().block_on(echo_once(ev(), b.get())), "hello");
    char back[8] = {};
    pollfd p{a.get(), POLLIN, 0};
    ASSERT_EQ(::poll(&p, 1, 2000), 1);
    EXPECT_EQ(::read(a.get(), back, sizeof(back)), 5);
    EXPECT_STREQ(back, "hello");
}

TEST_P(LoopBasics, RecvWaitsForDataFromAnotherThread) {
    auto [a, b] = testing::stream_pair();
    std::thread writer([fd = a.get()] {
        std::this_thread::sleep_for(50ms);
        testing::write_all(fd, "late");
    });
    EXPECT_EQ(ev().block_on(echo_once(ev(), b.get())), "late");
    writer.join();
}

task<result<std::size_t>> read_with_timeout(loop& l, int fd, clock::duration timeout) {
    std::byte buf[16];
    co_return co_await l.recv(fd, buf).with_timeout(timeout);
}

TEST_P(LoopBasics, ReadTimesOut) {
    auto [a, b] = testing::stream_pair();
    auto r = ev().block_on(read_with_timeout(ev(), b.get(), 30ms));
    ASSERT_FALSE(r);
    EXPECT_EQ(r.error(), std::errc::timed_out);
    // The socket still works afterwards, and the timed-out read took nothing.
    testing::write_all(a.get(), "x");
    auto again = ev().block_on(read_with_timeout(ev(), b.get(), 2s));
    ASSERT_TRUE(again) << again.error().message();
    EXPECT_EQ(*again, 1u);
}

task<std::vector<int>> sleepers(loop& l) {
    std::vector<int> order;
    auto sleeper = [&order](loop& l, int id, std::chrono::milliseconds d) -> task<void> {
        co_await l.sleep_for(d);
        order.push_back(id);
    };
    l.spawn(sleeper(l, 3, 30ms));
    l.spawn(sleeper(l, 1, 10ms));
    l.spawn(sleeper(l, 2, 20ms));
    co_await l.sleep_for(60ms);
    co_return order;
}

TEST_P(LoopBasics, TimersFireInOrder) {
    EXPECT_EQ(ev().block_on(sleepers(ev())), (std::vector<int>{1, 2, 3}));
}

TEST_P(LoopBasics, PostFromOtherThreadsRunsOnTheLoop) {
    std::atomic<int> ran{0};
    std::thread::id loop_thread = std::this_thread::get_id();
    bool all_on_loop_thread = true;
    std::vector<std::thread> posters;
    for (int t = 0; t < 4; ++t) {
        posters.emplace_back([&] {
            for (int i = 0; i < 100; ++i) {
                ev().post([&] {
                    all_on_loop_thread &= std::this_thread::get_id() == loop_thread;
                    if (++ran == 400) {
                        ev().stop();
                    }
                });
            }
        });
    }
    ev().run();
    for (auto& t : posters) {
        t.join();
    }
    EXPECT_EQ(ran.load(), 400);
    EXPECT_TRUE(all_on_loop_thread);
}

task<result<std::size_t>> read_until_stopped(loop& l, int fd) {
    std::byte buf[16];
    co_return co_await l.recv(fd, buf);
}

TEST_P(LoopBasics, StopTokenCancelsAPendingRead) {
    auto [a, b] = testing::stream_pair();
    std::stop_source stop;
    result<std::size_t> outcome = 0;
    auto reader = [&]() -> task<void> { outcome = co_await read_until_stopped(ev(), b.get()); };
    auto stopper = [&]() -> task<void> {
        co_await ev().sleep_for(20ms);
        stop.request_stop();
        co_await ev().sleep_for(20ms);
        ev().stop();
    };
    ev().spawn(reader(), stop.get_token());
    ev().spawn(stopper());
    ev().run();
    ASSERT_FALSE(outcome);
    EXPECT_EQ(outcome.error(), std::errc::operation_canceled);
    EXPECT_EQ(ev().live_tasks(), 0u);
}

TEST_P(LoopBasics, StatsCountOperations) {
    auto [a, b] = testing::stream_pair();
    testing::write_all(a.get(), "hi");
    ev().block_on(echo_once(ev(), b.get()));
    loop_stats s = ev().stats();
    EXPECT_EQ(s.ops_started[static_cast<std::size_t>(op_kind::recv)], 1u);
    EXPECT_EQ(s.ops_completed[static_cast<std::size_t>(op_kind::send)], 1u);
    EXPECT_GT(s.turns, 0u);
    EXPECT_GT(s.total_syscalls(), 0u);
    EXPECT_EQ(s.stale_completions, 0u);
    EXPECT_NE(format_stats(s).find("turns"), std::string::npos);
}

INSTANTIATE_TEST_SUITE_P(AllBackends,
                         LoopBasics,
                         testing::all_backends(),
                         testing::backend_test_name);

} // namespace
} // namespace aioloop
