// The proxy's receive low-water mark for bulk streams: the policy (when it is raised, when the
// proxy gives up on it), and `aioloop proxy` on every backend, whose client sends bursts of 4 MiB,
// each followed, once every bulk byte has reached the upstream, by a short tail that the upstream
// answers. The first two tails find the mark raised and wait for it to run out; two such short
// waits 4 MiB apart mean a dialogue, and the proxy gives up on the mark, so the third tail goes
// through at once. With a 1 s wait the delays are far apart from any scheduling noise.

#include <atomic>
#include <chrono>
#include <thread>

#include <gtest/gtest.h>

#include "apps/proxy_harness.hpp"
#include "apps/proxy_low_water.hpp"

namespace {

using namespace std::chrono_literals;
using aioloop::apps::detail::low_water_policy;
using namespace aioloop::testing::proxy;
using aioloop::testing::scoped_fd;
using aioloop::testing::tool_server;

constexpr std::size_t mark = 256 * 1024;

TEST(LowWaterPolicy, RaisesOnlyOnceTwoMarksHaveMovedSinceIdle) {
    low_water_policy policy(mark);
    policy.read(mark);
    EXPECT_FALSE(policy.should_raise()); // a response of one mark never pays for it
    policy.read(mark);
    EXPECT_TRUE(policy.should_raise());
    policy.set_raised(true);
    EXPECT_FALSE(policy.should_raise()); // already up
    policy.set_raised(false);
    policy.went_idle();
    EXPECT_FALSE(policy.should_raise());
    policy.read(2 * mark);
    EXPECT_TRUE(policy.should_raise());
}

TEST(LowWaterPolicy, NeverRaisesAMarkOfZeroOrOne) {
    for (std::size_t off : {std::size_t{0}, std::size_t{1}}) {
        low_water_policy policy(off);
        policy.read(std::size_t{1} << 30);
        EXPECT_FALSE(policy.should_raise()) << off;
    }
}

TEST(LowWaterPolicy, GivesUpOnTwoShortWaitsCloseTogetherUntilIdle) {
    constexpr std::size_t spacing = low_water_policy::short_wait_spacing * mark;
    low_water_policy policy(mark);
    policy.read(4 * mark);
    policy.fell_short(100); // the first: a burst ended, or the sender was not running
    EXPECT_TRUE(policy.should_raise());
    policy.read(spacing);
    policy.fell_short(100); // far from the first: a bulk stream now and then short
    EXPECT_TRUE(policy.should_raise());
    policy.read(spacing - 1);
    policy.fell_short(100); // close to the last: a dialogue of big messages
    EXPECT_FALSE(policy.should_raise());
    policy.read(100 * spacing);
    EXPECT_FALSE(policy.should_raise()); // until idle
    policy.went_idle();
    policy.read(2 * mark);
    EXPECT_TRUE(policy.should_raise());
    policy.fell_short(100); // a new stream: its first short wait is forgiven again
    EXPECT_TRUE(policy.should_raise());
}

TEST(LowWaterPolicy, AWaitThatBroughtHalfTheMarkIsNotShort) {
    low_water_policy policy(mark);
    policy.read(2 * mark);
    policy.fell_short(mark / 2); // a sender that paused, not one that stopped
    policy.fell_short(mark / 2);
    policy.fell_short(100);
    EXPECT_TRUE(policy.should_raise());
}

class ProxyLowWater : public proxy_tool_test {};

TEST_P(ProxyLowWater, TailsWaitForTheMarkTwiceThenGoThroughAtOnce) {
    constexpr std::size_t burst = 4u << 20;
    constexpr std::size_t tail = 1000;
    constexpr auto wait = 1000ms;
    scoped_fd listener = listen_loopback();
    tool_server s = start_proxy(
        "127.0.0.1:" + std::to_string(local_port(listener.get())),
        {"--bulk-low-water-wait-us",
         std::to_string(std::chrono::duration_cast<std::chrono::microseconds>(wait).count())});
    ASSERT_NE(s.port, 0);
    scoped_fd client = connect_to("127.0.0.1", s.port);
    ASSERT_GE(client.get(), 0);
    scoped_fd upstream = accept_one(listener.get());
    ASSERT_GE(upstream.get(), 0);

    // The upstream counts what arrives and answers each burst's last byte.
    std::atomic<std::size_t> arrived{0};
    std::thread upstream_side([&] {
        std::vector<char> buf(1 << 16);
        for (int round = 1; round <= 3; ++round) {
            std::size_t want = round * (burst + tail);
            while (arrived < want) {
                ssize_t n =
                    ::recv(upstream.get(), buf.data(), std::min(buf.size(), want - arrived), 0);
                if (n <= 0) {
                    return;
                }
                arrived += static_cast<std::size_t>(n);
            }
            if (!send_all(upstream.get(), "ok")) {
                return;
            }
        }
    });

    std::vector<char> bulk(burst, 'b');
    std::vector<char> small(tail, 't');
    std::chrono::steady_clock::duration answered_after[3]{};
    for (int round = 0; round < 3; ++round) {
        ASSERT_TRUE(send_all(client.get(), bulk.data(), bulk.size()));
        // Every bulk byte reaches the upstream before the tail is sent, so that the tail alone is
        // what the proxy's next wait sees.
        std::size_t bulk_done = round * (burst + tail) + burst;
        auto deadline = std::chrono::steady_clock::now() + 10s;
        while (arrived < bulk_done && std::chrono::steady_clock::now() < deadline) {
            std::this_thread::sleep_for(100us);
        }
        ASSERT_EQ(arrived.load(), bulk_done) << "round " << round;
        auto sent_at = std::chrono::steady_clock::now();
        ASSERT_TRUE(send_all(client.get(), small.data(), small.size()));
        char answer[2];
        ASSERT_EQ(::recv(client.get(), answer, sizeof(answer), MSG_WAITALL), 2) << round;
        answered_after[round] = std::chrono::steady_clock::now() - sent_at;
    }
    upstream_side.join();
    client.reset(); // both ends close: the proxy stops without waiting for the pair
    upstream.reset();
    auto ms = [](auto d) {
        return std::chrono::duration_cast<std::chrono::milliseconds>(d).count();
    };
    // The wait began when the last bulk read was issued, a little before the tail was sent.
    EXPECT_GE(answered_after[0], wait * 8 / 10) << ms(answered_after[0]) << " ms";
    EXPECT_GE(answered_after[1], wait * 8 / 10) << ms(answered_after[1]) << " ms";
    EXPECT_LT(answered_after[2], wait * 8 / 10) << ms(answered_after[2]) << " ms";
    EXPECT_EQ(stop(s), 0) << s.process->err();
}

INSTANTIATE_TEST_SUITE_P(AllBackends, ProxyLowWater, all_backends(), backend_name);

} // namespace
