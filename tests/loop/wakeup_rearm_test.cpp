// A post that arrives while the loop is running earlier posts: the wake-up eventfd is readable
// again by the time the loop re-arms its watch on it, so the backend may finish that poll inside
// start() (epoll checks with poll(2) and answers at once). That wake-up must still run the posts:
// once it was dropped, the loop slept forever with the eventfd's count at 1 (found with
// 'aioloop http --backend epoll', whose blocking pool posts its results back).

#include <atomic>
#include <chrono>
#include <functional>
#include <thread>

#include <gtest/gtest.h>

#include <aioloop/loop.hpp>
#include <aioloop/task.hpp>

#include "support/loop_fixture.hpp"

namespace aioloop {
namespace {

using namespace std::chrono_literals;

class WakeupRearm : public testing::loop_test {};

// Ends the loop after `limit` if the test has not: a lost wake-up leaves the loop asleep, but a
// timer still bounds its sleep, so this fails the test instead of hanging it.
task<void> watchdog(loop* ev, std::chrono::milliseconds limit, std::atomic<bool>* fired) {
    auto slept = co_await ev->sleep_for(limit);
    if (!slept) {
        co_return; // stopped: the test finished in time
    }
    *fired = true;
    ev->stop();
}

TEST_P(WakeupRearm, PostFromAnotherThreadDuringAPostedFunctionRuns) {
    constexpr int chain = 200;
    std::atomic<int> ran{0};
    std::atomic<bool> fired{false};
    std::stop_source stop_watchdog;
    // Each posted function has another thread post the next one and waits until it has: the
    // eventfd is written while the loop is between reading it and watching it again.
    std::function<void()> step = [&] {
        if (++ran == chain) {
            stop_watchdog.request_stop();
            ev().stop();
            return;
        }
        std::thread poster([&] { ev().post(step); });
        poster.join();
    };
    ev().spawn(watchdog(&ev(), 5s, &fired), stop_watchdog.get_token());
    ev().post(step);
    ev().run();
    EXPECT_FALSE(fired) << "a wake-up was lost after " << ran.load() << " posts";
    EXPECT_EQ(ran.load(), chain);
}

TEST_P(WakeupRearm, PostFromTheLoopThreadDuringAPostedFunctionRuns) {
    constexpr int chain = 200;
    int ran = 0;
    std::atomic<bool> fired{false};
    std::stop_source stop_watchdog;
    std::function<void()> step = [&] {
        if (++ran == chain) {
            stop_watchdog.request_stop();
            ev().stop();
            return;
        }
        ev().post(step);
    };
    ev().spawn(watchdog(&ev(), 5s, &fired), stop_watchdog.get_token());
    ev().post(step);
    ev().run();
    EXPECT_FALSE(fired) << "a wake-up was lost after " << ran << " posts";
    EXPECT_EQ(ran, chain);
}

INSTANTIATE_TEST_SUITE_P(AllBackends,
                         WakeupRearm,
                         testing::all_backends(),
                         testing::backend_test_name);

} // namespace
} // namespace aioloop
