// Echo over many connections at once, IPv4 and IPv6, with message sizes from 1 byte to 256 KiB:
// the server is the library (a listener and a task per connection), the clients are plain
// sockets on another thread that check every byte.

#include <atomic>
#include <chrono>
#include <thread>

#include <gtest/gtest.h>

#include <aioloop/net/tcp_listener.hpp>

#include "support/echo_clients.hpp"
#include "support/loop_echo.hpp"
#include "support/loop_fixture.hpp"

namespace aioloop {
namespace {

using namespace std::chrono_literals;

class EchoMany : public testing::loop_test {};

TEST_P(EchoMany, TwoHundredConnectionsEveryByteChecked) {
    auto v4 = net::tcp_listener::bind(ev(), *net::address::parse("127.0.0.1:0"));
    ASSERT_TRUE(v4) << v4.error().message();
    auto v6 = net::tcp_listener::bind(ev(), *net::address::parse("[::1]:0"));
    if (!v6) {
        // A kernel without IPv6 on loopback: the IPv4 part still runs.
        std::fprintf(stderr, "no ::1 here (%s): IPv4 only\n", v6.error().message().c_str());
    }
    testing::echo_load load;
    for (int i = 0; i < 200; ++i) {
        load.targets.push_back(v4->local_address());
    }
    for (int i = 0; v6 && i < 40; ++i) {
        load.targets.push_back(v6->local_address());
    }
    load.seed = 42;

    testing::echo_server_state state;
    std::stop_source stop;
    ev().spawn(testing::accept_echo(&*v4, 64 * 1024, &state), stop.get_token());
    if (v6) {
        ev().spawn(testing::accept_echo(&*v6, 64 * 1024, &state), stop.get_token());
    }
    std::atomic<bool> clients_done{false};
    testing::echo_report report;
    std::thread clients([&] {
        report = testing::run_echo_clients(load);
        clients_done = true;
    });
    auto main = [&]() -> task<bool> {
        auto finished = testing::wait_until([&] { return clients_done.load(); }, 20s);
        bool done = co_await std::move(finished);
        // Connections end with the clients' close; then the accept loops are stopped.
        auto closed = testing::wait_until([&] { return state.open == 0; }, 5s);
        co_await std::move(closed);
        stop.request_stop();
        auto unwound = testing::wait_until([&] { return ev().live_tasks() == 1; }, 5s);
        co_await std::move(unwound);
        co_return done;
    };
    bool done = ev().block_on(main());
    clients.join();
    ASSERT_TRUE(done);
    EXPECT_TRUE(report.ok) << report.error;
    EXPECT_EQ(report.messages, load.targets.size() * 2);
    EXPECT_EQ(state.accepted, load.targets.size());
    EXPECT_EQ(state.bytes, report.bytes);
    EXPECT_TRUE(state.errors.empty()) << state.errors.front();
    EXPECT_EQ(state.open, 0u);
    EXPECT_EQ(ev().live_tasks(), 0u);
    EXPECT_EQ(ev().stats().stale_completions, 0u);
}

INSTANTIATE_TEST_SUITE_P(AllBackends,
                         EchoMany,
                         testing::all_backends(),
                         testing::backend_test_name);

} // namespace
} // namespace aioloop
