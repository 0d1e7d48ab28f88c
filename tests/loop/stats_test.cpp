// Per-loop statistics as code reads them: on the aio backend, operations that become ready in the
// same turn go to the kernel in one io_submit and come back through the ring; on every backend,
// operations are counted by kind and no completion is ever stale.

#include <chrono>
#include <numeric>

#include <gtest/gtest.h>

#include <aioloop/loop.hpp>

#include "support/loop_fixture.hpp"
#include "support/sockets.hpp"

namespace aioloop {
namespace {

using namespace std::chrono_literals;

class Stats : public testing::loop_test {};

constexpr std::size_t index(op_kind kind) {
    return static_cast<std::size_t>(kind);
}

// `n` readers, each on a socket that already holds data, all started in the same turn.
void read_ready_sockets(loop& ev, std::size_t n) {
    std::vector<std::pair<testing::scoped_fd, testing::scoped_fd>> pairs;
    for (std::size_t i = 0; i < n; ++i) {
        pairs.push_back(testing::stream_pair());
        testing::write_all(pairs.back().first.get(), "ready");
    }
    std::size_t done = 0;
    auto reader = [](loop* l, int fd, std::size_t* count) -> task<void> {
        std::byte buf[16];
        auto reading = l->recv(fd, buf);
        auto r = co_await std::move(reading);
        if (r && *r == 5) {
            ++*count;
        }
    };
    auto main = [&]() -> task<void> {
        for (auto& [a, b] : pairs) {
            ev.spawn(reader(&ev, b.get(), &done));
        }
        while (done < n) {
            auto nap = ev.sleep_for(1ms);
            co_await nap;
        }
    };
    ev.block_on(main());
    ASSERT_EQ(done, n);
}

TEST_P(Stats, CountsOperationsByKind) {
    read_ready_sockets(ev(), 8);
    loop_stats s = ev().stats();
    EXPECT_EQ(s.ops_started[index(op_kind::recv)], 8u);
    EXPECT_EQ(s.ops_completed[index(op_kind::recv)], 8u);
    EXPECT_EQ(s.ops_started[index(op_kind::send)], 0u);
    EXPECT_GT(s.turns, 0u);
    EXPECT_EQ(s.stale_completions, 0u);
    EXPECT_NE(format_stats(s).find("stale_completions"), std::string::npos) << format_stats(s);
}

TEST_P(Stats, ABatchOfReadySocketsIsOneSubmission) {
    if (GetParam() == backend_kind::epoll) {
        GTEST_SKIP() << "epoll submits nothing: it reads with plain system calls";
    }
    constexpr std::size_t n = 32;
    read_ready_sockets(ev(), n);
    loop_stats s = ev().stats();
    std::uint64_t submissions =
        std::accumulate(s.batch_sizes.begin(), s.batch_sizes.end(), std::uint64_t{0});
    ASSERT_GT(submissions, 0u);
    // The readers started in one turn: their iocbs (SQEs) went in batches, not one by one.
    EXPECT_GT(double(s.iocbs_submitted) / double(submissions), 2.0)
        << s.iocbs_submitted << " iocbs in " << submissions << " submissions\n"
        << format_stats(s);
    std::uint64_t big_batches = 0;
    for (std::size_t k = 4; k < batch_buckets; ++k) { // batches of 16 or more
        big_batches += s.batch_sizes[k];
    }
    EXPECT_GE(big_batches, 1u) << format_stats(s);
    if (GetParam() == backend_kind::aio) {
        EXPECT_GT(s.syscalls[static_cast<std::size_t>(syscall_name::io_submit)], 0u);
        // The readiness POLLs fired inside io_submit (the data was there): their completions
        // were read from the ring in user space.
        EXPECT_GT(s.events_from_ring, 0u) << format_stats(s);
    }
    EXPECT_EQ(s.stale_completions, 0u);
}

TEST_P(Stats, ForceSyscallsReapsNothingFromTheRing) {
    if (GetParam() != backend_kind::aio) {
        GTEST_SKIP() << "ring reaping is the aio backend's";
    }
    loop_options options;
    options.backend = backend_kind::aio;
    options.max_connections = 64;
    options.force_syscalls = true;
    auto made = loop::create(options);
    ASSERT_TRUE(made) << made.error().message;
    read_ready_sockets(**made, 8);
    loop_stats s = (*made)->stats();
    EXPECT_EQ(s.events_from_ring, 0u) << format_stats(s);
    EXPECT_GT(s.events_from_syscall, 0u) << format_stats(s);
    EXPECT_EQ(s.stale_completions, 0u);
}

INSTANTIATE_TEST_SUITE_P(AllBackends, Stats, testing::all_backends(), testing::backend_test_name);

} // namespace
} // namespace aioloop
