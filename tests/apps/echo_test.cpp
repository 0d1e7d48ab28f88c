// `aioloop echo` as users run it: the built tool on port 0, on every backend, driven by the
// project's load generator (every byte checked), socat, raw sockets and curl for /metrics.

#include <fstream>
#include <random>
#include <sstream>

#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <sys/socket.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include <aioloop/apps/load.hpp>

#include "support/child_process.hpp"
#include "support/sockets.hpp"
#include "support/tool_server.hpp"

namespace {

using namespace std::chrono_literals;
using aioloop::backend_kind;
using aioloop::apps::load_config;
using aioloop::apps::run_load;
using aioloop::testing::child_process;
using aioloop::testing::start_tool_server;
using aioloop::testing::tool_server;

class EchoTool : public ::testing::TestWithParam<backend_kind> {
protected:
    void SetUp() override {
        std::string why = aioloop::testing::backend_unavailable(GetParam());
        if (!why.empty()) {
            GTEST_SKIP() << why;
        }
    }

    tool_server start(std::vector<std::string> extra = {}) {
        std::vector<std::string> args{"echo", "--backend", std::string(to_string(GetParam()))};
        if (std::find(extra.begin(), extra.end(), "--listen") == extra.end()) {
            args.insert(args.end(), {"--listen", "127.0.0.1:0"});
        }
        args.insert(args.end(), extra.begin(), extra.end());
        tool_server s = start_tool_server(args);
        EXPECT_NE(s.port, 0) << s.process->err();
        return s;
    }

    static int stop(tool_server& s) {
        s.process->signal(SIGTERM);
        return s.process->wait(10s).value_or(-1);
    }
};

// The number after `name` and spaces at the start of a line of `text` (--stats, /metrics); -1.
long long counter_value(const std::string& text, const std::string& name) {
    for (std::size_t at = text.find(name); at != std::string::npos; at = text.find(name, at + 1)) {
        if (at > 0 && text[at - 1] != '\n') {
            continue;
        }
        std::size_t value = text.find_first_not_of(' ', at + name.size());
        if (value == at + name.size() || value == std::string::npos) {
            continue;
        }
        return std::stoll(text.substr(value));
    }
    return -1;
}

load_config load_to(const std::string& host, std::uint16_t port) {
    load_config config;
    config.target = aioloop::net::address::parse(host + ":" + std::to_string(port)).value();
    config.grace = 10s;
    return config;
}

TEST_P(EchoTool, ServesThousandsOfConnectionsWithRandomSizes) {
    ASSERT_GE(aioloop::testing::raise_fd_limit(8192), 4500u);
    tool_server s = start({"--max-connections", "4096", "--quiet"});
    ASSERT_NE(s.port, 0);
    load_config config = load_to("127.0.0.1", s.port);
    config.connections = 2000;
    config.min_size = 1;
    config.max_size = 4096;
    config.requests = 20000;
    auto r = run_load(config);
    ASSERT_TRUE(r) << r.error().message;
    EXPECT_EQ(r->errors.total(), 0u) << r->first_error;
    EXPECT_EQ(r->requests, 20000u);
    EXPECT_EQ(r->latency.count(), 20000u);
    EXPECT_EQ(stop(s), 0) << s.process->err();
}

TEST_P(EchoTool, ServesLargeMessagesInParts) {
    tool_server s = start({"--buffer-size", "4096"});
    ASSERT_NE(s.port, 0);
    load_config config = load_to("127.0.0.1", s.port);
    config.connections = 8;
    config.min_size = 64 * 1024;
    config.max_size = 1 << 20;
    config.requests = 64;
    auto r = run_load(config);
    ASSERT_TRUE(r) << r.error().message;
    EXPECT_EQ(r->errors.total(), 0u) << r->first_error;
    EXPECT_EQ(r->requests, 64u);
    EXPECT_EQ(stop(s), 0) << s.process->err();
}

TEST_P(EchoTool, SocatPipesAFileThroughByteForByte) {
    tool_server s = start();
    ASSERT_NE(s.port, 0);
    std::string in_path = aioloop::testing::temp_path("echo-in");
    std::string out_path = aioloop::testing::temp_path("echo-out");
    std::string data(3 << 20, '\0');
    std::mt19937_64 gen(7);
    for (auto& c : data) {
        c = static_cast<char>(gen());
    }
    std::ofstream(in_path, std::ios::binary) << data;
    int in = ::open(in_path.c_str(), O_RDONLY | O_CLOEXEC);
    int out = ::open(out_path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    ASSERT_GE(in, 0);
    ASSERT_GE(out, 0);
    {
        // -t 10: after its input ends, socat half-closes and waits for the rest of the echo.
        child_process socat(
            {"socat", "-t", "10", "-", "TCP:127.0.0.1:" + std::to_string(s.port)}, in, out);
        ::close(in);
        ::close(out);
        EXPECT_EQ(socat.wait(15s), 0) << socat.err();
    }
    std::ifstream echoed(out_path, std::ios::binary);
    std::stringstream got;
    got << echoed.rdbuf();
    ::unlink(in_path.c_str());
    ::unlink(out_path.c_str());
    EXPECT_EQ(got.str().size(), data.size());
    EXPECT_TRUE(got.str() == data);
    EXPECT_EQ(stop(s), 0) << s.process->err();
}

TEST_P(EchoTool, ListensOnIpv6Loopback) {
    int probe = ::socket(AF_INET6, SOCK_STREAM, 0);
    sockaddr_in6 any{};
    any.sin6_family = AF_INET6;
    any.sin6_addr = in6addr_loopback;
    bool has_v6 = probe >= 0 && ::bind(probe, reinterpret_cast<sockaddr*>(&any), sizeof(any)) == 0;
    if (probe >= 0) {
        ::close(probe);
    }
    if (!has_v6) {
        GTEST_SKIP() << "no IPv6 loopback here";
    }
    tool_server s = start({"--listen", "[::1]:0"});
    ASSERT_NE(s.port, 0);
    EXPECT_NE(s.process->err().find("listening on [::1]:"), std::string::npos);
    load_config config = load_to("[::1]", s.port);
    config.connections = 50;
    config.min_size = 1;
    config.max_size = 2000;
    config.requests = 2000;
    auto r = run_load(config);
    ASSERT_TRUE(r) << r.error().message;
    EXPECT_EQ(r->errors.total(), 0u) << r->first_error;
    EXPECT_EQ(r->requests, 2000u);
    EXPECT_EQ(stop(s), 0) << s.process->err();
}

// Many messages written before any is read: they come back concatenated, in order.
TEST_P(EchoTool, EchoesPipelinedMessagesInOrder) {
    tool_server s = start();
    ASSERT_NE(s.port, 0);
    int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_in to{};
    to.sin_family = AF_INET;
    to.sin_port = htons(s.port);
    to.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    ASSERT_EQ(::connect(fd, reinterpret_cast<sockaddr*>(&to), sizeof(to)), 0);
    int one = 1;
    ::setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    std::mt19937 gen(3);
    std::string sent;
    for (int i = 0; i < 1000; ++i) {
        std::string message(1 + gen() % 100, '\0');
        for (auto& c : message) {
            c = static_cast<char>(gen());
        }
        ASSERT_EQ(::send(fd, message.data(), message.size(), 0),
                  static_cast<ssize_t>(message.size()));
        sent += message;
    }
    std::string got;
    timeval limit{10, 0};
    ::setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &limit, sizeof(limit));
    char buf[8192];
    while (got.size() < sent.size()) {
        ssize_t n = ::recv(fd, buf, sizeof(buf), 0);
        ASSERT_GT(n, 0) << "after " << got.size() << " of " << sent.size() << " bytes";
        got.append(buf, static_cast<std::size_t>(n));
    }
    ::close(fd);
    EXPECT_TRUE(got == sent);
    EXPECT_EQ(stop(s), 0) << s.process->err();
}

TEST_P(EchoTool, TwoThreadsShareTheLoad) {
    tool_server s = start({"--threads", "2", "--stats"});
    ASSERT_NE(s.port, 0);
    EXPECT_NE(s.process->err().find("2 threads"), std::string::npos) << s.process->err();
    load_config config = load_to("127.0.0.1", s.port);
    config.connections = 200;
    config.requests = 10000;
    config.threads = 2;
    auto r = run_load(config);
    ASSERT_TRUE(r) << r.error().message;
    EXPECT_EQ(r->errors.total(), 0u) << r->first_error;
    EXPECT_EQ(r->requests, 10000u);
    EXPECT_EQ(stop(s), 0) << s.process->err();
    // Each message is at least one echo turn; closed loop, so no two share one.
    EXPECT_GE(counter_value(s.process->err(), "requests"), 10000) << s.process->err();
    EXPECT_EQ(counter_value(s.process->err(), "connections_accepted"), 200) << s.process->err();
}

TEST_P(EchoTool, PrintsStatsOnSigusr1AndAtExit) {
    tool_server s = start({"--stats"});
    ASSERT_NE(s.port, 0);
    load_config config = load_to("127.0.0.1", s.port);
    config.connections = 20;
    config.requests = 1000;
    auto r = run_load(config);
    ASSERT_TRUE(r) << r.error().message;
    EXPECT_EQ(r->requests, 1000u);
    s.process->signal(SIGUSR1);
    EXPECT_TRUE(s.process->wait_for_stderr("turns", 10s)) << s.process->err();
    EXPECT_FALSE(s.process->exited());
    EXPECT_EQ(stop(s), 0) << s.process->err();
    std::string err = s.process->err();
    EXPECT_TRUE(s.process->wait_for_stderr_count("turns", 2, 1s)) << err;
    EXPECT_GE(counter_value(err, "requests"), 1000) << err;
    EXPECT_EQ(counter_value(err, "connections_accepted"), 20) << err;
}

TEST_P(EchoTool, ServesPrometheusMetrics) {
    tool_server s = start({"--metrics", "127.0.0.1:0"});
    ASSERT_NE(s.port, 0);
    std::uint16_t metrics = aioloop::testing::metrics_port(s.process->err());
    ASSERT_NE(metrics, 0) << s.process->err();
    load_config config = load_to("127.0.0.1", s.port);
    config.connections = 10;
    config.requests = 500;
    auto r = run_load(config);
    ASSERT_TRUE(r) << r.error().message;
    child_process curl({"curl",
                        "-sS",
                        "--max-time",
                        "10",
                        "http://127.0.0.1:" + std::to_string(metrics) + "/metrics"});
    ASSERT_EQ(curl.wait(15s), 0) << curl.err();
    std::string text = curl.out();
    EXPECT_NE(text.find("aioloop_syscalls_total{name=\"io_submit\"}"), std::string::npos) << text;
    EXPECT_GE(counter_value(text, "aioloop_requests_total"), 500) << text;
    EXPECT_EQ(stop(s), 0) << s.process->err();
}

INSTANTIATE_TEST_SUITE_P(AllBackends,
                         EchoTool,
                         ::testing::Values(backend_kind::aio,
                                           backend_kind::epoll,
                                           backend_kind::uring),
                         [](const ::testing::TestParamInfo<backend_kind>& info) {
                             return std::string(aioloop::to_string(info.param));
                         });

} // namespace
