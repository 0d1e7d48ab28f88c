// The proxy's receive low-water mark for bulk streams: the policy (when it is raised, when the
// proxy gives up on it), and `aioloop proxy` on every backend, whose client sends bursts of 4 MiB,
// each followed, once every byte of the burst has reached the upstream, by a short tail that the
// upstream answers. The first tail finds the mark raised (again, if the burst's own end fell short
// of it) and waits for the wait to run out. The next stop short of the mark, the end of the second
// burst or its tail, comes after an answer: a dialogue, so the proxy gives up on the mark and the
// third tail goes through at once. The --stats and /metrics counters
// report the same.
// With a 1 s wait the delays are far apart from any scheduling noise.

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

TEST(LowWaterPolicy, RaisesOnlyOnceTwoMarksCameOneWay) {
    low_water_policy policy(mark);
    const std::uint32_t answers = 0;
    policy.read(mark, answers);
    EXPECT_FALSE(policy.should_raise()); // a response of one mark never pays for it
    policy.read(mark, answers);
    EXPECT_TRUE(policy.should_raise());
    policy.set_raised(true);
    EXPECT_FALSE(policy.should_raise()); // already up
    policy.set_raised(false);
    policy.new_stream();
    EXPECT_FALSE(policy.should_raise());
    policy.read(2 * mark, answers);
    EXPECT_TRUE(policy.should_raise());
}

TEST(LowWaterPolicy, AnAnswerStartsTheCountAgain) {
    low_water_policy policy(mark);
    std::uint32_t answers = 0;
    policy.read(2 * mark - 1, answers);
    ++answers; // the other direction read: the peer was answered, this is a dialogue
    policy.read(mark, answers);
    EXPECT_FALSE(policy.should_raise());
    for (std::size_t n = 0; n < mark; n += 1000) {
        policy.read(1000, answers); // one way, however small the reads
    }
    EXPECT_TRUE(policy.should_raise());
}

TEST(LowWaterPolicy, NeverRaisesAMarkOfZeroOrOne) {
    for (std::size_t off : {std::size_t{0}, std::size_t{1}}) {
        low_water_policy policy(off);
        const std::uint32_t answers = 0;
        policy.read(std::size_t{1} << 30, answers);
        EXPECT_FALSE(policy.should_raise()) << off;
    }
}

TEST(LowWaterPolicy, GivesUpWhenThePeerAnsweredBetweenTwoShortWaitsUntilANewStream) {
    low_water_policy policy(mark);
    std::uint32_t answers = 0;
    policy.read(4 * mark, answers);
    policy.fell_short(answers); // a message ended, or the sender was not running
    policy.read(100, answers);
    EXPECT_TRUE(policy.should_raise()); // no answer: the stream goes on
    policy.fell_short(answers);         // stopped again, still unanswered: a stream that stalls
    policy.read(100, answers);
    EXPECT_TRUE(policy.should_raise());
    ++answers; // the peer answered
    policy.read(2 * mark, answers);
    EXPECT_TRUE(policy.should_raise()); // the next message raises it again
    policy.fell_short(answers);         // ...and stops short: a dialogue of big messages
    ++answers;
    policy.read(100 * mark, answers);
    EXPECT_FALSE(policy.should_raise()); // until a new stream
    policy.new_stream();
    policy.read(2 * mark, answers);
    EXPECT_TRUE(policy.should_raise());
    policy.fell_short(answers); // a new stream: its first short wait is forgiven again
    ++answers;
    policy.read(2 * mark, answers);
    EXPECT_TRUE(policy.should_raise());
}

class ProxyLowWater : public proxy_tool_test {};

TEST_P(ProxyLowWater, ATailWaitsForTheMarkThenADialogueStopsPayingForIt) {
    constexpr std::size_t burst = 4u << 20;
    constexpr std::size_t tail = 1000;
    constexpr auto wait = 1000ms;
    scoped_fd listener = listen_loopback();
    tool_server s = start_proxy(
        "127.0.0.1:" + std::to_string(local_port(listener.get())),
        {"--stats",
         "--metrics",
         "127.0.0.1:0",
         "--bulk-low-water-wait-us",
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
        // And the proxy's next read is surely waiting: io_uring's recv takes what is queued when
        // it is issued, whatever the mark; only a wait already armed honours it.
        std::this_thread::sleep_for(20ms);
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
    EXPECT_LT(answered_after[2], wait * 8 / 10) << ms(answered_after[2]) << " ms";
    std::uint16_t metrics = aioloop::testing::metrics_port(s.process->err());
    std::string body;
    for (int attempt = 0; attempt < 50 && metrics != 0; ++attempt) {
        scoped_fd scrape = connect_to("127.0.0.1", metrics);
        send_all(scrape.get(), "GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n");
        body = read_to_end(scrape.get());
        if (number_after(body, "aioloop_low_water_total{event=\"gave_up\"}") >= 1) {
            break;
        }
        std::this_thread::sleep_for(100ms);
    }
    EXPECT_EQ(number_after(body, "aioloop_low_water_total{event=\"gave_up\"}"), 1) << body;
    EXPECT_GE(number_after(body, "aioloop_low_water_total{event=\"raised\"}"), 1) << body;
    ASSERT_EQ(stop(s), 0) << s.process->err();
    // The counters say the same: raised in the first burst (and again after each wait that ran
    // out while no answer had come), one give-up, at the second stop after an answer.
    std::string stats = s.process->err();
    EXPECT_GE(number_after(stats, "low_water_raises"), 1) << stats;
    EXPECT_GE(number_after(stats, "low_water_short_waits"), 2) << stats;
    EXPECT_EQ(number_after(stats, "low_water_give_ups"), 1) << stats;
}

INSTANTIATE_TEST_SUITE_P(AllBackends, ProxyLowWater, all_backends(), backend_name);

} // namespace
