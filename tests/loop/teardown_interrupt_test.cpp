// A loop that a thread only made must leave that thread alone once it is destroyed. On io_uring
// the kernel registers the thread that calls io_uring_setup with the ring, and the ring's
// teardown (io_ring_exit_work, some 10-25 ms after the last close) sends every registered thread
// a TWA_SIGNAL task_work: a recv on a socket with SO_RCVTIMEO, blocked in that thread, returned
// EINTR. That dropped the client of HttpServer.SlowHeadersGet408 and of
// EchoFaults.SurvivesRunningOutOfFileDescriptors, whose fixtures make a loop only to learn that
// the backend exists.

#include <cerrno>
#include <chrono>
#include <memory>
#include <thread>

#include <sys/socket.h>
#include <sys/time.h>

#include <gtest/gtest.h>

#include <aioloop/loop.hpp>

#include "support/loop_fixture.hpp"
#include "support/sockets.hpp"

namespace aioloop {
namespace {

using namespace std::chrono_literals;

// Blocks this thread in recv on an idle socket for `window`: EAGAIN when it timed out, EINTR when
// something interrupted it.
int blocked_recv_error(std::chrono::milliseconds window) {
    int fds[2] = {-1, -1};
    if (::socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, fds) != 0) {
        return errno;
    }
    testing::scoped_fd quiet(fds[0]);
    testing::scoped_fd peer(fds[1]);
    timeval limit{0, static_cast<suseconds_t>(window.count() * 1000)};
    ::setsockopt(quiet.get(), SOL_SOCKET, SO_RCVTIMEO, &limit, sizeof(limit));
    char byte = 0;
    ssize_t n = ::recv(quiet.get(), &byte, 1, 0);
    return n < 0 ? errno : 0;
}

// Longer than the kernel's teardown takes here (10-25 ms), short enough for every backend.
constexpr auto window = 400ms;

class LoopTeardown : public testing::loop_test {
protected:
    // A loop an earlier test ran on this thread may still owe it one interruption: take it now,
    // so that only this test's loop can interrupt the window.
    void SetUp() override {
        for (int i = 0; i < 5 && blocked_recv_error(100ms) == EINTR; ++i) {
        }
        testing::loop_test::SetUp();
    }
};

TEST_P(LoopTeardown, LoopMadeButNeverRunDoesNotInterruptItsThread) {
    loop_.reset();
    EXPECT_EQ(blocked_recv_error(window), EAGAIN) << "EINTR: the loop's teardown interrupted us";
}

// How servers use loops: made on one thread, run and destroyed on another.
TEST_P(LoopTeardown, LoopRunElsewhereDoesNotInterruptTheThreadThatMadeIt) {
    std::thread runner([owned = std::move(loop_)]() mutable {
        owned->post([&owned] { owned->stop(); });
        owned->run();
        owned.reset();
    });
    runner.join();
    EXPECT_EQ(blocked_recv_error(window), EAGAIN) << "EINTR: the loop's teardown interrupted us";
}

INSTANTIATE_TEST_SUITE_P(AllBackends,
                         LoopTeardown,
                         testing::all_backends(),
                         testing::backend_test_name);

} // namespace
} // namespace aioloop
