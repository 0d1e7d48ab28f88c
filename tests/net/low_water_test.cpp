// tcp_stream::set_receive_low_water on every backend: a wait for readability with the mark raised
// does not end for fewer bytes, ends once the mark's worth is queued, and a pending wait ends as
// soon as the mark comes down below what is queued. The kernel does this (SO_RCVLOWAT); the test
// checks that each backend's readiness wait (IOCB_CMD_POLL, epoll, io_uring's poll) sees it, since
// the proxy's bulk streams count on it.

#include <chrono>
#include <optional>
#include <vector>

#include <poll.h>
#include <sys/socket.h>

#include <gtest/gtest.h>

#include <aioloop/net/tcp_listener.hpp>

#include "support/echo_clients.hpp"
#include "support/loop_fixture.hpp"

namespace aioloop {
namespace {

using namespace std::chrono_literals;

// A listener and a connected blocking peer; the test's loop accepts the other end.
class LowWater : public testing::loop_test {
protected:
    void SetUp() override {
        testing::loop_test::SetUp();
        if (IsSkipped()) {
            return;
        }
        auto bound = net::tcp_listener::bind(ev(), *net::address::parse("127.0.0.1:0"));
        ASSERT_TRUE(bound) << bound.error().message();
        listener_.emplace(std::move(*bound));
        peer_ = testing::connect_blocking(listener_->local_address());
        ASSERT_GE(peer_.get(), 0);
    }

    // The accepted end, or nothing (and the test failed).
    task<std::optional<net::tcp_stream>> accept_peer() {
        auto accepting = listener_->accept();
        auto accepted = co_await std::move(accepting);
        if (!accepted) {
            ADD_FAILURE() << "accept: " << accepted.error().message();
            co_return std::nullopt;
        }
        co_return std::move(*accepted);
    }

    std::optional<net::tcp_listener> listener_;
    testing::scoped_fd peer_;
};

constexpr std::size_t mark = 64 * 1024;

bool send_bytes(int fd, std::size_t n) {
    std::vector<char> bytes(n, 'x');
    return ::send(fd, bytes.data(), n, MSG_NOSIGNAL) == static_cast<ssize_t>(n);
}

TEST_P(LowWater, AWaitEndsOnlyOnceTheMarkIsQueuedOrLowered) {

    result<std::size_t> short_of_mark = 0;
    result<std::size_t> at_mark = tl::unexpected(std::make_error_code(std::errc::timed_out));
    result<std::size_t> lowered = tl::unexpected(std::make_error_code(std::errc::timed_out));
    std::size_t drained = 0;
    auto main = [&]() -> task<void> {
        auto accepting = accept_peer();
        auto accepted = co_await std::move(accepting);
        if (!accepted) {
            co_return;
        }
        net::tcp_stream s = std::move(*accepted);
        auto raised = s.set_receive_low_water(mark);
        EXPECT_TRUE(raised) << raised.error().message();

        // Less than the mark: the wait runs out.
        EXPECT_TRUE(send_bytes(peer_.get(), 1000));
        auto below = ev().fd_readable(s.fd()).with_timeout(100ms);
        short_of_mark = co_await std::move(below);

        // The rest of the mark arrives: the wait ends.
        EXPECT_TRUE(send_bytes(peer_.get(), mark - 1000));
        auto reaching = ev().fd_readable(s.fd()).with_timeout(10s);
        at_mark = co_await std::move(reaching);

        // Drain, then a wait pending with 1000 bytes queued ends when the mark comes down.
        std::vector<std::byte> buf(2 * mark);
        while (drained < mark) {
            auto reading = s.read(buf).with_timeout(10s);
            auto n = co_await std::move(reading);
            if (!n || *n == 0) {
                ADD_FAILURE() << "read after " << drained << " bytes";
                co_return;
            }
            drained += *n;
        }
        EXPECT_TRUE(send_bytes(peer_.get(), 1000));
        auto lowering = [&]() -> task<void> {
            auto pause = ev().sleep_for(50ms); // the wait below is in the kernel by then
            co_await pause;
            auto down = s.set_receive_low_water(1);
            EXPECT_TRUE(down) << down.error().message();
        };
        ev().spawn(lowering());
        auto waiting = ev().fd_readable(s.fd()).with_timeout(10s);
        lowered = co_await std::move(waiting);
    };
    ev().block_on(main());

    ASSERT_FALSE(short_of_mark) << "ready with 1000 of " << mark << " bytes";
    EXPECT_EQ(short_of_mark.error(), std::errc::timed_out) << short_of_mark.error().message();
    ASSERT_TRUE(at_mark) << at_mark.error().message();
    EXPECT_NE(*at_mark & POLLIN, 0u);
    EXPECT_EQ(drained, mark);
    ASSERT_TRUE(lowered) << lowered.error().message();
    EXPECT_NE(*lowered & POLLIN, 0u);
}

TEST_P(LowWater, APendingReadWaitsForTheMarkToo) {
    result<std::size_t> first = 0;
    result<std::size_t> short_read = 0;
    auto main = [&]() -> task<void> {
        auto accepting = accept_peer();
        auto accepted = co_await std::move(accepting);
        if (!accepted) {
            co_return;
        }
        net::tcp_stream s = std::move(*accepted);
        std::vector<std::byte> buf(2 * mark);
        EXPECT_TRUE(send_bytes(peer_.get(), 1000));
        auto reading = s.read(buf).with_timeout(10s);
        first = co_await std::move(reading);
        EXPECT_TRUE(s.set_receive_low_water(mark));
        auto sending = [&]() -> task<void> {
            auto pause = ev().sleep_for(50ms); // the read below is in the kernel by then
            co_await pause;
            EXPECT_TRUE(send_bytes(peer_.get(), 1000));
        };
        ev().spawn(sending());
        auto waiting = s.read(buf).with_timeout(300ms);
        short_read = co_await std::move(waiting);
    };
    ev().block_on(main());
    ASSERT_TRUE(first) << first.error().message();
    EXPECT_EQ(*first, 1000u);
    ASSERT_FALSE(short_read) << "read " << *short_read << " bytes below the mark";
    EXPECT_EQ(short_read.error(), std::errc::timed_out);
}

INSTANTIATE_TEST_SUITE_P(AllBackends,
                         LowWater,
                         testing::all_backends(),
                         testing::backend_test_name);

} // namespace
} // namespace aioloop
