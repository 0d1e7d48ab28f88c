// The uring backend's turns and setup: system calls per turn, waits and timeouts, more work than
// the SQ or the CQ holds, the thread the ring binds to, and refusals.

#include <cstdio>
#include <thread>

#include <poll.h>
#include <sys/syscall.h>
#include <sys/utsname.h>

#include <aioloop/sys/probe.hpp>

#include "support/seccomp.hpp"
#include "support/sockets.hpp"
#include "uring_test_support.hpp"

namespace aioloop::backend {
namespace {

using namespace uring_testing;
using aioloop::testing::scoped_fd;
using aioloop::testing::stream_pair;
using aioloop::testing::tcp_pair;
using aioloop::testing::write_all;

TEST_F(UringBackend, UsesDeferTaskrunFromLinuxSixOne) {
    utsname names{};
    ASSERT_EQ(::uname(&names), 0);
    auto version = sys::parse_kernel_version(names.release);
    ASSERT_TRUE(version.has_value()) << names.release;
    if (*version < std::pair{6, 1}) {
        GTEST_SKIP() << "kernel " << names.release << " predates IORING_SETUP_DEFER_TASKRUN";
    }
    unsigned flags = uring_->setup_flags();
    EXPECT_NE(flags & IORING_SETUP_DEFER_TASKRUN, 0U);
    EXPECT_NE(flags & IORING_SETUP_SINGLE_ISSUER, 0U);
    EXPECT_EQ(uring_->setup_note(), "");
    EXPECT_EQ(backend_->name(), "uring");
}

TEST_F(UringBackend, ZeroTimeoutNeverSleeps) {
    auto [a, b] = stream_pair();
    start(op_kind::recv, a.get());
    EXPECT_TRUE(turn().empty());
    EXPECT_TRUE(turn().empty());
    EXPECT_EQ(backend_->stats().blocking_waits, 0U);
    EXPECT_EQ(enters(backend_->stats()), 2U);
}

TEST_F(UringBackend, TimeoutReturnsWithNothingDone) {
    auto [a, b] = stream_pair();
    start(op_kind::recv, a.get());
    ASSERT_TRUE(backend_->poll(done_, 10ms).has_value());
    EXPECT_TRUE(done_.empty());
    EXPECT_EQ(backend_->stats().blocking_waits, 1U);
    // The submission and the wait were one call.
    EXPECT_EQ(enters(backend_->stats()), 1U);
}

TEST_F(UringBackend, ATurnCostsOneEnterForEverythingQueued) {
    std::vector<std::pair<scoped_fd, scoped_fd>> pairs;
    for (int i = 0; i < 4; ++i) {
        pairs.push_back(stream_pair());
        write_all(pairs.back().second.get(), "data");
    }
    for (auto& [a, b] : pairs) {
        start(op_kind::recv, a.get());
        start_send(a.get(), "sent");
        start_poll(a.get(), POLLOUT);
    }
    const loop_stats& stats = backend_->stats();
    EXPECT_EQ(enters(stats), 0U); // start() only fills the SQ
    auto got = turn();
    EXPECT_EQ(enters(stats), 1U);
    EXPECT_EQ(stats.iocbs_submitted, 12U);
    EXPECT_EQ(stats.batch_sizes[3], 1U); // one batch in [8, 16)
    // Each of them could finish inside the submission, and did.
    EXPECT_EQ(got.size(), 12U);
    EXPECT_EQ(stats.events_from_syscall + stats.events_from_ring, 12U);
    for (operation* op : got) {
        EXPECT_GT(op->result, 0) << to_string(op->kind);
    }
    // An idle turn is one blocking call too.
    ASSERT_TRUE(backend_->poll(done_, 1ms).has_value());
    EXPECT_EQ(enters(stats), 2U);
    EXPECT_EQ(stats.blocking_waits, 1U);
}

TEST_F(UringBackend, MoreOperationsThanTheSqHoldsAreAllSubmitted) {
    auto [a, b] = stream_pair();
    const unsigned count = 2 * uring_->sq_entries() + 3;
    for (unsigned i = 0; i < count; ++i) {
        start_poll(a.get(), POLLOUT);
    }
    auto got = collect(count);
    EXPECT_EQ(got.size(), count);
    const loop_stats& stats = backend_->stats();
    EXPECT_EQ(stats.iocbs_submitted, count);
    EXPECT_EQ(enters(stats), 3U); // two full SQs from start(), the rest from poll()
    EXPECT_EQ(uring_->in_flight(), 0U);
}

TEST_F(UringBackend, CompletionsBeyondTheCqAreKept) {
    // A small CQ (512 for max_operations 1) and three full SQs submitted before any reaping:
    // the kernel keeps what doesn't fit (IORING_FEAT_NODROP) and poll() drains it all.
    backend_config config;
    config.max_operations = 1;
    auto made = make_uring_backend(config);
    ASSERT_TRUE(made.has_value()) << made.error().message;
    backend_ = std::move(*made);
    uring_ = dynamic_cast<uring_backend*>(backend_.get());
    auto [a, b] = stream_pair();
    const unsigned count = 3 * uring_->sq_entries() + 1;
    for (unsigned i = 0; i < count; ++i) {
        start_poll(a.get(), POLLOUT);
    }
    auto got = collect(count);
    EXPECT_EQ(got.size(), count);
    EXPECT_EQ(uring_->in_flight(), 0U);
    EXPECT_TRUE(turn().empty());
}

TEST_F(UringBackend, BindsToTheThreadThatFirstSubmits) {
    // Made on this thread, used on another: IORING_SETUP_SINGLE_ISSUER must not refuse it.
    auto [a, b] = stream_pair();
    write_all(b.get(), "moved");
    std::size_t completed = 0;
    std::thread other([this, &completed, fd = a.get()] {
        start(op_kind::recv, fd);
        completed = collect(1).size();
    });
    other.join();
    EXPECT_EQ(completed, 1U);
    EXPECT_EQ(text(ops_.back()), "moved");
}

TEST(UringBackendSetup, RefusalUnderSeccompSaysWhy) {
    auto child = testing::run_in_child_with_seccomp({SYS_io_uring_setup}, EPERM, [] {
        auto made = make_uring_backend(backend_config{});
        if (made) {
            return 1;
        }
        const std::string& message = made.error().message;
        bool ok = made.error().code.value() == EPERM &&
                  message.find("io_uring_setup") != std::string::npos &&
                  message.find("EPERM") != std::string::npos &&
                  message.find('\n') == std::string::npos;
        if (!ok) {
            std::fputs(message.c_str(), stderr);
        }
        return ok ? 0 : 2;
    });
    EXPECT_TRUE(child.ok()) << child.describe();
}

} // namespace
} // namespace aioloop::backend
