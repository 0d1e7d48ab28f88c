// signal_set: signals raised in this process reach wait() on every backend, and the handlers
// that were there before come back when the set goes.

#include <chrono>
#include <optional>

#include <signal.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include <aioloop/signals.hpp>

#include "support/loop_echo.hpp"
#include "support/loop_fixture.hpp"

namespace aioloop {
namespace {

using namespace std::chrono_literals;

class Signals : public testing::loop_test {};

task<result<int>> next_signal(signal_set* set) {
    auto waiting = set->wait();
    co_return co_await std::move(waiting);
}

TEST_P(Signals, RaiseAndKillReachWait) {
    auto set = signal_set::create(ev(), {SIGUSR2, SIGTERM});
    ASSERT_TRUE(set) << set.error().message();
    std::vector<int> got;
    auto main = [&]() -> task<void> {
        // Raised while nobody waits: kept for the next wait().
        ::raise(SIGUSR2);
        auto first = next_signal(&*set);
        auto a = co_await std::move(first);
        got.push_back(a ? *a : -1);
        // Sent while the loop sleeps in its wait.
        ev().spawn([]() -> task<void> {
            auto nap = loop::current()->sleep_for(20ms);
            co_await nap;
            ::kill(::getpid(), SIGTERM);
        }());
        auto second = next_signal(&*set);
        auto b = co_await std::move(second);
        got.push_back(b ? *b : -1);
    };
    ev().block_on(main());
    EXPECT_EQ(got, (std::vector<int>{SIGUSR2, SIGTERM}));
}

TEST_P(Signals, WaitIsCancelledByAStop) {
    auto set = signal_set::create(ev(), {SIGUSR2});
    ASSERT_TRUE(set) << set.error().message();
    std::optional<std::error_code> out;
    std::stop_source stop;
    ev().spawn(
        [](signal_set* s, std::optional<std::error_code>* o) -> task<void> {
            auto waiting = next_signal(s);
            auto r = co_await std::move(waiting);
            *o = r ? std::error_code{} : r.error();
        }(&*set, &out),
        stop.get_token());
    auto main = [&]() -> task<void> {
        auto nap = ev().sleep_for(20ms);
        co_await nap;
        stop.request_stop();
        auto done = testing::wait_until([&] { return out.has_value(); }, 2s);
        co_await std::move(done);
    };
    ev().block_on(main());
    ASSERT_TRUE(out.has_value());
    EXPECT_EQ(*out, std::errc::operation_canceled);
}

TEST_P(Signals, OneSetPerSignalAndHandlersRestored) {
    struct sigaction before {};
    ::sigaction(SIGUSR2, nullptr, &before);
    {
        auto set = signal_set::create(ev(), {SIGUSR2});
        ASSERT_TRUE(set) << set.error().message();
        auto again = signal_set::create(ev(), {SIGUSR2});
        ASSERT_FALSE(again);
        EXPECT_EQ(again.error(), std::errc::device_or_resource_busy);
    }
    struct sigaction after {};
    ::sigaction(SIGUSR2, nullptr, &after);
    EXPECT_EQ(after.sa_handler, before.sa_handler);
}

INSTANTIATE_TEST_SUITE_P(AllBackends, Signals, testing::all_backends(), testing::backend_test_name);

} // namespace
} // namespace aioloop
