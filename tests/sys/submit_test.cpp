#include <map>
#include <string>
#include <vector>

#include <poll.h>

#include <gtest/gtest.h>

#include <aioloop/sys/aio.hpp>

#include "support/sockets.hpp"
#include "sys/aio_test_support.hpp"

// io_submit on the real kernel: what completes inside the call, in what order, and what happens
// when the kernel takes only part of a batch or refuses an iocb.

namespace aioloop::sys {
namespace {

using aioloop::testing::stream_pair;
using aioloop::testing::tcp_pair;
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

// Waits (bounded) until `fd` is readable, so that a PREAD can't race the data's arrival.
void wait_readable(int fd) {
    pollfd p{fd, POLLIN, 0};
    ASSERT_EQ(::poll(&p, 1, 3000), 1);
}

// Socket reads and writes run inside io_submit: the completion is in the ring when it returns.
void expect_synchronous_pwrite_and_pread(int writer, int reader) {
    auto ctx = make_context();
    ASSERT_TRUE(ctx.ring_in_use()) << ctx.ring_unusable_reason();

    const std::string msg = "synchronous";
    iocb wr{};
    prep_pwrite(wr, writer, msg.data(), msg.size(), 0, 1);
    iocb* batch1[] = {&wr};
    auto n = ctx.submit_once(batch1);
    ASSERT_TRUE(n) << n.error().message();
    ASSERT_EQ(*n, 1u);
    EXPECT_EQ(ctx.ring_ready(), 1u) << "PWRITE did not complete inside io_submit";

    wait_readable(reader);
    char buf[64] = {};
    iocb rd{};
    prep_pread(rd, reader, buf, sizeof(buf), 0, 2);
    iocb* batch2[] = {&rd};
    n = ctx.submit_once(batch2);
    ASSERT_TRUE(n) << n.error().message();
    ASSERT_EQ(*n, 1u);
    EXPECT_EQ(ctx.ring_ready(), 2u) << "PREAD did not complete inside io_submit";

    auto events = reap_now(ctx);
    ASSERT_EQ(events.size(), 2u);
    EXPECT_EQ(events[0].data, 1u);
    EXPECT_EQ(events[0].res, static_cast<std::int64_t>(msg.size()));
    EXPECT_EQ(events[0].obj, reinterpret_cast<std::uintptr_t>(&wr));
    EXPECT_EQ(events[1].data, 2u);
    EXPECT_EQ(events[1].res, static_cast<std::int64_t>(msg.size()));
    EXPECT_EQ(std::string(buf, msg.size()), msg);
    EXPECT_EQ(ctx.counters().getevents_calls, 0u);
    EXPECT_EQ(ctx.counters().events_from_ring, 2u);
}

TEST(Submit, SocketPreadAndPwriteCompleteInsideIoSubmitOnASocketPair) {
    auto [a, b] = stream_pair();
    expect_synchronous_pwrite_and_pread(b.get(), a.get());
}

TEST(Submit, SocketPreadAndPwriteCompleteInsideIoSubmitOnTcp) {
    auto [client, server] = tcp_pair();
    expect_synchronous_pwrite_and_pread(client.get(), server.get());
}

TEST(Submit, PreadOnAnEmptyNonBlockingSocketGivesEagain) {
    auto [a, b] = stream_pair();
    auto ctx = make_context();
    char buf[16];
    iocb rd{};
    prep_pread(rd, a.get(), buf, sizeof(buf), 0, 7);
    iocb* batch[] = {&rd};
    ASSERT_EQ(ctx.submit(batch), 1u);
    EXPECT_EQ(ctx.ring_ready(), 1u);
    auto events = reap_now(ctx);
    ASSERT_EQ(events.size(), 1u);
    EXPECT_EQ(events[0].data, 7u);
    EXPECT_EQ(events[0].res, -EAGAIN);
    EXPECT_EQ(ctx.counters().eagain_results, 1u);
    EXPECT_EQ(ctx.counters().iocbs_failed, 0u);
}

// The article's fused write + read: io_submit processes the batch in order, so the PREAD finds
// what the PWRITE before it wrote.
TEST(Submit, IocbsOfABatchRunInOrder) {
    auto [a, b] = stream_pair();
    auto ctx = make_context();
    const std::string msg = "ping";
    char buf[16] = {};
    iocb wr{};
    iocb rd{};
    prep_pwrite(wr, b.get(), msg.data(), msg.size(), 0, 1);
    prep_pread(rd, a.get(), buf, sizeof(buf), 0, 2);
    iocb* batch[] = {&wr, &rd};
    auto n = ctx.submit_once(batch);
    ASSERT_TRUE(n) << n.error().message();
    ASSERT_EQ(*n, 2u);
    EXPECT_EQ(ctx.counters().submit_calls, 1u);
    EXPECT_EQ(ctx.ring_ready(), 2u);

    auto events = reap_now(ctx);
    ASSERT_EQ(events.size(), 2u);
    EXPECT_EQ(events[0].data, 1u);
    EXPECT_EQ(events[0].res, 4);
    EXPECT_EQ(events[1].data, 2u);
    EXPECT_EQ(events[1].res, 4) << "the PREAD ran before the PWRITE";
    EXPECT_EQ(std::string(buf, 4), msg);

    // The reverse order reads nothing: the PREAD runs first and finds the socket empty.
    prep_pread(rd, a.get(), buf, sizeof(buf), 0, 3);
    prep_pwrite(wr, b.get(), msg.data(), msg.size(), 0, 4);
    iocb* reversed[] = {&rd, &wr};
    ASSERT_EQ(ctx.submit(reversed), 2u);
    events = reap_now(ctx);
    ASSERT_EQ(events.size(), 2u);
    EXPECT_EQ(events[0].data, 3u);
    EXPECT_EQ(events[0].res, -EAGAIN);
    EXPECT_EQ(events[1].data, 4u);
    EXPECT_EQ(events[1].res, 4);
}

// A context holds a bounded number of iocbs: io_submit takes a prefix and returns its length,
// or -EAGAIN when it can take none. submit() keeps the rest for the caller and drops nothing.
TEST(Submit, ShortSubmitKeepsTheRest) {
    testing::cpu_pin pin;
    auto [a, b] = stream_pair();
    constexpr std::size_t total = 2000;
    std::vector<iocb> cbs(total);
    std::vector<iocb*> ptrs(total);
    for (std::size_t i = 0; i < total; ++i) {
        prep_poll(cbs[i], a.get(), POLLIN, i);
        ptrs[i] = &cbs[i];
    }

    // The raw call: a short count, not an error.
    auto first = make_context(1);
    auto raw = first.submit_once(ptrs);
    ASSERT_TRUE(raw) << raw.error().message();
    EXPECT_GT(*raw, 0u);
    EXPECT_LT(*raw, total);
    // Full: the next call takes nothing and says EAGAIN.
    auto again = first.submit_once(std::span(ptrs).subspan(*raw));
    ASSERT_FALSE(again);
    EXPECT_EQ(again.error().value(), EAGAIN);

    auto ctx = make_context(1);
    std::size_t taken = ctx.submit(ptrs);
    if (pin.pinned()) {
        EXPECT_EQ(taken, *raw);
    }
    ASSERT_GT(taken, 0u);
    ASSERT_LT(taken, total);
    EXPECT_EQ(ctx.counters().iocbs_submitted, taken);
    EXPECT_EQ(ctx.counters().iocbs_failed, 0u) << "a full context failed iocbs instead of keeping";
    // Still full: nothing taken, nothing failed.
    EXPECT_EQ(ctx.submit(std::span(ptrs).subspan(taken)), 0u);
    EXPECT_EQ(ctx.counters().iocbs_failed, 0u);
    EXPECT_TRUE(reap_now(ctx).empty());

    std::map<std::uint64_t, int> seen;
    auto record = [&seen](const std::vector<io_event>& events) {
        for (const io_event& e : events) {
            ++seen[e.data];
        }
    };

    // Cancel a few; once their completions are reaped the rest can go in.
    constexpr std::size_t cancelled = 10;
    for (std::size_t i = 0; i < cancelled; ++i) {
        ASSERT_TRUE(ctx.cancel(cbs[i]));
    }
    auto events = reap_n(ctx, cancelled);
    ASSERT_EQ(events.size(), cancelled);
    for (const io_event& e : events) {
        EXPECT_LT(e.data, cancelled);
        EXPECT_EQ(e.res, 0) << "a cancelled POLL completes with res 0";
    }
    record(events);
    std::size_t more = ctx.submit(std::span(ptrs).subspan(taken));
    EXPECT_GT(more, 0u) << "reaped slots were not reusable";
    EXPECT_EQ(ctx.counters().iocbs_failed, 0u);
    std::size_t next = taken + more;

    // Data fires every pending POLL; the rest complete at once as they go in.
    write_all(b.get(), "x");
    auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(4);
    std::size_t reaped = cancelled;
    while (reaped < total && std::chrono::steady_clock::now() < deadline) {
        if (next < total) {
            next += ctx.submit(std::span(ptrs).subspan(next));
        }
        ASSERT_GT(next, reaped) << "nothing in flight and nothing submitted";
        events = reap_n(ctx, 1);
        ASSERT_EQ(events.size(), 1u) << "no completion with " << next - reaped << " in flight";
        auto rest = reap_now(ctx);
        events.insert(events.end(), rest.begin(), rest.end());
        for (const io_event& e : events) {
            // A POLL woken by new data reports the wake-up's whole key (fs/aio.c
            // aio_poll_wake: POLLIN|POLLPRI|POLLRDNORM|POLLRDBAND from a socket), not only the
            // requested bits: test the bit, never compare the mask.
            EXPECT_TRUE(e.res & POLLIN) << "iocb " << e.data << " res " << e.res;
            EXPECT_FALSE(e.res & (POLLERR | POLLHUP | POLLNVAL)) << "iocb " << e.data;
        }
        record(events);
        reaped += events.size();
    }
    ASSERT_EQ(next, total);
    EXPECT_EQ(reaped, total);
    EXPECT_TRUE(reap_now(ctx).empty()) << "more completions than iocbs";
    ASSERT_EQ(seen.size(), total);
    for (const auto& [data, count] : seen) {
        EXPECT_LT(data, total);
        EXPECT_EQ(count, 1) << "iocb " << data << " completed " << count << " times";
    }
    EXPECT_EQ(ctx.counters().iocbs_submitted, total);
    EXPECT_EQ(ctx.counters().iocbs_failed, 0u);
}

// io_submit answers -errno when the first iocb of its batch is refused (EBADF, EINVAL): submit()
// fails that one iocb back through reap(), exactly once, and goes on with the rest.
TEST(Submit, RefusedIocbsAreFailedBackExactlyOnce) {
    auto [a, b] = stream_pair();
    auto ctx = make_context();
    const std::string msg = "abc";
    char buf[16] = {};
    iocb cbs[5];
    prep_pwrite(cbs[0], b.get(), msg.data(), msg.size(), 0, 0);
    prep_poll(cbs[1], a.get(), POLLIN, 1);
    prep_pread(cbs[2], -1, buf, sizeof(buf), 0, 2); // no such fd
    prep_pread(cbs[3], a.get(), buf, sizeof(buf), 0, 3);
    cbs[3].aio_lio_opcode = 99; // no such command
    prep_pread(cbs[4], a.get(), buf, sizeof(buf), 0, 4);
    iocb* batch[] = {&cbs[0], &cbs[1], &cbs[2], &cbs[3], &cbs[4]};

    // The raw call stops before a bad iocb and returns the prefix, or -errno when the bad one
    // comes first...
    {
        auto probe = make_context();
        iocb pending{};
        prep_poll(pending, a.get(), POLLIN, 100);
        iocb* prefix[] = {&pending, &cbs[2], &cbs[4]};
        auto taken = probe.submit_once(prefix);
        ASSERT_TRUE(taken) << taken.error().message();
        EXPECT_EQ(*taken, 1u);
        auto n = probe.submit_once(std::span<iocb* const>(batch).subspan(2));
        ASSERT_FALSE(n);
        EXPECT_EQ(n.error().value(), EBADF);
        n = probe.submit_once(std::span<iocb* const>(batch).subspan(3));
        ASSERT_FALSE(n);
        EXPECT_EQ(n.error().value(), EINVAL);
    }

    // ...and submit() settles all five.
    EXPECT_EQ(ctx.submit(batch), 5u);
    EXPECT_EQ(ctx.counters().iocbs_submitted, 3u);
    EXPECT_EQ(ctx.counters().iocbs_failed, 2u);
    EXPECT_EQ(ctx.counters().submit_calls, 4u); // 0-1, refused 2, refused 3, then 4

    auto events = reap_n(ctx, 5);
    ASSERT_EQ(events.size(), 5u);
    std::map<std::uint64_t, io_event> by_data;
    for (const io_event& e : events) {
        EXPECT_TRUE(by_data.emplace(e.data, e).second) << "iocb " << e.data << " twice";
    }
    ASSERT_EQ(by_data.size(), 5u);
    EXPECT_EQ(by_data[0].res, 3);
    EXPECT_EQ(by_data[1].res, POLLIN);
    EXPECT_EQ(by_data[2].res, -EBADF);
    EXPECT_EQ(by_data[2].obj, reinterpret_cast<std::uintptr_t>(&cbs[2]));
    EXPECT_EQ(by_data[3].res, -EINVAL);
    EXPECT_EQ(by_data[3].obj, reinterpret_cast<std::uintptr_t>(&cbs[3]));
    EXPECT_EQ(by_data[4].res, 3);
    EXPECT_EQ(std::string(buf, 3), msg);
    EXPECT_TRUE(reap_now(ctx).empty()) << "a failed iocb was delivered twice";

    // A batch whose every iocb is refused.
    iocb bad[2];
    prep_pread(bad[0], -1, buf, sizeof(buf), 0, 10);
    prep_pwrite(bad[1], -1, buf, sizeof(buf), 0, 11);
    iocb* all_bad[] = {&bad[0], &bad[1]};
    EXPECT_EQ(ctx.submit(all_bad), 2u);
    events = reap_now(ctx);
    ASSERT_EQ(events.size(), 2u);
    EXPECT_EQ(events[0].data, 10u);
    EXPECT_EQ(events[0].res, -EBADF);
    EXPECT_EQ(events[1].data, 11u);
    EXPECT_EQ(events[1].res, -EBADF);
    EXPECT_EQ(ctx.counters().iocbs_failed, 4u);
}

// A reap with room for fewer events than were failed back delivers the rest next time.
TEST(Submit, FailedIocbsSurviveASmallReap) {
    auto ctx = make_context();
    char buf[4];
    std::vector<iocb> cbs(3);
    std::vector<iocb*> ptrs;
    for (std::size_t i = 0; i < cbs.size(); ++i) {
        prep_pread(cbs[i], -1, buf, sizeof(buf), 0, i);
        ptrs.push_back(&cbs[i]);
    }
    ASSERT_EQ(ctx.submit(ptrs), 3u);
    io_event one[1];
    std::vector<std::uint64_t> order;
    for (int i = 0; i < 3; ++i) {
        auto got = ctx.reap(one, 0, &testing::zero_wait);
        ASSERT_TRUE(got);
        ASSERT_EQ(*got, 1u);
        order.push_back(one[0].data);
    }
    EXPECT_EQ(order, (std::vector<std::uint64_t>{0, 1, 2}));
    EXPECT_TRUE(reap_now(ctx).empty());
}

} // namespace
} // namespace aioloop::sys
