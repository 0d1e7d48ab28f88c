// The load generator: its histogram against exact percentiles, its message pattern, and whole
// runs against an in-process echo server on every client backend, plus servers that answer
// wrong, hang up or refuse, whose failures it must count instead of hiding.

#include <algorithm>
#include <future>
#include <random>
#include <thread>

#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include <aioloop/apps/echo.hpp>
#include <aioloop/apps/load.hpp>

#include "apps/load_internal.hpp"
#include "support/loop_fixture.hpp"
#include "support/tool_server.hpp"

namespace {

using namespace std::chrono_literals;
using aioloop::backend_kind;
using aioloop::apps::latency_histogram;
using aioloop::apps::load_config;
using aioloop::apps::run_load;

TEST(LatencyHistogram, KeepsSmallValuesExactly) {
    latency_histogram h;
    for (std::uint64_t v = 0; v < 128; ++v) {
        h.record(v);
        EXPECT_EQ(latency_histogram::bucket_low(latency_histogram::bucket_of(v)), v);
    }
    EXPECT_EQ(h.count(), 128u);
    EXPECT_EQ(h.min(), 0u);
    EXPECT_EQ(h.max(), 127u);
    EXPECT_EQ(h.percentile(50), 63u);
    EXPECT_EQ(h.percentile(100), 127u);
}

TEST(LatencyHistogram, BucketsTileTheRangeWithinTwoPercent) {
    std::uint64_t next = 0;
    for (std::size_t b = 0; b < latency_histogram::bucket_count; ++b) {
        ASSERT_EQ(latency_histogram::bucket_low(b), next) << b;
        std::uint64_t high = latency_histogram::bucket_high(b);
        ASSERT_EQ(latency_histogram::bucket_of(latency_histogram::bucket_low(b)), b);
        ASSERT_EQ(latency_histogram::bucket_of(high), b);
        // Width relative to the smallest value in the bucket: at most 1/64.
        ASSERT_LE(static_cast<double>(high - next + 1), std::max(1.0, next / 64.0)) << b;
        next = high + 1;
    }
    // Beyond the range everything lands in the last bucket instead of out of bounds.
    EXPECT_EQ(latency_histogram::bucket_of(UINT64_MAX), latency_histogram::bucket_count - 1);
}

TEST(LatencyHistogram, PercentilesWithinOnePercentOfExact) {
    std::mt19937_64 gen(11);
    std::lognormal_distribution<double> dist(10.0, 1.5); // ~22 µs median, long tail
    std::vector<std::uint64_t> values;
    latency_histogram h;
    for (int i = 0; i < 200000; ++i) {
        auto v = static_cast<std::uint64_t>(dist(gen)) + 1;
        values.push_back(v);
        h.record(v);
    }
    std::sort(values.begin(), values.end());
    for (double p : {1.0, 10.0, 50.0, 90.0, 99.0, 99.9, 99.99}) {
        auto rank = static_cast<std::size_t>(std::ceil(p / 100.0 * values.size())) - 1;
        double exact = static_cast<double>(values[rank]);
        EXPECT_NEAR(static_cast<double>(h.percentile(p)), exact, exact * 0.01) << "p" << p;
    }
    EXPECT_EQ(h.percentile(100), values.back());
    EXPECT_EQ(h.max(), values.back());
    EXPECT_EQ(h.min(), values.front());
}

TEST(LatencyHistogram, MergesAndStartsEmpty) {
    latency_histogram a;
    latency_histogram b;
    EXPECT_EQ(a.percentile(99), 0u);
    EXPECT_EQ(a.max(), 0u);
    EXPECT_EQ(a.mean(), 0.0);
    for (std::uint64_t v = 1; v <= 1000; ++v) {
        (v % 2 ? a : b).record(v * 1000);
    }
    a.merge(b);
    EXPECT_EQ(a.count(), 1000u);
    EXPECT_EQ(a.min(), 1000u);
    EXPECT_EQ(a.max(), 1000000u);
    EXPECT_NEAR(a.mean(), 500500.0, 1.0);
    EXPECT_NEAR(static_cast<double>(a.percentile(50)), 500000.0, 5000.0);
}

TEST(LoadPattern, AnySliceMatchesTheWhole) {
    std::vector<std::byte> whole(1000);
    aioloop::apps::detail::fill_pattern(42, 0, whole);
    for (std::size_t offset : {0u, 1u, 7u, 8u, 13u, 500u}) {
        std::vector<std::byte> part(300);
        aioloop::apps::detail::fill_pattern(42, offset, part);
        EXPECT_TRUE(std::equal(part.begin(), part.end(), whole.begin() + offset)) << offset;
        EXPECT_TRUE(aioloop::apps::detail::matches_pattern(42, offset, part));
        part[299] ^= std::byte{1};
        EXPECT_FALSE(aioloop::apps::detail::matches_pattern(42, offset, part));
    }
    std::vector<std::byte> other(1000);
    aioloop::apps::detail::fill_pattern(43, 0, other);
    EXPECT_NE(whole, other);
}

TEST(LoadSizes, ParsesBytesAndRanges) {
    using aioloop::apps::parse_size_range;
    using range = std::pair<std::size_t, std::size_t>;
    EXPECT_EQ(parse_size_range("64").value(), range(64, 64));
    EXPECT_EQ(parse_size_range("1-64K").value(), range(1, 65536));
    EXPECT_FALSE(parse_size_range("64-1"));
    EXPECT_FALSE(parse_size_range("x"));
    EXPECT_FALSE(parse_size_range("1-"));
}

// An echo server in this process, on port 0, stopped when the test ends.
class in_process_echo {
public:
    in_process_echo() {
        aioloop::apps::server_config config;
        config.name = "echo";
        config.listen.push_back(aioloop::net::address::parse("127.0.0.1:0").value());
        config.handle_signals = false;
        config.quiet = true;
        config.stop = stop_.get_token();
        config.loop.max_connections = 1024;
        std::promise<std::uint16_t> port;
        auto bound = port.get_future();
        config.on_listening = [&port](const std::vector<aioloop::net::address>& at) {
            port.set_value(at.front().port());
        };
        config_ = config;
        thread_ = std::thread([this] {
            exit_code_ = aioloop::apps::run_server(config_, aioloop::apps::make_echo_handler());
        });
        port_ = bound.get();
    }
    ~in_process_echo() {
        stop_.request_stop();
        thread_.join();
    }
    aioloop::net::address address() const {
        return aioloop::net::address::parse("127.0.0.1:" + std::to_string(port_)).value();
    }

private:
    std::stop_source stop_;
    aioloop::apps::server_config config_;
    std::thread thread_;
    std::uint16_t port_ = 0;
    int exit_code_ = -1;
};

class LoadRun : public ::testing::TestWithParam<backend_kind> {
protected:
    void SetUp() override {
        std::string why = aioloop::testing::backend_unavailable(GetParam());
        if (!why.empty()) {
            GTEST_SKIP() << why;
        }
    }
    load_config config_for(const aioloop::net::address& target) {
        load_config config;
        config.target = target;
        config.loop.backend = GetParam();
        config.grace = 10s;
        return config;
    }
};

TEST_P(LoadRun, CountsEveryRequestOfAClosedLoop) {
    in_process_echo server;
    load_config config = config_for(server.address());
    config.connections = 30;
    config.threads = 2;
    config.min_size = 1;
    config.max_size = 40000;
    config.requests = 3001;
    auto r = run_load(config);
    ASSERT_TRUE(r) << r.error().message;
    EXPECT_EQ(r->backend, aioloop::to_string(GetParam()));
    EXPECT_EQ(r->errors.total(), 0u) << r->first_error;
    EXPECT_EQ(r->requests, 3001u);
    EXPECT_EQ(r->latency.count(), 3001u);
    std::uint64_t in_intervals = 0;
    for (const auto& i : r->intervals) {
        in_intervals += i.requests;
    }
    EXPECT_EQ(in_intervals, 3001u);
    EXPECT_GT(r->bytes, 3001u);
    EXPECT_GT(r->duration.count(), 0);
    EXPECT_GT((r->cpu_user + r->cpu_system).count(), 0);
}

// 2000 requests/s for 0.5 s: about 1000 requests, their latency counted from the schedule.
TEST_P(LoadRun, OffersAFixedRateInOpenLoop) {
    in_process_echo server;
    load_config config = config_for(server.address());
    config.connections = 10;
    config.rate = 2000;
    config.duration = 500ms;
    auto r = run_load(config);
    ASSERT_TRUE(r) << r.error().message;
    EXPECT_EQ(r->errors.total(), 0u) << r->first_error;
    // The schedule holds exactly 1000 sends before the deadline; a loaded machine may
    // answer some late, but none is dropped or added.
    EXPECT_EQ(r->requests, 1000u);
}

TEST_P(LoadRun, CountsARefusedConnect) {
    int fd = ::socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in at{};
    at.sin_family = AF_INET;
    at.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t len = sizeof(at);
    ASSERT_EQ(::bind(fd, reinterpret_cast<sockaddr*>(&at), len), 0);
    ASSERT_EQ(::getsockname(fd, reinterpret_cast<sockaddr*>(&at), &len), 0);
    // Bound but not listening: connects are refused.
    load_config config = config_for(aioloop::net::address(reinterpret_cast<sockaddr*>(&at), len));
    config.connections = 3;
    config.requests = 3;
    auto r = run_load(config);
    ::close(fd);
    ASSERT_TRUE(r) << r.error().message;
    EXPECT_EQ(r->errors.connect_failures, 3u);
    EXPECT_EQ(r->requests, 0u);
    EXPECT_NE(r->first_error.find("refused"), std::string::npos) << r->first_error;
}

// A server that answers each message once, `mode` deciding how: flip a byte or hang up.
void bad_server(int listener, int mode) {
    int fd = ::accept(listener, nullptr, nullptr);
    char buf[256];
    ssize_t n = ::recv(fd, buf, sizeof(buf), 0);
    if (mode == 0 && n > 0) {
        buf[n - 1] = static_cast<char>(buf[n - 1] ^ 0x20);
        ::send(fd, buf, static_cast<std::size_t>(n), MSG_NOSIGNAL);
        ::recv(fd, buf, sizeof(buf), 0); // until the client gives up
    }
    ::close(fd);
}

TEST_P(LoadRun, CountsAWrongByteAndAHangUp) {
    for (int mode : {0, 1}) {
        int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
        sockaddr_in at{};
        at.sin_family = AF_INET;
        at.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        socklen_t len = sizeof(at);
        ASSERT_EQ(::bind(fd, reinterpret_cast<sockaddr*>(&at), len), 0);
        ASSERT_EQ(::listen(fd, 4), 0);
        ASSERT_EQ(::getsockname(fd, reinterpret_cast<sockaddr*>(&at), &len), 0);
        std::thread peer(bad_server, fd, mode);
        load_config config =
            config_for(aioloop::net::address(reinterpret_cast<sockaddr*>(&at), len));
        config.requests = 5;
        config.min_size = 100;
        config.max_size = 100;
        auto r = run_load(config);
        peer.join();
        ::close(fd);
        ASSERT_TRUE(r) << r.error().message;
        EXPECT_EQ(r->requests, 0u);
        EXPECT_EQ(mode == 0 ? r->errors.mismatches : r->errors.closed + r->errors.resets, 1u)
            << "mode " << mode << ": " << r->first_error;
        EXPECT_EQ(r->errors.total(), 1u);
    }
}

INSTANTIATE_TEST_SUITE_P(AllBackends,
                         LoadRun,
                         aioloop::testing::all_backends(),
                         aioloop::testing::backend_test_name);

TEST(LoadTool, PrintsASummaryAndJson) {
    in_process_echo server;
    aioloop::testing::child_process load({AIOLOOP_TOOL_PATH,
                                          "load",
                                          "--connect",
                                          server.address().to_string(),
                                          "--connections",
                                          "4",
                                          "--size",
                                          "1-1K",
                                          "--requests",
                                          "400",
                                          "--json"});
    ASSERT_EQ(load.wait(20s), 0) << load.err();
    std::string out = load.out();
    EXPECT_NE(out.find("400 requests in"), std::string::npos) << out;
    EXPECT_NE(out.find("MB/s each way"), std::string::npos) << out;
    EXPECT_NE(out.find("\"requests\":400,"), std::string::npos) << out;
    EXPECT_NE(out.find("\"errors\":{\"total\":0,"), std::string::npos) << out;
    EXPECT_NE(out.find("\"p999_us\":"), std::string::npos) << out;
}

TEST(LoadTool, FailsWhenNothingAnswers) {
    aioloop::testing::child_process load(
        {AIOLOOP_TOOL_PATH, "load", "--connect", "127.0.0.1:1", "--requests", "1", "-n", "1"});
    EXPECT_EQ(load.wait(20s), 1) << load.err();
    EXPECT_NE(load.err().find("connect to 127.0.0.1:1"), std::string::npos) << load.err();
}

} // namespace
