#include <atomic>
#include <string>
#include <thread>
#include <vector>

#include <poll.h>
#include <pthread.h>
#include <signal.h>

#include <gtest/gtest.h>

#include <aioloop/sys/aio.hpp>

#include "support/sockets.hpp"
#include "sys/aio_ring.hpp"
#include "sys/aio_test_support.hpp"

// Reaping completions: from the ring mapped into the process, and with io_getevents.

namespace aioloop::sys {
namespace {

using aioloop::testing::stream_pair;
using aioloop::testing::write_all;
using testing::reap_n;
using testing::reap_now;

aio_context make_context(unsigned nr_events = 64, aio_options options = {}) {
    auto ctx = aio_context::create(nr_events, options);
    if (!ctx) {
        ADD_FAILURE() << setup_error_message(nr_events, ctx.error());
        std::abort();
    }
    return std::move(*ctx);
}

TEST(Ring, HeaderIsTheLayoutWeKnow) {
    auto ctx = make_context(8);
    ASSERT_TRUE(ctx.ring_in_use()) << ctx.ring_unusable_reason();
    const auto* ring = reinterpret_cast<const aio_ring*>(ctx.id());
    EXPECT_EQ(ring->magic, aio_ring_magic);
    EXPECT_EQ(ring->incompat_features, aio_ring_incompat_features);
    EXPECT_EQ(ring->header_length, sizeof(aio_ring));
    // The kernel gives more slots than asked (doubled, then rounded up to whole pages).
    EXPECT_GT(ring->nr, 8u);
    EXPECT_EQ(ring->head, ring->tail);
}

// A batch whose iocbs all complete inside io_submit, each with a different result.
struct workload {
    std::pair<aioloop::testing::scoped_fd, aioloop::testing::scoped_fd> pair = stream_pair();
    std::string msg = "workload";
    char buf[32] = {};
    char empty[8] = {};
    iocb cbs[5];
    iocb* batch[5];

    workload() {
        int a = pair.first.get();
        int b = pair.second.get();
        prep_pwrite(cbs[0], b, msg.data(), msg.size(), 0, 10);
        prep_poll(cbs[1], a, POLLIN, 11);
        prep_pread(cbs[2], a, buf, sizeof(buf), 0, 12);
        prep_pread(cbs[3], b, empty, sizeof(empty), 0, 13); // -EAGAIN
        prep_poll(cbs[4], b, POLLOUT, 14);
        for (int i = 0; i < 5; ++i) {
            batch[i] = &cbs[i];
        }
    }
};

TEST(Ring, RingAndSyscallReapTheSameEvents) {
    auto ring_ctx = make_context();
    auto sys_ctx = make_context(64, aio_options{.use_ring = false});
    ASSERT_TRUE(ring_ctx.ring_in_use()) << ring_ctx.ring_unusable_reason();
    ASSERT_FALSE(sys_ctx.ring_in_use());

    workload w1;
    workload w2;
    ASSERT_EQ(ring_ctx.submit(w1.batch), 5u);
    ASSERT_EQ(sys_ctx.submit(w2.batch), 5u);
    EXPECT_EQ(ring_ctx.ring_ready(), 5u);
    EXPECT_EQ(sys_ctx.ring_ready(), 0u);

    // min_nr is satisfied by the ring: no system call even though the wait isn't zero.
    std::vector<io_event> from_ring(16);
    timespec wait = testing::to_timespec(std::chrono::seconds(2));
    auto got = ring_ctx.reap(from_ring, 5, &wait);
    ASSERT_TRUE(got) << got.error().message();
    from_ring.resize(*got);
    auto from_syscall = reap_n(sys_ctx, 5);

    ASSERT_EQ(from_ring.size(), 5u);
    ASSERT_EQ(from_syscall.size(), 5u);
    auto expected = std::vector<std::pair<std::uint64_t, std::int64_t>>{
        {10, 8}, {11, POLLIN}, {12, 8}, {13, -EAGAIN}, {14, POLLOUT}};
    EXPECT_EQ(testing::data_and_res(from_ring), expected);
    EXPECT_EQ(testing::data_and_res(from_syscall), expected);
    EXPECT_EQ(std::string(w1.buf, 8), w1.msg);
    EXPECT_EQ(std::string(w2.buf, 8), w2.msg);

    const aio_counters& r = ring_ctx.counters();
    EXPECT_EQ(r.getevents_calls, 0u);
    EXPECT_EQ(r.events_from_ring, 5u);
    EXPECT_EQ(r.events_from_syscall, 0u);
    EXPECT_EQ(r.eagain_results, 1u);
    const aio_counters& s = sys_ctx.counters();
    EXPECT_GE(s.getevents_calls, 1u);
    EXPECT_EQ(s.events_from_ring, 0u);
    EXPECT_EQ(s.events_from_syscall, 5u);
    EXPECT_EQ(s.eagain_results, 1u);

    // A zero wait on an empty ring makes no system call either.
    EXPECT_TRUE(reap_now(ring_ctx).empty());
    EXPECT_EQ(ring_ctx.counters().getevents_calls, 0u);
}

// The ring wraps around: many more completions than the ring has slots, reaped in small pieces.
TEST(Ring, ReapingWrapsAroundTheRing) {
    auto ctx = make_context(1);
    auto [a, b] = stream_pair();
    const auto* ring = reinterpret_cast<const aio_ring*>(ctx.id());
    const unsigned slots = ring->nr;
    char buf[4];
    std::vector<iocb> cbs(7);
    std::vector<iocb*> ptrs;
    for (auto& cb : cbs) {
        ptrs.push_back(&cb);
    }
    std::uint64_t next = 0;
    std::uint64_t expected = 0;
    // Enough rounds to wrap at least three times, with batches that don't divide the ring.
    while (expected < 3 * static_cast<std::uint64_t>(slots)) {
        for (auto& cb : cbs) {
            prep_pread(cb, a.get(), buf, sizeof(buf), 0, next++);
        }
        ASSERT_EQ(ctx.submit(ptrs), cbs.size());
        io_event events[3];
        for (;;) {
            auto got = ctx.reap(events, 0, &testing::zero_wait);
            ASSERT_TRUE(got);
            if (*got == 0) {
                break;
            }
            for (std::size_t i = 0; i < *got; ++i) {
                ASSERT_EQ(events[i].data, expected) << "out of order or lost at the wrap";
                ASSERT_EQ(events[i].res, -EAGAIN);
                ++expected;
            }
        }
        ASSERT_EQ(expected, next);
    }
    EXPECT_EQ(ctx.counters().getevents_calls, 0u);
    EXPECT_EQ(ctx.counters().events_from_ring, expected);
}

// When the ring holds fewer than min_nr, reap() waits in io_getevents for the rest.
TEST(Ring, RingShortOfMinNrWaitsInTheKernel) {
    auto ctx = make_context();
    auto [a, b] = stream_pair();
    char buf[4];
    iocb rd{};
    iocb poll{};
    prep_pread(rd, a.get(), buf, sizeof(buf), 0, 1);
    prep_poll(poll, a.get(), POLLIN, 2);
    iocb* batch[] = {&rd, &poll};
    ASSERT_EQ(ctx.submit(batch), 2u);
    EXPECT_EQ(ctx.ring_ready(), 1u);

    std::thread writer([fd = b.get()] { write_all(fd, "x"); });
    std::vector<io_event> events(4);
    timespec wait = testing::to_timespec(std::chrono::seconds(3));
    auto got = ctx.reap(events, 2, &wait);
    writer.join();
    ASSERT_TRUE(got) << got.error().message();
    ASSERT_EQ(*got, 2u);
    events.resize(2);
    EXPECT_EQ(testing::data_and_res(events)[0],
              std::make_pair(std::uint64_t{1}, std::int64_t{-EAGAIN}));
    EXPECT_EQ(events[1].data, 2u);
    EXPECT_TRUE(events[1].res & POLLIN);
    // The PREAD was in the ring; the POLL came from the ring or io_getevents, depending on when
    // the writer ran: assert only the sum.
    EXPECT_GE(ctx.counters().events_from_ring, 1u);
    EXPECT_EQ(ctx.counters().events_from_ring + ctx.counters().events_from_syscall, 2u);
}

class RingOrSyscall : public ::testing::TestWithParam<bool> {};

// Room for fewer events than min_nr: reap() fills what it can instead of failing (io_getevents
// itself answers EINVAL when min_nr > nr).
TEST_P(RingOrSyscall, MinNrLargerThanTheRoomIsClamped) {
    auto ctx = make_context(8, aio_options{.use_ring = GetParam()});
    auto [a, b] = stream_pair();
    char buf[4];
    iocb cbs[3];
    iocb* batch[3];
    for (int i = 0; i < 3; ++i) {
        prep_pread(cbs[i], a.get(), buf, sizeof(buf), 0, static_cast<std::uint64_t>(i));
        batch[i] = &cbs[i];
    }
    ASSERT_EQ(ctx.submit(batch), 3u);
    io_event events[2];
    timespec wait = testing::to_timespec(std::chrono::seconds(3));
    auto got = ctx.reap(events, 5, &wait);
    ASSERT_TRUE(got) << got.error().message();
    EXPECT_EQ(*got, 2u);
    got = ctx.reap(events, 5, &testing::zero_wait);
    ASSERT_TRUE(got) << got.error().message();
    EXPECT_EQ(*got, 1u);
}

// A blocking reap with a timeout and nothing to come returns 0 events (not an error) once the
// timeout passes; the test asserts only the count, never the time.
TEST_P(RingOrSyscall, BlockingReapTimesOutWithNoEvents) {
    auto ctx = make_context(8, aio_options{.use_ring = GetParam()});
    auto [a, b] = stream_pair();
    iocb cb{};
    prep_poll(cb, a.get(), POLLIN, 1);
    iocb* batch[] = {&cb};
    ASSERT_EQ(ctx.submit(batch), 1u);

    std::vector<io_event> events(4);
    timespec wait = testing::to_timespec(std::chrono::milliseconds(50));
    auto got = ctx.reap(events, 1, &wait);
    ASSERT_TRUE(got) << got.error().message();
    EXPECT_EQ(*got, 0u);
    EXPECT_EQ(ctx.counters().getevents_calls, 1u);
}

// A reap blocked in io_getevents wakes when another thread makes the POLL complete.
TEST_P(RingOrSyscall, BlockingReapWakesOnDataFromAnotherThread) {
    auto ctx = make_context(8, aio_options{.use_ring = GetParam()});
    auto [a, b] = stream_pair();
    iocb cb{};
    prep_poll(cb, a.get(), POLLIN, 42);
    iocb* batch[] = {&cb};
    ASSERT_EQ(ctx.submit(batch), 1u);

    std::atomic<bool> wrote = false;
    std::thread writer([fd = b.get(), &wrote] {
        std::this_thread::sleep_for(std::chrono::milliseconds(20));
        write_all(fd, "wake");
        wrote = true;
    });
    std::vector<io_event> events(4);
    // The 4 s bound only stops a broken build from hanging; it isn't what passes the test.
    timespec wait = testing::to_timespec(std::chrono::seconds(4));
    result<std::size_t> got = 0;
    do {
        got = ctx.reap(events, 1, &wait);
    } while (!got && got.error().value() == EINTR);
    writer.join();
    ASSERT_TRUE(got) << got.error().message();
    ASSERT_EQ(*got, 1u) << "the reap did not wake";
    EXPECT_TRUE(wrote);
    EXPECT_EQ(events[0].data, 42u);
    EXPECT_TRUE(events[0].res & POLLIN);
}

// A signal that interrupts a blocking reap comes back as EINTR, for the caller to retry.
TEST_P(RingOrSyscall, SignalDuringABlockingReapIsEintr) {
    struct sigaction action {};
    struct sigaction old {};
    action.sa_handler = [](int) {};
    sigemptyset(&action.sa_mask);
    action.sa_flags = 0; // no SA_RESTART
    ASSERT_EQ(::sigaction(SIGUSR1, &action, &old), 0);

    auto ctx = make_context(8, aio_options{.use_ring = GetParam()});
    std::atomic<bool> done = false;
    pthread_t self = ::pthread_self();
    // Signals keep coming until the reap returns, so one lands while it waits, however the
    // threads are scheduled.
    std::thread signaller([&done, self] {
        while (!done) {
            ::pthread_kill(self, SIGUSR1);
            std::this_thread::sleep_for(std::chrono::milliseconds(10));
        }
    });
    std::vector<io_event> events(4);
    timespec wait = testing::to_timespec(std::chrono::seconds(4));
    auto got = ctx.reap(events, 1, &wait);
    done = true;
    signaller.join();
    ::sigaction(SIGUSR1, &old, nullptr);
    ASSERT_FALSE(got) << "returned " << *got << " events";
    EXPECT_EQ(got.error().value(), EINTR);
}

INSTANTIATE_TEST_SUITE_P(Reap,
                         RingOrSyscall,
                         ::testing::Bool(),
                         [](const ::testing::TestParamInfo<bool>& info) {
                             return info.param ? "Ring" : "Syscall";
                         });

} // namespace
} // namespace aioloop::sys
