// A connection closed by another task while a read, a write (blocked on a full socket) and their
// deadline timers are pending on it: both operations end (cancelled), nothing touches the freed
// records (ASan), and the fd number, reused at once by the next accepted connection, works, also
// after the old deadlines would have expired.

#include <atomic>
#include <chrono>
#include <thread>

#include <sys/socket.h>

#include <gtest/gtest.h>

#include <aioloop/net/tcp_listener.hpp>

#include "support/echo_clients.hpp"
#include "support/loop_echo.hpp"
#include "support/loop_fixture.hpp"

namespace aioloop {
namespace {

using namespace std::chrono_literals;

class ClosePending : public testing::loop_test {};

TEST_P(ClosePending, ReadWriteAndTimersPendingWhenClosed) {
    auto listener = net::tcp_listener::bind(ev(), *net::address::parse("127.0.0.1:0"));
    ASSERT_TRUE(listener) << listener.error().message();
    auto at = listener->local_address();
    // Both clients connect now (the backlog completes the handshake), so that no socket is made
    // between the close and the next accept: that accept gets the closed fd's number.
    auto first = testing::connect_blocking(at);
    int small = 8 * 1024;
    ::setsockopt(first.get(), SOL_SOCKET, SO_RCVBUF, &small, sizeof(small));
    auto second = testing::connect_blocking(at);

    std::vector<std::byte> big(16 << 20, std::byte{1});
    result<std::size_t> read_result = 0;
    result<std::size_t> write_result = 0;
    bool read_done = false;
    bool write_done = false;
    bool sleeper_done = false;
    int closed_fd = -1;
    int reused_fd = -1;
    testing::echo_server_state state;
    std::atomic<bool> client_done{false};
    std::string client_error;
    std::thread client;

    auto main = [&]() -> task<void> {
        auto accepting = listener->accept();
        auto accepted = co_await std::move(accepting);
        if (!accepted) {
            ADD_FAILURE() << "accept: " << accepted.error().message();
            co_return;
        }
        net::tcp_stream s = std::move(*accepted);
        closed_fd = s.fd();
        auto reader = [&]() -> task<void> {
            std::byte buf[256];
            auto reading = s.read(buf).with_timeout(300ms);
            read_result = co_await std::move(reading);
            read_done = true;
        };
        auto writer = [&]() -> task<void> {
            auto writing = s.write(big).with_timeout(300ms);
            write_result = co_await std::move(writing);
            write_done = true;
        };
        auto sleeper = [&]() -> task<void> {
            auto nap = ev().sleep_for(300ms);
            co_await nap;
            sleeper_done = true;
        };
        ev().spawn(reader());
        ev().spawn(writer());
        ev().spawn(sleeper());
        // Let both operations reach the kernel and the write fill the socket.
        auto settle = ev().sleep_for(50ms);
        co_await settle;
        EXPECT_FALSE(read_done);
        EXPECT_FALSE(write_done);
        s.close();
        auto ended = testing::wait_until([&] { return read_done && write_done; }, 2s);
        bool ended_in_time = co_await std::move(ended);
        EXPECT_TRUE(ended_in_time);

        // The number is free again: the next connection gets it and must work, through and past
        // the moment the old operations' deadlines would have fired.
        auto next = listener->accept();
        auto again = co_await std::move(next);
        if (!again) {
            ADD_FAILURE() << "accept: " << again.error().message();
            co_return;
        }
        reused_fd = again->fd();
        ev().spawn(testing::echo_connection(std::move(*again), 4096, &state));
        client = std::thread([&, fd = second.get()] {
            for (std::size_t m = 0; m < 8 && client_error.empty(); ++m) {
                client_error = testing::echo_blocking(fd, 1, m, 64 * 1024);
                std::this_thread::sleep_for(60ms);
            }
            client_done = true;
        });
        auto served = testing::wait_until([&] { return client_done.load() && sleeper_done; }, 5s);
        bool served_in_time = co_await std::move(served);
        EXPECT_TRUE(served_in_time);
    };
    ev().block_on(main());
    if (client.joinable()) {
        client.join();
    }
    second.reset(); // end of stream for the echo task
    auto unwind = [&]() -> task<void> {
        auto gone = testing::wait_until([&] { return state.open == 0; }, 2s);
        co_await std::move(gone);
    };
    ev().block_on(unwind());

    ASSERT_TRUE(read_done && write_done);
    ASSERT_FALSE(read_result);
    EXPECT_EQ(read_result.error(), std::errc::operation_canceled) << read_result.error().message();
    ASSERT_FALSE(write_result);
    EXPECT_EQ(write_result.error(), std::errc::operation_canceled)
        << write_result.error().message();
    EXPECT_TRUE(sleeper_done);
    EXPECT_EQ(reused_fd, closed_fd);
    EXPECT_EQ(client_error, "");
    EXPECT_TRUE(state.errors.empty()) << state.errors.front();
    EXPECT_EQ(state.bytes, 8u * 64 * 1024);
    EXPECT_EQ(ev().live_tasks(), 0u);
    EXPECT_EQ(ev().stats().stale_completions, 0u);
}

INSTANTIATE_TEST_SUITE_P(AllBackends,
                         ClosePending,
                         testing::all_backends(),
                         testing::backend_test_name);

} // namespace
} // namespace aioloop
