// Out of file descriptors: with RLIMIT_NOFILE lowered so that only two more fds fit, a third
// connection makes accept() fail with EMFILE. The connections already accepted keep working,
// and accepting resumes once an fd is freed. The limit is restored whatever happens.

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstring>
#include <deque>
#include <functional>
#include <mutex>
#include <thread>

#include <fcntl.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include <aioloop/net/tcp_listener.hpp>

#include "support/echo_clients.hpp"
#include "support/loop_echo.hpp"
#include "support/loop_fixture.hpp"

namespace aioloop {
namespace {

using namespace std::chrono_literals;

// Lowers RLIMIT_NOFILE's soft limit and puts the old one back on destruction.
class fd_limit_guard {
public:
    fd_limit_guard() { ok_ = ::getrlimit(RLIMIT_NOFILE, &saved_) == 0; }
    fd_limit_guard(const fd_limit_guard&) = delete;
    fd_limit_guard& operator=(const fd_limit_guard&) = delete;
    ~fd_limit_guard() {
        if (ok_) {
            ::setrlimit(RLIMIT_NOFILE, &saved_);
        }
    }
    bool lower_to(rlim_t soft) {
        rlimit lowered = saved_;
        lowered.rlim_cur = soft;
        return ok_ && ::setrlimit(RLIMIT_NOFILE, &lowered) == 0;
    }

private:
    rlimit saved_{};
    bool ok_ = false;
};

class Emfile : public testing::loop_test {};

TEST_P(Emfile, AcceptBacksOffAndResumesWhenFdsAreFreed) {
    auto listener = net::tcp_listener::bind(ev(), *net::address::parse("127.0.0.1:0"));
    ASSERT_TRUE(listener) << listener.error().message();
    auto at = listener->local_address();
    // The clients' sockets exist before the limit drops: only the server's accepts need new fds.
    std::vector<testing::scoped_fd> clients;
    for (int i = 0; i < 3; ++i) {
        clients.emplace_back(::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
        ASSERT_GE(clients.back().get(), 0);
    }
    testing::scoped_fd null_fd(::open("/dev/null", O_RDONLY | O_CLOEXEC));
    ASSERT_GE(null_fd.get(), 0);

    // Blocking client steps run one after the other on a thread made before the limit drops:
    // with no fd to spare, UBSan's check of a new thread's first virtual call (it probes memory
    // through a pipe) would report a false "invalid vptr".
    std::atomic<int> steps_done{0};
    std::string client_error;
    std::mutex steps_mutex;
    std::condition_variable steps_ready;
    std::deque<std::function<std::string()>> steps;
    bool no_more_steps = false;
    std::thread client([&] {
        for (;;) {
            std::unique_lock lock(steps_mutex);
            steps_ready.wait(lock, [&] { return !steps.empty() || no_more_steps; });
            if (steps.empty()) {
                return;
            }
            auto step = std::move(steps.front());
            steps.pop_front();
            lock.unlock();
            std::string error = step();
            lock.lock();
            client_error += error;
            ++steps_done;
        }
    });
    auto client_step = [&](std::function<std::string()> step) {
        std::lock_guard lock(steps_mutex);
        steps.push_back(std::move(step));
        steps_ready.notify_one();
    };
    auto finish_client = [&] {
        if (!client.joinable()) {
            return;
        }
        {
            std::lock_guard lock(steps_mutex);
            no_more_steps = true;
            steps_ready.notify_one();
        }
        client.join();
    };
    struct joiner {
        std::function<void()> join;
        ~joiner() { join(); }
    } join_on_exit{finish_client};
    fd_limit_guard guard;
    ASSERT_TRUE(guard.lower_to(static_cast<rlim_t>(null_fd.get() + 32)));
    // Fill every free number below the limit, then free exactly two.
    std::vector<testing::scoped_fd> fillers;
    for (;;) {
        int fd = ::fcntl(null_fd.get(), F_DUPFD_CLOEXEC, 0);
        if (fd < 0) {
            ASSERT_EQ(errno, EMFILE) << std::strerror(errno);
            break;
        }
        fillers.emplace_back(fd);
    }
    ASSERT_GE(fillers.size(), 3u);
    fillers.pop_back();
    fillers.pop_back();

    testing::echo_server_state state;
    std::stop_source stop;
    ev().spawn(testing::accept_echo(&*listener, 16 * 1024, &state), stop.get_token());

    auto connect_and_echo = [&](std::size_t i) {
        return [&, i]() -> std::string {
            int fd = clients[i].get();
            if (::connect(fd, at.data(), at.size()) != 0) {
                return "connect: " + std::string(std::strerror(errno));
            }
            return testing::echo_blocking(fd, i, 0, 32 * 1024);
        };
    };
    auto main = [&]() -> task<void> {
        client_step(connect_and_echo(0));
        client_step(connect_and_echo(1));
        auto two = testing::wait_until([&] { return steps_done == 2; }, 5s);
        bool two_ok = co_await std::move(two);
        EXPECT_TRUE(two_ok) << "step two";
        EXPECT_EQ(state.accepted, 2u);
        // The third connection is queued by the kernel, but there is no fd to accept it into.
        client_step([&]() -> std::string {
            int fd = clients[2].get();
            if (::connect(fd, at.data(), at.size()) != 0) {
                return "connect: " + std::string(std::strerror(errno));
            }
            return {};
        });
        auto refused =
            testing::wait_until([&] { return steps_done == 3 && state.accept_errors >= 3; }, 5s);
        bool refused_ok = co_await std::move(refused);
        EXPECT_TRUE(refused_ok) << "step refused";
        EXPECT_EQ(state.last_accept_error, EMFILE);
        EXPECT_EQ(state.accepted, 2u);
        // Meanwhile the connections already open keep working.
        client_step([&] { return testing::echo_blocking(clients[0].get(), 0, 1, 64 * 1024); });
        auto still = testing::wait_until([&] { return steps_done == 4; }, 5s);
        bool still_ok = co_await std::move(still);
        EXPECT_TRUE(still_ok) << "step still";
        // An fd comes free: accept resumes and the waiting connection is served.
        fillers.pop_back();
        client_step([&] { return testing::echo_blocking(clients[2].get(), 2, 0, 32 * 1024); });
        auto resumed = testing::wait_until([&] { return steps_done == 5; }, 5s);
        bool resumed_ok = co_await std::move(resumed);
        EXPECT_TRUE(resumed_ok) << "step resumed";
        EXPECT_EQ(state.accepted, 3u);
        for (auto& c : clients) {
            ::shutdown(c.get(), SHUT_WR);
        }
        auto closed = testing::wait_until([&] { return state.open == 0; }, 5s);
        bool closed_ok = co_await std::move(closed);
        EXPECT_TRUE(closed_ok) << "step closed";
        stop.request_stop();
    };
    ev().block_on(main());
    finish_client();
    EXPECT_EQ(steps_done.load(), 5);
    EXPECT_EQ(client_error, "");
    EXPECT_TRUE(state.errors.empty()) << state.errors.front();
    EXPECT_EQ(ev().stats().stale_completions, 0u);
}

INSTANTIATE_TEST_SUITE_P(AllBackends, Emfile, testing::all_backends(), testing::backend_test_name);

} // namespace
} // namespace aioloop
