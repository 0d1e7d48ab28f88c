#include <string>

#include <poll.h>

#include <climits>
#include <gtest/gtest.h>

#include <aioloop/sys/aio.hpp>

#include "support/sockets.hpp"
#include "sys/aio_test_support.hpp"

namespace aioloop::sys {
namespace {

using aioloop::testing::stream_pair;
using aioloop::testing::write_all;
using testing::reap_n;
using testing::reap_now;

TEST(AioContext, CreatesAndUsesTheRing) {
    auto ctx = aio_context::create(64);
    ASSERT_TRUE(ctx) << setup_error_message(64, ctx.error());
    EXPECT_TRUE(ctx->ring_in_use()) << ctx->ring_unusable_reason();
    EXPECT_TRUE(ctx->ring_unusable_reason().empty());
    EXPECT_EQ(ctx->capacity(), 64u);
    EXPECT_NE(ctx->id(), 0u);
    EXPECT_EQ(ctx->ring_ready(), 0u);
}

TEST(AioContext, RingCanBeTurnedOff) {
    auto ctx = aio_context::create(8, aio_options{.use_ring = false});
    ASSERT_TRUE(ctx) << setup_error_message(8, ctx.error());
    EXPECT_FALSE(ctx->ring_in_use());
    EXPECT_FALSE(ctx->ring_unusable_reason().empty());
    EXPECT_NE(ctx->ring_unusable_reason().find("turned off"), std::string::npos)
        << ctx->ring_unusable_reason();

    // Completions still arrive, all through io_getevents.
    auto [a, b] = stream_pair();
    char buf[4];
    iocb cb{};
    prep_pread(cb, a.get(), buf, sizeof(buf), 0, 1);
    iocb* batch[] = {&cb};
    ASSERT_EQ(ctx->submit(batch), 1u);
    EXPECT_EQ(ctx->ring_ready(), 0u);
    auto events = reap_n(*ctx, 1);
    ASSERT_EQ(events.size(), 1u);
    EXPECT_EQ(events[0].res, -EAGAIN);
    EXPECT_EQ(ctx->counters().events_from_ring, 0u);
    EXPECT_EQ(ctx->counters().events_from_syscall, 1u);
    EXPECT_GE(ctx->counters().getevents_calls, 1u);
}

TEST(AioContext, MovesKeepTheContext) {
    auto created = aio_context::create(16);
    ASSERT_TRUE(created) << setup_error_message(16, created.error());
    aio_context_t id = created->id();

    aio_context moved(std::move(*created));
    EXPECT_EQ(moved.id(), id);
    EXPECT_EQ(created->id(), 0u); // NOLINT(bugprone-use-after-move): the moved-from state
    EXPECT_FALSE(created->ring_in_use());
    EXPECT_TRUE(moved.ring_in_use()) << moved.ring_unusable_reason();
    EXPECT_EQ(moved.capacity(), 16u);

    auto [a, b] = stream_pair();
    char buf[4];
    iocb cb{};
    prep_pread(cb, a.get(), buf, sizeof(buf), 0, 3);
    iocb* batch[] = {&cb};
    ASSERT_EQ(moved.submit(batch), 1u);

    // Assigning over a live context destroys that one and takes the other's pending work.
    auto other = aio_context::create(4, aio_options{.use_ring = false});
    ASSERT_TRUE(other) << setup_error_message(4, other.error());
    *other = std::move(moved);
    EXPECT_EQ(other->id(), id);
    EXPECT_TRUE(other->ring_in_use());
    EXPECT_EQ(other->counters().iocbs_submitted, 1u);
    auto events = reap_now(*other);
    ASSERT_EQ(events.size(), 1u);
    EXPECT_EQ(events[0].data, 3u);
    EXPECT_EQ(events[0].res, -EAGAIN);

    // Failed-back iocbs move along too.
    prep_pread(cb, -1, buf, sizeof(buf), 0, 4);
    ASSERT_EQ(other->submit(batch), 1u);
    aio_context last(std::move(*other));
    events = reap_now(last);
    ASSERT_EQ(events.size(), 1u);
    EXPECT_EQ(events[0].data, 4u);
    EXPECT_EQ(events[0].res, -EBADF);

    // Self-assignment is harmless.
    aio_context& alias = last;
    last = std::move(alias);
    EXPECT_EQ(last.id(), id);
}

// io_cancel of a pending POLL succeeds, and the POLL still completes through the ring, with
// res 0 (fs/aio.c aio_poll_complete_work: a cancelled poll's mask is 0). Cancelling something
// that isn't pending is EINVAL.
TEST(AioContext, CancelledPollStillCompletesOnce) {
    auto [a, b] = stream_pair();
    auto ctx = aio_context::create(16);
    ASSERT_TRUE(ctx) << setup_error_message(16, ctx.error());

    iocb cb{};
    prep_poll(cb, a.get(), POLLIN, 55);
    iocb* batch[] = {&cb};
    ASSERT_EQ(ctx->submit(batch), 1u);
    auto cancelled = ctx->cancel(cb);
    ASSERT_TRUE(cancelled) << cancelled.error().message();
    EXPECT_EQ(ctx->counters().cancel_calls, 1u);

    auto events = reap_n(*ctx, 1);
    ASSERT_EQ(events.size(), 1u) << "a cancelled POLL never completed";
    EXPECT_EQ(events[0].data, 55u);
    EXPECT_EQ(events[0].obj, reinterpret_cast<std::uintptr_t>(&cb));
    EXPECT_EQ(events[0].res, 0);

    // Completed: cancelling again is EINVAL, and data later produces nothing.
    auto again = ctx->cancel(cb);
    ASSERT_FALSE(again);
    EXPECT_EQ(again.error().value(), EINVAL);
    write_all(b.get(), "x");
    EXPECT_TRUE(reap_now(*ctx).empty());

    // Never submitted: EINVAL.
    iocb never{};
    prep_poll(never, a.get(), POLLIN, 56);
    auto unknown = ctx->cancel(never);
    ASSERT_FALSE(unknown);
    EXPECT_EQ(unknown.error().value(), EINVAL);

    // A POLL that already completed (inside io_submit) can't be cancelled either.
    ASSERT_EQ(ctx->submit(batch), 1u);
    EXPECT_EQ(ctx->ring_ready(), 1u);
    auto late = ctx->cancel(cb);
    ASSERT_FALSE(late);
    EXPECT_EQ(late.error().value(), EINVAL);
    events = reap_now(*ctx);
    ASSERT_EQ(events.size(), 1u);
    EXPECT_EQ(events[0].res, POLLIN);
    EXPECT_EQ(ctx->counters().cancel_calls, 4u);
}

// A synchronous socket read can't be cancelled: it completed inside io_submit.
TEST(AioContext, CancelOfACompletedReadIsEinval) {
    auto [a, b] = stream_pair();
    auto ctx = aio_context::create(16);
    ASSERT_TRUE(ctx) << setup_error_message(16, ctx.error());
    char buf[4];
    iocb cb{};
    prep_pread(cb, a.get(), buf, sizeof(buf), 0, 1);
    iocb* batch[] = {&cb};
    ASSERT_EQ(ctx->submit(batch), 1u);
    auto result = ctx->cancel(cb);
    ASSERT_FALSE(result);
    EXPECT_EQ(result.error().value(), EINVAL);
    EXPECT_EQ(reap_now(*ctx).size(), 1u);
}

// Destroying a context with POLLs still pending cancels them (io_destroy waits for them).
TEST(AioContext, DestroyWithPendingPolls) {
    auto [a, b] = stream_pair();
    std::vector<iocb> cbs(32);
    std::vector<iocb*> ptrs;
    {
        auto ctx = aio_context::create(64);
        ASSERT_TRUE(ctx) << setup_error_message(64, ctx.error());
        for (std::size_t i = 0; i < cbs.size(); ++i) {
            prep_poll(cbs[i], a.get(), POLLIN, i);
            ptrs.push_back(&cbs[i]);
        }
        ASSERT_EQ(ctx->submit(ptrs), cbs.size());
    }
    // The sockets and the iocbs outlive the context; data now wakes no one.
    write_all(b.get(), "x");
    SUCCEED();
}

// io_setup fails with EAGAIN when the request doesn't fit under fs.aio-max-nr, root or not, and
// the message names the knob, its value and fs.aio-nr.
TEST(AioContext, SetupOverTheSystemLimitIsEagain) {
    auto limits = read_aio_limits();
    ASSERT_TRUE(limits) << "can't read /proc/sys/fs/aio-max-nr";
    if (limits->max_nr >= UINT_MAX) {
        GTEST_SKIP() << "fs.aio-max-nr=" << limits->max_nr << " leaves no larger request";
    }
    // fs/aio.c ioctx_alloc: doubled requests above 0x10000000 / 32 are EINVAL before the limit
    // is checked.
    if (limits->max_nr + 1 > 0x10000000u / sizeof(io_event) / 2) {
        GTEST_SKIP() << "fs.aio-max-nr=" << limits->max_nr << " is above what io_setup accepts";
    }
    auto nr = static_cast<unsigned>(limits->max_nr + 1);
    auto ctx = aio_context::create(nr);
    ASSERT_FALSE(ctx) << "io_setup(" << nr << ") succeeded";
    EXPECT_EQ(ctx.error().value(), EAGAIN) << ctx.error().message();

    std::string message = setup_error_message(nr, ctx.error());
    EXPECT_NE(message.find("io_setup(" + std::to_string(nr) + ")"), std::string::npos) << message;
    EXPECT_NE(message.find("EAGAIN"), std::string::npos) << message;
    EXPECT_NE(message.find("fs.aio-max-nr=" + std::to_string(limits->max_nr)), std::string::npos)
        << message;
    EXPECT_NE(message.find("fs.aio-nr="), std::string::npos) << message;
}

} // namespace
} // namespace aioloop::sys
