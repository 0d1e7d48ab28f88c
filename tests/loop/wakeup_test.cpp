// Cross-thread post() while the loop sleeps in its blocking wait with no timer: every post must
// wake it (an eventfd watched like any other fd), or this test hangs into its watchdog.

#include <atomic>
#include <chrono>
#include <thread>

#include <gtest/gtest.h>

#include <aioloop/loop.hpp>

#include "support/loop_fixture.hpp"

namespace aioloop {
namespace {

using namespace std::chrono_literals;

class Wakeup : public testing::loop_test {};

TEST_P(Wakeup, PostWakesALoopBlockedWithoutTimers) {
    constexpr int posts = 20;
    std::atomic<int> ran{0};
    std::atomic<bool> watchdog_fired{false};
    std::thread poster([&] {
        for (int i = 0; i < posts; ++i) {
            // Long enough for the loop to be asleep in the kernel again, with nothing due.
            std::this_thread::sleep_for(5ms);
            ev().post([&] { ++ran; });
            for (int spin = 0; spin < 4000 && ran.load() <= i; ++spin) {
                std::this_thread::sleep_for(500us);
            }
        }
        ev().post([&] { ev().stop(); });
    });
    // A watchdog on another thread, not a timer, so that the loop really has no deadline.
    std::thread watchdog([&] {
        for (int i = 0; i < 1000 && ran.load() < posts; ++i) {
            std::this_thread::sleep_for(10ms);
        }
        if (ran.load() < posts) {
            watchdog_fired = true;
            ev().stop();
        }
    });
    ev().run();
    poster.join();
    watchdog.join();
    EXPECT_FALSE(watchdog_fired);
    EXPECT_EQ(ran.load(), posts);
    loop_stats s = ev().stats();
    // The loop did sleep between posts (else this test proves nothing about wake-ups).
    EXPECT_GE(s.blocking_waits, static_cast<std::uint64_t>(posts / 2));
    EXPECT_EQ(s.timers_fired, 0u);
    EXPECT_EQ(s.stale_completions, 0u);
}

TEST_P(Wakeup, StopFromAnotherThreadEndsABlockedRun) {
    std::thread stopper([&] {
        std::this_thread::sleep_for(20ms);
        ev().stop();
    });
    ev().run();
    stopper.join();
    EXPECT_GE(ev().stats().blocking_waits, 1u);
}

INSTANTIATE_TEST_SUITE_P(AllBackends, Wakeup, testing::all_backends(), testing::backend_test_name);

} // namespace
} // namespace aioloop
