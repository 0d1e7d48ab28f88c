// `aioloop proxy` as users run it (the built tool, every backend) between a client and an upstream
// that the test plays itself: bytes both ways, half-closes, resets, a killed or refusing upstream,
// IPv6, the idle timeout, backpressure and the counters.

#include <atomic>
#include <cstring>
#include <thread>

#include <sys/wait.h>

#include <gtest/gtest.h>

#include "apps/proxy_harness.hpp"

namespace {

using namespace std::chrono_literals;
using namespace aioloop::testing::proxy;
using aioloop::testing::scoped_fd;
using aioloop::testing::tool_server;

class ProxyTool : public proxy_tool_test {};

std::string upstream_at(int listener) {
    return "127.0.0.1:" + std::to_string(local_port(listener));
}

// Sends `total` bytes of stream `seed` to fd in 64 KiB writes, then shuts down writing.
bool send_stream(int fd, std::uint64_t seed, std::size_t total) {
    byte_stream bytes(seed);
    std::vector<char> buf(1 << 16);
    for (std::size_t sent = 0; sent < total;) {
        std::size_t n = std::min(buf.size(), total - sent);
        bytes.fill(buf.data(), n);
        if (!send_all(fd, buf.data(), n)) {
            return false;
        }
        sent += n;
    }
    return ::shutdown(fd, SHUT_WR) == 0;
}

// Reads to end of stream and compares every byte with stream `seed`; the count of matching bytes,
// or -1 at the first difference or error.
long long check_stream(int fd, std::uint64_t seed) {
    byte_stream bytes(seed);
    std::vector<char> buf(1 << 16);
    std::vector<char> expected(1 << 16);
    long long total = 0;
    for (;;) {
        ssize_t n = ::recv(fd, buf.data(), buf.size(), 0);
        if (n < 0) {
            return -1;
        }
        if (n == 0) {
            return total;
        }
        bytes.fill(expected.data(), static_cast<std::size_t>(n));
        if (std::memcmp(buf.data(), expected.data(), static_cast<std::size_t>(n)) != 0) {
            return -1;
        }
        total += n;
    }
}

TEST_P(ProxyTool, CarriesAHundredMiBBothWaysAtOnceIntact) {
    constexpr std::size_t total = 100u << 20;
    scoped_fd listener = listen_loopback();
    tool_server s = start_proxy(upstream_at(listener.get()));
    ASSERT_NE(s.port, 0);
    scoped_fd client = connect_to("127.0.0.1", s.port);
    ASSERT_GE(client.get(), 0);
    scoped_fd upstream = accept_one(listener.get());
    ASSERT_GE(upstream.get(), 0);

    std::atomic<long long> upstream_got{-2};
    std::thread up_reader([&] { upstream_got = check_stream(upstream.get(), 1); });
    std::thread up_writer([&] { send_stream(upstream.get(), 2, total); });
    std::thread client_writer([&] { send_stream(client.get(), 1, total); });
    long long client_got = check_stream(client.get(), 2);
    client_writer.join();
    up_writer.join();
    up_reader.join();
    EXPECT_EQ(client_got, static_cast<long long>(total));
    EXPECT_EQ(upstream_got.load(), static_cast<long long>(total));
    EXPECT_EQ(stop(s), 0) << s.process->err();
}

TEST_P(ProxyTool, ClientHalfCloseReachesUpstreamAndTheAnswerStillComesBack) {
    scoped_fd listener = listen_loopback();
    tool_server s = start_proxy(upstream_at(listener.get()));
    ASSERT_NE(s.port, 0);
    std::thread upstream([&] {
        scoped_fd fd = accept_one(listener.get());
        std::string request = read_to_end(fd.get()); // ends only with the forwarded FIN
        send_all(fd.get(), "answer to " + request);
    });
    scoped_fd client = connect_to("127.0.0.1", s.port);
    ASSERT_GE(client.get(), 0);
    ASSERT_TRUE(send_all(client.get(), "question"));
    ASSERT_EQ(::shutdown(client.get(), SHUT_WR), 0);
    int error = -1;
    EXPECT_EQ(read_to_end(client.get(), &error), "answer to question");
    EXPECT_EQ(error, 0);
    upstream.join();
    EXPECT_EQ(stop(s), 0) << s.process->err();
}

TEST_P(ProxyTool, UpstreamHalfCloseReachesClientWhichCanStillSend) {
    scoped_fd listener = listen_loopback();
    tool_server s = start_proxy(upstream_at(listener.get()));
    ASSERT_NE(s.port, 0);
    std::string upstream_heard;
    std::thread upstream([&] {
        scoped_fd fd = accept_one(listener.get());
        send_all(fd.get(), "banner");
        ::shutdown(fd.get(), SHUT_WR);
        upstream_heard = read_to_end(fd.get());
    });
    scoped_fd client = connect_to("127.0.0.1", s.port);
    ASSERT_GE(client.get(), 0);
    int error = -1;
    EXPECT_EQ(read_to_end(client.get(), &error), "banner");
    EXPECT_EQ(error, 0);
    ASSERT_TRUE(send_all(client.get(), "still talking"));
    ::shutdown(client.get(), SHUT_WR);
    upstream.join();
    EXPECT_EQ(upstream_heard, "still talking");
    EXPECT_EQ(read_to_end(client.get(), &error), "");
    EXPECT_EQ(error, 0);
    EXPECT_EQ(stop(s), 0) << s.process->err();
}

void close_with_reset(scoped_fd& fd) {
    linger hard{1, 0};
    ::setsockopt(fd.get(), SOL_SOCKET, SO_LINGER, &hard, sizeof(hard));
    fd.reset();
}

TEST_P(ProxyTool, UpstreamResetReachesClientAsReset) {
    scoped_fd listener = listen_loopback();
    tool_server s = start_proxy(upstream_at(listener.get()));
    ASSERT_NE(s.port, 0);
    scoped_fd client = connect_to("127.0.0.1", s.port);
    ASSERT_GE(client.get(), 0);
    scoped_fd upstream = accept_one(listener.get());
    ASSERT_GE(upstream.get(), 0);
    // A byte through first: the proxy has the pair up (not still inside its connect).
    ASSERT_TRUE(send_all(client.get(), "x"));
    char first;
    ASSERT_EQ(::recv(upstream.get(), &first, 1, 0), 1);
    ASSERT_TRUE(send_all(upstream.get(), "partial"));
    close_with_reset(upstream);
    int error = -1;
    std::string got = read_to_end(client.get(), &error);
    EXPECT_EQ(error, ECONNRESET) << "got " << got.size() << " bytes";
    EXPECT_EQ(stop(s), 0) << s.process->err();
}

TEST_P(ProxyTool, ClientResetReachesUpstreamAsReset) {
    scoped_fd listener = listen_loopback();
    tool_server s = start_proxy(upstream_at(listener.get()));
    ASSERT_NE(s.port, 0);
    scoped_fd client = connect_to("127.0.0.1", s.port);
    ASSERT_GE(client.get(), 0);
    scoped_fd upstream = accept_one(listener.get());
    ASSERT_GE(upstream.get(), 0);
    ASSERT_TRUE(send_all(client.get(), "hello"));
    char buf[5];
    ASSERT_EQ(::recv(upstream.get(), buf, sizeof(buf), MSG_WAITALL), 5);
    close_with_reset(client);
    int error = -1;
    read_to_end(upstream.get(), &error);
    EXPECT_EQ(error, ECONNRESET);
    EXPECT_EQ(stop(s), 0) << s.process->err();
}

TEST_P(ProxyTool, UpstreamKilledMidTransferEndsTheClientAndNewClientsAreServed) {
    scoped_fd listener = listen_loopback();
    tool_server s = start_proxy(upstream_at(listener.get()));
    ASSERT_NE(s.port, 0);
    // The upstream is a process of its own, killed while it streams; the listener stays open
    // here, so that the next client's upstream is this test.
    pid_t child = ::fork();
    if (child == 0) {
        int fd = ::accept(listener.get(), nullptr, nullptr);
        std::vector<char> buf(1 << 16, 'x');
        for (;;) {
            if (::send(fd, buf.data(), buf.size(), MSG_NOSIGNAL) <= 0) {
                ::_exit(0);
            }
        }
    }
    ASSERT_GT(child, 0);
    scoped_fd client = connect_to("127.0.0.1", s.port);
    ASSERT_GE(client.get(), 0);
    char buf[1 << 16];
    std::size_t got = 0;
    while (got < (4u << 20)) {
        ssize_t n = ::recv(client.get(), buf, sizeof(buf), 0);
        ASSERT_GT(n, 0);
        got += static_cast<std::size_t>(n);
    }
    ::kill(child, SIGKILL);
    ::waitpid(child, nullptr, 0);
    int error = -1;
    read_to_end(client.get(), &error);
    EXPECT_TRUE(error == 0 || error == ECONNRESET) << std::strerror(error);

    std::thread upstream([&] {
        scoped_fd fd = accept_one(listener.get());
        std::string request = read_to_end(fd.get());
        send_all(fd.get(), "served: " + request);
    });
    scoped_fd next = connect_to("127.0.0.1", s.port);
    ASSERT_GE(next.get(), 0);
    ASSERT_TRUE(send_all(next.get(), "next"));
    ::shutdown(next.get(), SHUT_WR);
    EXPECT_EQ(read_to_end(next.get()), "served: next");
    upstream.join();
    EXPECT_EQ(stop(s), 0) << s.process->err();
}

TEST_P(ProxyTool, RefusingUpstreamClosesTheClientWithOneLogLine) {
    std::uint16_t refused = closed_port();
    tool_server s = start_proxy("127.0.0.1:" + std::to_string(refused));
    ASSERT_NE(s.port, 0);
    scoped_fd client = connect_to("127.0.0.1", s.port);
    ASSERT_GE(client.get(), 0);
    int error = -1;
    EXPECT_EQ(read_to_end(client.get(), &error), "");
    EXPECT_TRUE(error == 0 || error == ECONNRESET) << std::strerror(error);
    ASSERT_TRUE(s.process->wait_for_stderr("connect:", 5s)) << s.process->err();
    // Still serving: a second client gets the same treatment and the same single line.
    scoped_fd again = connect_to("127.0.0.1", s.port);
    ASSERT_GE(again.get(), 0);
    read_to_end(again.get(), &error);
    ASSERT_TRUE(s.process->wait_for_stderr_count("connect:", 2, 5s)) << s.process->err();
    EXPECT_EQ(stop(s), 0);
    std::string log = s.process->err();
    std::size_t lines = 0;
    for (std::size_t at = log.find("connect:"); at != std::string::npos;
         at = log.find("connect:", at + 1)) {
        ++lines;
        std::size_t begin = log.rfind('\n', at);
        std::string line = log.substr(begin + 1, log.find('\n', at) - begin - 1);
        EXPECT_NE(line.find("client 127.0.0.1:"), std::string::npos) << line;
        EXPECT_NE(line.find("127.0.0.1:" + std::to_string(refused)), std::string::npos) << line;
        EXPECT_NE(line.find("refused"), std::string::npos) << line;
    }
    EXPECT_EQ(lines, 2u) << log;
}

TEST_P(ProxyTool, ListensAndConnectsOverIpv6) {
    scoped_fd listener = listen_loopback(true);
    if (listener.get() < 0) {
        GTEST_SKIP() << "no IPv6 loopback here";
    }
    tool_server s =
        start_proxy("[::1]:" + std::to_string(local_port(listener.get())), {}, "[::1]:0");
    ASSERT_NE(s.port, 0);
    std::thread upstream([&] {
        scoped_fd fd = accept_one(listener.get());
        std::string request = read_to_end(fd.get());
        send_all(fd.get(), "v6 " + request);
    });
    scoped_fd client = connect_to("::1", s.port);
    ASSERT_GE(client.get(), 0);
    ASSERT_TRUE(send_all(client.get(), "hello"));
    ::shutdown(client.get(), SHUT_WR);
    EXPECT_EQ(read_to_end(client.get()), "v6 hello");
    upstream.join();
    EXPECT_EQ(stop(s), 0) << s.process->err();
}

TEST_P(ProxyTool, IdlePairIsClosedOnBothSides) {
    scoped_fd listener = listen_loopback();
    tool_server s = start_proxy(upstream_at(listener.get()), {"--idle-timeout-ms", "200"});
    ASSERT_NE(s.port, 0);
    scoped_fd client = connect_to("127.0.0.1", s.port);
    ASSERT_GE(client.get(), 0);
    scoped_fd upstream = accept_one(listener.get());
    ASSERT_GE(upstream.get(), 0);
    // Traffic first, then silence: only the silence counts.
    ASSERT_TRUE(send_all(client.get(), "ping"));
    char buf[4];
    ASSERT_EQ(::recv(upstream.get(), buf, sizeof(buf), MSG_WAITALL), 4);
    int error = -1;
    EXPECT_EQ(read_to_end(client.get(), &error), "");
    EXPECT_EQ(error, 0);
    EXPECT_EQ(read_to_end(upstream.get(), &error), "");
    EXPECT_EQ(error, 0);
    EXPECT_EQ(stop(s), 0) << s.process->err();
}

TEST_P(ProxyTool, ClientThatDoesNotReadStopsTheUpstreamSoon) {
    scoped_fd listener = listen_loopback();
    tool_server s = start_proxy(upstream_at(listener.get()));
    ASSERT_NE(s.port, 0);
    scoped_fd client = connect_to("127.0.0.1", s.port);
    ASSERT_GE(client.get(), 0);
    scoped_fd upstream = accept_one(listener.get());
    ASSERT_GE(upstream.get(), 0);
    limit_time(upstream.get(), 1s); // a send blocked this long: the proxy stopped reading
    std::vector<char> buf(1 << 16, 'y');
    std::size_t sent = 0;
    while (sent < (512u << 20)) {
        ssize_t n = ::send(upstream.get(), buf.data(), buf.size(), MSG_NOSIGNAL);
        if (n <= 0) {
            break;
        }
        sent += static_cast<std::size_t>(n);
    }
    // What the kernel buffers on three sockets plus the proxy's two buffers, not 512 MiB.
    EXPECT_LT(sent, 64u << 20);
    EXPECT_EQ(stop(s), 0) << s.process->err();
}

TEST_P(ProxyTool, CountsBytesRequestsAndErrorsInStatsAndMetrics) {
    scoped_fd listener = listen_loopback();
    tool_server s =
        start_proxy(upstream_at(listener.get()), {"--stats", "--metrics", "127.0.0.1:0"});
    ASSERT_NE(s.port, 0);
    std::uint16_t metrics = aioloop::testing::metrics_port(s.process->err());
    ASSERT_NE(metrics, 0) << s.process->err();
    {
        scoped_fd client = connect_to("127.0.0.1", s.port);
        scoped_fd upstream = accept_one(listener.get());
        ASSERT_TRUE(send_all(client.get(), std::string(1000, 'a')));
        ::shutdown(client.get(), SHUT_WR);
        EXPECT_EQ(read_to_end(upstream.get()).size(), 1000u);
        ASSERT_TRUE(send_all(upstream.get(), std::string(500, 'b')));
        upstream.reset();
        EXPECT_EQ(read_to_end(client.get()).size(), 500u);
    }
    {
        scoped_fd client = connect_to("127.0.0.1", s.port);
        scoped_fd upstream = accept_one(listener.get());
        ASSERT_TRUE(send_all(client.get(), "x"));
        char first;
        ASSERT_EQ(::recv(upstream.get(), &first, 1, 0), 1);
        close_with_reset(upstream); // an error
        read_to_end(client.get());
    }
    std::string body;
    for (int attempt = 0; attempt < 50; ++attempt) {
        std::this_thread::sleep_for(100ms); // the loop publishes its counters every 200 ms
        scoped_fd scrape = connect_to("127.0.0.1", metrics);
        send_all(scrape.get(), "GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n");
        body = read_to_end(scrape.get());
        if (number_after(body, "aioloop_errors_total") >= 1) {
            break;
        }
    }
    EXPECT_EQ(number_after(body, "aioloop_bytes_total{direction=\"in\"}"), 1001) << body;
    EXPECT_EQ(number_after(body, "aioloop_bytes_total{direction=\"out\"}"), 500) << body;
    EXPECT_EQ(number_after(body, "aioloop_requests_total"), 2) << body;
    EXPECT_EQ(number_after(body, "aioloop_errors_total"), 1) << body;
    EXPECT_EQ(stop(s), 0);
    std::string log = s.process->err();
    EXPECT_EQ(number_after(log, "bytes_in"), 1001) << log;
    EXPECT_EQ(number_after(log, "bytes_out"), 500) << log;
    EXPECT_EQ(number_after(log, "requests"), 2) << log;
    EXPECT_EQ(number_after(log, "errors"), 1) << log;
}

INSTANTIATE_TEST_SUITE_P(AllBackends, ProxyTool, all_backends(), backend_name);

} // namespace
