// Thousands of timers with random deadlines, spread over the same turns as echo traffic on many
// connections: each fires no earlier than its deadline, and in deadline order.

#include <algorithm>
#include <atomic>
#include <chrono>
#include <random>
#include <thread>

#include <gtest/gtest.h>

#include <aioloop/net/tcp_listener.hpp>

#include "support/echo_clients.hpp"
#include "support/loop_echo.hpp"
#include "support/loop_fixture.hpp"

namespace aioloop {
namespace {

using namespace std::chrono_literals;

class TimersUnderLoad : public testing::loop_test {};

struct firing {
    clock::time_point deadline;
    clock::time_point fired;
};

task<void> sleeper(loop* l, clock::time_point deadline, std::vector<firing>* log) {
    auto nap = l->sleep_until(deadline);
    auto slept = co_await nap;
    if (slept) {
        log->push_back({deadline, clock::now()});
    }
}

TEST_P(TimersUnderLoad, ThousandsFireInOrderWhileEchoRuns) {
    constexpr int timers = 3000;
    auto listener = net::tcp_listener::bind(ev(), *net::address::parse("127.0.0.1:0"));
    ASSERT_TRUE(listener) << listener.error().message();
    testing::echo_load load;
    for (int i = 0; i < 100; ++i) {
        load.targets.push_back(listener->local_address());
    }
    load.rounds = 4;
    load.seed = 7;
    testing::echo_server_state state;
    std::stop_source stop;
    ev().spawn(testing::accept_echo(&*listener, 32 * 1024, &state), stop.get_token());

    std::vector<firing> log;
    log.reserve(timers);
    std::mt19937 rng(3);
    std::uniform_int_distribution<int> after_us(0, 400'000);
    // Every deadline is still ahead when its timer is armed (an expired one completes at once,
    // in spawn order, which is not what this test is about).
    auto start = clock::now() + 50ms;
    for (int i = 0; i < timers; ++i) {
        ev().spawn(sleeper(&ev(), start + std::chrono::microseconds(after_us(rng)), &log));
    }
    std::atomic<bool> clients_done{false};
    testing::echo_report report;
    std::thread clients([&] {
        report = testing::run_echo_clients(load);
        clients_done = true;
    });
    auto main = [&]() -> task<void> {
        auto all = testing::wait_until(
            [&] { return clients_done.load() && log.size() == timers && state.open == 0; }, 15s);
        co_await std::move(all);
        stop.request_stop();
        auto unwound = testing::wait_until([&] { return ev().live_tasks() == 1; }, 5s);
        co_await std::move(unwound);
    };
    ev().block_on(main());
    clients.join();

    EXPECT_TRUE(report.ok) << report.error;
    EXPECT_TRUE(state.errors.empty()) << state.errors.front();
    ASSERT_EQ(log.size(), static_cast<std::size_t>(timers));
    for (std::size_t i = 0; i < log.size(); ++i) {
        EXPECT_GE(log[i].fired, log[i].deadline) << "timer " << i << " fired early";
        if (i > 0) {
            ASSERT_LE(log[i - 1].deadline, log[i].deadline) << "timer " << i << " out of order";
        }
    }
    EXPECT_GE(ev().stats().timers_fired, static_cast<std::uint64_t>(timers));
    EXPECT_EQ(ev().stats().stale_completions, 0u);
}

INSTANTIATE_TEST_SUITE_P(AllBackends,
                         TimersUnderLoad,
                         testing::all_backends(),
                         testing::backend_test_name);

} // namespace
} // namespace aioloop
