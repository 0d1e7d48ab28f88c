// `aioloop echo` against clients that misbehave: peers that vanish (close, reset mid-message,
// reset while their echo is being written), connections that never send, a flood of connects,
// and a process out of file descriptors. None may take the server down: afterwards it still
// serves a new client, and SIGTERM still ends it with exit code 0.

#include <vector>

#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include <aioloop/apps/load.hpp>

#include "support/child_process.hpp"
#include "support/tool_server.hpp"

namespace {

using namespace std::chrono_literals;
using aioloop::backend_kind;
using aioloop::testing::start_tool_server;
using aioloop::testing::tool_server;

int connect_to(std::uint16_t port) {
    int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_in to{};
    to.sin_family = AF_INET;
    to.sin_port = htons(port);
    to.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (::connect(fd, reinterpret_cast<sockaddr*>(&to), sizeof(to)) != 0) {
        ::close(fd);
        return -1;
    }
    return fd;
}

// Closes with a RST instead of a FIN (and leaves no TIME_WAIT behind).
void reset(int fd) {
    linger hard{1, 0};
    ::setsockopt(fd, SOL_SOCKET, SO_LINGER, &hard, sizeof(hard));
    ::close(fd);
}

// A new client, 50 connections, every byte checked.
void expect_serves(std::uint16_t port) {
    aioloop::apps::load_config config;
    config.target = aioloop::net::address::parse("127.0.0.1:" + std::to_string(port)).value();
    config.connections = 50;
    config.min_size = 1;
    config.max_size = 3000;
    config.requests = 2000;
    config.grace = 10s;
    auto r = aioloop::apps::run_load(config);
    ASSERT_TRUE(r) << r.error().message;
    EXPECT_EQ(r->errors.total(), 0u) << r->first_error;
    EXPECT_EQ(r->requests, 2000u);
}

class EchoFaults : public ::testing::TestWithParam<backend_kind> {
protected:
    void SetUp() override {
        std::string why = aioloop::testing::backend_unavailable(GetParam());
        if (!why.empty()) {
            GTEST_SKIP() << why;
        }
    }
    std::vector<std::string> args(std::vector<std::string> extra) {
        std::vector<std::string> all{"echo",
                                     "--backend",
                                     std::string(to_string(GetParam())),
                                     "--listen",
                                     "127.0.0.1:0",
                                     "--grace-ms",
                                     "300"};
        all.insert(all.end(), extra.begin(), extra.end());
        return all;
    }
};

TEST_P(EchoFaults, SurvivesVanishingPeersIdlersAndAFloodOfConnects) {
    aioloop::testing::raise_fd_limit(4096);
    tool_server s = start_tool_server(args({"--quiet"}));
    ASSERT_NE(s.port, 0) << s.process->err();
    std::string message(100000, 'x');

    for (int i = 0; i < 200; ++i) { // connect and close at once
        int fd = connect_to(s.port);
        ASSERT_GE(fd, 0);
        ::close(fd);
    }
    for (int i = 0; i < 200; ++i) { // reset mid-message
        int fd = connect_to(s.port);
        ASSERT_GE(fd, 0);
        ::send(fd, message.data(), 700, MSG_NOSIGNAL);
        reset(fd);
    }
    for (int i = 0; i < 50; ++i) { // reset while the server writes a big echo back
        int fd = connect_to(s.port);
        ASSERT_GE(fd, 0);
        ::send(fd, message.data(), message.size(), MSG_NOSIGNAL | MSG_DONTWAIT);
        reset(fd);
    }
    std::vector<int> idle; // connect and never send
    for (int i = 0; i < 100; ++i) {
        int fd = connect_to(s.port);
        ASSERT_GE(fd, 0);
        idle.push_back(fd);
    }
    for (int i = 0; i < 5000; ++i) { // a flood: half closed, half reset
        int fd = connect_to(s.port);
        ASSERT_GE(fd, 0) << "connect " << i;
        if (i % 2 == 0) {
            reset(fd);
        } else {
            ::close(fd);
        }
    }
    ASSERT_FALSE(s.process->exited()) << s.process->err();
    expect_serves(s.port);
    ASSERT_FALSE(s.process->exited()) << s.process->err();

    // The idle connections are still open: SIGTERM gives them the grace period, then ends.
    s.process->signal(SIGTERM);
    EXPECT_EQ(s.process->wait(10s), 0) << s.process->err();
    for (int fd : idle) {
        ::close(fd);
    }
}

// With 40 descriptors, accept4 fails with EMFILE once the first few dozen are connected: the
// server must keep serving those, and accept the rest once some of them close.
TEST_P(EchoFaults, SurvivesRunningOutOfFileDescriptors) {
#if defined(__SANITIZE_ADDRESS__)
    // The sanitized tool can't be run out of fds: UBSan's vptr check opens a pipe to probe
    // memory, finds no fd, and reports a false "invalid vptr" that halts the server. The plain
    // build runs this test; tests/net/emfile_test.cpp covers EMFILE in-process under ASan.
    GTEST_SKIP() << "sanitizer build: UBSan needs free fds in the server under test";
#endif
    std::vector<std::string> command = args({});
    command.insert(command.begin(), {"prlimit", "--nofile=40", "--", AIOLOOP_TOOL_PATH});
    aioloop::testing::child_process server(command);
    ASSERT_TRUE(server.wait_for_stderr("listening on ", 10s)) << server.err();
    std::uint16_t port = aioloop::testing::listening_port(server.err());
    std::vector<int> held;
    for (int i = 0; i < 60; ++i) { // the kernel queues what the server can't accept
        int fd = connect_to(port);
        ASSERT_GE(fd, 0);
        held.push_back(fd);
    }
    EXPECT_TRUE(server.wait_for_stderr("accept on", 10s)) << server.err();
    // The last connection is queued behind EMFILE: it's answered once others close.
    ASSERT_EQ(::send(held.back(), "ping", 4, MSG_NOSIGNAL), 4);
    for (std::size_t i = 0; i + 1 < held.size(); ++i) {
        ::close(held[i]);
    }
    timeval limit{10, 0};
    ::setsockopt(held.back(), SOL_SOCKET, SO_RCVTIMEO, &limit, sizeof(limit));
    char buf[4];
    EXPECT_EQ(::recv(held.back(), buf, sizeof(buf), MSG_WAITALL), 4);
    ::close(held.back());
    EXPECT_FALSE(server.exited()) << server.err();
    server.signal(SIGTERM);
    EXPECT_EQ(server.wait(10s), 0) << server.err();
}

INSTANTIATE_TEST_SUITE_P(AllBackends,
                         EchoFaults,
                         ::testing::Values(backend_kind::aio,
                                           backend_kind::epoll,
                                           backend_kind::uring),
                         [](const ::testing::TestParamInfo<backend_kind>& info) {
                             return std::string(aioloop::to_string(info.param));
                         });

} // namespace
