// Real servers behind `aioloop proxy`, real clients through it, on every backend: redis-server
// with redis-cli and redis-benchmark, iperf3 in both directions.

#include <thread>

#include <gtest/gtest.h>

#include "apps/proxy_harness.hpp"

namespace {

using namespace std::chrono_literals;
using namespace aioloop::testing::proxy;
using aioloop::testing::child_process;
using aioloop::testing::scoped_fd;
using aioloop::testing::tool_server;

class ProxyPeers : public proxy_tool_test {};

// Waits until something accepts connections on 127.0.0.1:port (a peer started beside the test).
bool wait_listening(std::uint16_t port) {
    for (int attempt = 0; attempt < 100; ++attempt) {
        if (connect_to("127.0.0.1", port).get() >= 0) {
            return true;
        }
        std::this_thread::sleep_for(50ms);
    }
    return false;
}

struct redis {
    std::uint16_t port = closed_port();
    child_process process{{"/usr/bin/redis-server",
                           "--port",
                           std::to_string(port),
                           "--bind",
                           "127.0.0.1",
                           "--save",
                           "",
                           "--appendonly",
                           "no"}};
};

TEST_P(ProxyPeers, RedisCliSetsAndGetsThroughTheProxy) {
    redis server;
    ASSERT_TRUE(wait_listening(server.port)) << server.process.err();
    tool_server s = start_proxy("localhost:" + std::to_string(server.port));
    ASSERT_NE(s.port, 0);
    std::string port = std::to_string(s.port);
    child_process set({"/usr/bin/redis-cli", "-p", port, "SET", "proxied", "value 42"});
    EXPECT_EQ(set.wait(10s), 0);
    EXPECT_EQ(set.out(), "OK\n");
    child_process get({"/usr/bin/redis-cli", "-p", port, "GET", "proxied"});
    EXPECT_EQ(get.wait(10s), 0);
    EXPECT_EQ(get.out(), "value 42\n");
    EXPECT_EQ(stop(s), 0) << s.process->err();
}

TEST_P(ProxyPeers, RedisBenchmarkFinishesWithoutErrors) {
    redis server;
    ASSERT_TRUE(wait_listening(server.port)) << server.process.err();
    tool_server s = start_proxy("127.0.0.1:" + std::to_string(server.port), {"--stats"});
    ASSERT_NE(s.port, 0);
    child_process bench({"/usr/bin/redis-benchmark",
                         "-p",
                         std::to_string(s.port),
                         "-q",
                         "-n",
                         "20000",
                         "-c",
                         "50",
                         "-P",
                         "1",
                         "-t",
                         "set,get"});
    ASSERT_EQ(bench.wait(15s), 0) << bench.err();
    std::string out = bench.out();
    EXPECT_NE(out.find("SET: "), std::string::npos) << out;
    EXPECT_NE(out.find("GET: "), std::string::npos) << out;
    EXPECT_EQ(out.find("rror"), std::string::npos) << out;
    EXPECT_EQ(bench.err().find("rror"), std::string::npos) << bench.err();
    EXPECT_EQ(stop(s), 0);
    EXPECT_NE(s.process->err().find("\nerrors                   0\n"), std::string::npos)
        << s.process->err();
}

// Runs an iperf3 client through the proxy for 2 s and returns the receiver's bits per second.
double iperf_through(std::uint16_t proxy_port, bool reverse) {
    std::vector<std::string> args{
        "/usr/bin/iperf3", "-c", "127.0.0.1", "-p", std::to_string(proxy_port), "-t", "2", "-J"};
    if (reverse) {
        args.push_back("-R");
    }
    child_process client(args);
    auto code = client.wait(15s);
    EXPECT_EQ(code, 0) << client.out() << client.err();
    std::string out = client.out();
    auto at = out.find("\"sum_received\"");
    if (at == std::string::npos) {
        return 0;
    }
    at = out.find("\"bits_per_second\":", at);
    if (at == std::string::npos) {
        return 0;
    }
    return std::stod(out.substr(at + 18));
}

// iperf3 -s on a free port, waited for until it says it listens (it never writes to stderr).
struct iperf_server {
    std::uint16_t port = closed_port();
    child_process process{{"/usr/bin/iperf3", "-s", "-p", std::to_string(port), "--forceflush"}};

    bool ready() {
        for (int attempt = 0; attempt < 100; ++attempt) {
            if (process.out().find("Server listening") != std::string::npos) {
                return true;
            }
            std::this_thread::sleep_for(50ms);
        }
        return false;
    }
};

TEST_P(ProxyPeers, Iperf3UploadsThroughTheProxy) {
    iperf_server server;
    ASSERT_TRUE(server.ready()) << server.process.out();
    tool_server s = start_proxy("127.0.0.1:" + std::to_string(server.port));
    ASSERT_NE(s.port, 0);
    EXPECT_GT(iperf_through(s.port, false), 0.0);
    EXPECT_EQ(stop(s), 0) << s.process->err();
}

TEST_P(ProxyPeers, Iperf3DownloadsThroughTheProxy) {
    iperf_server server;
    ASSERT_TRUE(server.ready()) << server.process.out();
    tool_server s = start_proxy("127.0.0.1:" + std::to_string(server.port));
    ASSERT_NE(s.port, 0);
    EXPECT_GT(iperf_through(s.port, true), 0.0);
    EXPECT_EQ(stop(s), 0) << s.process->err();
}

INSTANTIATE_TEST_SUITE_P(AllBackends, ProxyPeers, all_backends(), backend_name);

} // namespace
