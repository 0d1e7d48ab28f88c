// Graceful stop of a server, by config.stop in-process and by a real SIGTERM to `aioloop echo`:
// it stops accepting (new connections are refused), lets an exchange in flight finish, and
// returns 0 well within the grace period.

#include <chrono>
#include <cstring>
#include <future>
#include <thread>

#include <signal.h>
#include <sys/socket.h>

#include <gtest/gtest.h>

#include <aioloop/apps/echo.hpp>

#include "support/echo_clients.hpp"
#include "support/loop_fixture.hpp"
#include "support/tool_server.hpp"

namespace aioloop {
namespace {

using namespace std::chrono_literals;

std::string send_part(int fd, std::size_t from, std::size_t to) {
    std::vector<std::byte> out;
    for (std::size_t i = from; i < to; ++i) {
        out.push_back(testing::pattern_byte(5, 0, i));
    }
    if (::send(fd, out.data(), out.size(), MSG_NOSIGNAL) != static_cast<ssize_t>(out.size())) {
        return std::string("send: ") + std::strerror(errno);
    }
    return {};
}

std::string receive_checked(int fd, std::size_t from, std::size_t to) {
    std::vector<std::byte> in(to - from);
    for (std::size_t got = 0; got < in.size();) {
        ssize_t n = ::recv(fd, in.data() + got, in.size() - got, 0);
        if (n <= 0) {
            return n == 0 ? "end of stream" : std::string("recv: ") + std::strerror(errno);
        }
        got += static_cast<std::size_t>(n);
    }
    for (std::size_t i = 0; i < in.size(); ++i) {
        if (in[i] != testing::pattern_byte(5, 0, from + i)) {
            return "byte " + std::to_string(from + i) + " differs";
        }
    }
    return {};
}

// Whether a connect to `at` is refused, within `limit`: the listener was closed.
bool refused_within(const net::address& at, std::chrono::milliseconds limit) {
    auto until = std::chrono::steady_clock::now() + limit;
    while (std::chrono::steady_clock::now() < until) {
        testing::scoped_fd fd(::socket(at.family(), SOCK_STREAM | SOCK_CLOEXEC, 0));
        if (::connect(fd.get(), at.data(), at.size()) != 0 && errno == ECONNREFUSED) {
            return true;
        }
        std::this_thread::sleep_for(5ms);
    }
    return false;
}

// The in-flight exchange around the stop: half a message before, the rest after.
void exchange_across_stop(const net::address& at, const std::function<void()>& stop) {
    auto fd = testing::connect_blocking(at);
    ASSERT_EQ(send_part(fd.get(), 0, 3000), "");
    ASSERT_EQ(receive_checked(fd.get(), 0, 3000), "");
    ASSERT_EQ(send_part(fd.get(), 3000, 4000), "");
    stop();
    EXPECT_TRUE(refused_within(at, 3000ms)) << "still accepting after the stop";
    ASSERT_EQ(send_part(fd.get(), 4000, 9000), "");
    EXPECT_EQ(receive_checked(fd.get(), 3000, 9000), "");
}

class ServerStop : public testing::loop_test {};

TEST_P(ServerStop, ConfigStopLetsTheExchangeFinish) {
    apps::server_config config;
    config.name = "echo-test";
    config.listen = {*net::address::parse("127.0.0.1:0")};
    config.loop.backend = GetParam();
    config.loop.max_connections = 64;
    config.handle_signals = false; // the stop token instead
    config.grace = 10s;
    config.quiet = true;
    std::stop_source stop;
    config.stop = stop.get_token();
    std::promise<net::address> bound;
    config.on_listening = [&](const std::vector<net::address>& at) { bound.set_value(at.front()); };
    auto handler = apps::make_echo_handler();
    auto exit_code =
        std::async(std::launch::async, [&] { return apps::run_server(config, handler); });
    auto listening = bound.get_future();
    ASSERT_EQ(listening.wait_for(5s), std::future_status::ready);
    net::address at = listening.get();

    exchange_across_stop(at, [&] { stop.request_stop(); });
    // The last connection ended with the client's close: the server needn't wait for the grace.
    ASSERT_EQ(exit_code.wait_for(5s), std::future_status::ready) << "run_server didn't return";
    EXPECT_EQ(exit_code.get(), 0);
}

TEST_P(ServerStop, SigtermToTheToolLetsTheExchangeFinish) {
    auto server = testing::start_tool_server({"echo",
                                              "--listen",
                                              "127.0.0.1:0",
                                              "--backend",
                                              std::string(to_string(GetParam())),
                                              "--grace-ms",
                                              "10000"});
    ASSERT_NE(server.port, 0) << server.process->err();
    net::address at = *net::address::parse("127.0.0.1:" + std::to_string(server.port));
    exchange_across_stop(at, [&] { server.process->signal(SIGTERM); });
    auto code = server.process->wait(std::chrono::milliseconds(5000));
    ASSERT_TRUE(code.has_value()) << "no exit 5 s after SIGTERM:\n" << server.process->err();
    EXPECT_EQ(*code, 0) << server.process->err();
    EXPECT_NE(server.process->err().find("TERM: stopping"), std::string::npos)
        << server.process->err();
}

INSTANTIATE_TEST_SUITE_P(AllBackends,
                         ServerStop,
                         testing::all_backends(),
                         testing::backend_test_name);

} // namespace
} // namespace aioloop
