// The aio backend when more operations wait than the AIO context holds: the rest stay queued
// and go out as completions free slots; none is lost or failed, and the loop doesn't spin.

#include <algorithm>
#include <vector>

#include <sys/resource.h>

#include <gtest/gtest.h>

#include <aioloop/loop.hpp>

#include "support/sockets.hpp"

namespace aioloop {
namespace {

TEST(AioContextFull, WaitingReadsBeyondTheContextAllComplete) {
    loop_options options;
    options.backend = backend_kind::aio;
    options.max_connections = 1; // the smallest context the backend makes
    options.on_warning = [](std::string_view) {};
    auto made = loop::create(options);
    ASSERT_TRUE(made) << made.error().message;
    loop& ev = **made;

    // Far more waiting reads than the context's slots (the kernel gives a small context a few
    // hundred at most).
    constexpr int readers = 1500;
    rlimit fds{};
    ::getrlimit(RLIMIT_NOFILE, &fds);
    if (fds.rlim_cur < 2 * readers + 100) {
        fds.rlim_cur = std::min<rlim_t>(fds.rlim_max, 2 * readers + 100);
        ::setrlimit(RLIMIT_NOFILE, &fds);
    }
    if (fds.rlim_cur < 2 * readers + 100) {
        GTEST_SKIP() << "RLIMIT_NOFILE hard limit " << fds.rlim_max << " is below the "
                     << 2 * readers + 100 << " fds this test needs";
    }
    std::vector<std::pair<testing::scoped_fd, testing::scoped_fd>> pairs;
    for (int i = 0; i < readers; ++i) {
        pairs.push_back(testing::stream_pair());
    }
    int finished = 0;
    int wrong = 0;
    auto reader = [&](int fd) -> task<void> {
        std::byte buf[8];
        auto n = co_await ev.recv(fd, buf);
        if (!n || *n != 1) {
            ++wrong;
        }
        ++finished;
    };
    auto feeder = [&]() -> task<void> {
        // Let every reader queue its wait first, then answer them one by one.
        co_await ev.yield();
        co_await ev.yield();
        for (auto& [a, b] : pairs) {
            testing::write_all(a.get(), "x");
            co_await ev.yield();
        }
        for (int i = 0; i < 2000 && finished < readers; ++i) {
            co_await ev.sleep_for(std::chrono::milliseconds(1));
        }
        ev.stop();
    };
    for (auto& [a, b] : pairs) {
        ev.spawn(reader(b.get()));
    }
    ev.spawn(feeder());
    ev.run();
    EXPECT_EQ(finished, readers);
    EXPECT_EQ(wrong, 0);
    loop_stats stats = ev.stats();
    EXPECT_EQ(stats.stale_completions, 0u);
    // It really overflowed: more iocbs went in than a single io_submit could ever take here.
    EXPECT_GT(stats.syscalls[static_cast<std::size_t>(syscall_name::io_submit)], 2u);
}

} // namespace
} // namespace aioloop
