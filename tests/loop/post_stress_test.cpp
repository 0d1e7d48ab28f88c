// post() from other threads must never be lost, whatever the timing against the loop's sleep:
// every post runs, and the loop wakes for each burst even when it was just about to sleep.

#include <atomic>
#include <chrono>
#include <random>
#include <thread>
#include <vector>

#include <gtest/gtest.h>

#include <aioloop/loop.hpp>

#include "support/loop_fixture.hpp"

namespace aioloop {
namespace {

using namespace std::chrono_literals;

class PostStress : public testing::loop_test {};

TEST_P(PostStress, EveryPostRunsWhileTheLoopSleepsBetweenThem) {
    constexpr int threads = 3;
    constexpr int posts_each = 3000;
    std::atomic<int> ran{0};
    std::vector<std::thread> posters;
    for (int t = 0; t < threads; ++t) {
        posters.emplace_back([&, t] {
            std::minstd_rand random(static_cast<unsigned>(t + 1));
            for (int i = 0; i < posts_each; ++i) {
                ev().post([&] {
                    if (++ran == threads * posts_each) {
                        ev().stop();
                    }
                });
                // Mostly back to back, sometimes long enough for the loop to fall asleep.
                if (random() % 8 == 0) {
                    std::this_thread::sleep_for(std::chrono::microseconds(random() % 200));
                }
            }
        });
    }
    // A watchdog so that a lost wake-up fails the test instead of hanging it.
    std::atomic<bool> finished{false};
    std::thread watchdog([&] {
        for (int i = 0; i < 200 && !finished; ++i) {
            std::this_thread::sleep_for(50ms);
        }
        if (!finished) {
            ev().stop();
        }
    });
    ev().run();
    finished = true;
    watchdog.join();
    for (auto& poster : posters) {
        poster.join();
    }
    EXPECT_EQ(ran.load(), threads * posts_each);
}

INSTANTIATE_TEST_SUITE_P(AllBackends,
                         PostStress,
                         testing::all_backends(),
                         testing::backend_test_name);

} // namespace
} // namespace aioloop
