#include <string>
#include <vector>

#include <poll.h>

#include <gtest/gtest.h>

#include <aioloop/sys/aio.hpp>

#include "support/sockets.hpp"

namespace aioloop::sys {
namespace {

using aioloop::testing::stream_pair;

TEST(Counters, BatchSizeBucketsArePowersOfTwo) {
    EXPECT_EQ(aio_counters::bucket_of(1), 0u);
    EXPECT_EQ(aio_counters::bucket_of(2), 1u);
    EXPECT_EQ(aio_counters::bucket_of(3), 1u);
    EXPECT_EQ(aio_counters::bucket_of(4), 2u);
    EXPECT_EQ(aio_counters::bucket_of(7), 2u);
    EXPECT_EQ(aio_counters::bucket_of(8), 3u);
    EXPECT_EQ(aio_counters::bucket_of(1023), 9u);
    EXPECT_EQ(aio_counters::bucket_of(1024), 10u);
    EXPECT_EQ(aio_counters::bucket_of(std::size_t{1} << (batch_histogram_buckets - 1)),
              batch_histogram_buckets - 1);
    // Everything larger lands in the last bucket.
    EXPECT_EQ(aio_counters::bucket_of(std::size_t{1} << 40), batch_histogram_buckets - 1);
}

TEST(Counters, AddUp) {
    aio_counters a;
    a.submit_calls = 1;
    a.iocbs_submitted = 2;
    a.iocbs_failed = 3;
    a.getevents_calls = 4;
    a.events_from_ring = 5;
    a.events_from_syscall = 6;
    a.eagain_results = 7;
    a.cancel_calls = 8;
    a.batch_sizes[0] = 9;
    a.batch_sizes[batch_histogram_buckets - 1] = 10;
    aio_counters b = a;
    b += a;
    EXPECT_EQ(b.submit_calls, 2u);
    EXPECT_EQ(b.iocbs_submitted, 4u);
    EXPECT_EQ(b.iocbs_failed, 6u);
    EXPECT_EQ(b.getevents_calls, 8u);
    EXPECT_EQ(b.events_from_ring, 10u);
    EXPECT_EQ(b.events_from_syscall, 12u);
    EXPECT_EQ(b.eagain_results, 14u);
    EXPECT_EQ(b.cancel_calls, 16u);
    EXPECT_EQ(b.batch_sizes[0], 18u);
    EXPECT_EQ(b.batch_sizes[1], 0u);
    EXPECT_EQ(b.batch_sizes[batch_histogram_buckets - 1], 20u);
}

TEST(Counters, FormatNamesEveryCounter) {
    aio_counters c;
    c.submit_calls = 4;
    c.iocbs_submitted = 10;
    c.events_from_ring = 9;
    c.batch_sizes[0] = 1;
    c.batch_sizes[1] = 3;
    c.batch_sizes[batch_histogram_buckets - 1] = 2;
    std::string text = format_counters(c);
    for (const char* name : {"io_submit",
                             "iocbs_submitted",
                             "iocbs_failed",
                             "io_getevents",
                             "events_from_ring",
                             "events_from_syscall",
                             "eagain_results",
                             "io_cancel"}) {
        EXPECT_NE(text.find(name), std::string::npos) << name << " missing from\n" << text;
    }
    EXPECT_NE(text.find("iocbs_per_submit"), std::string::npos) << text;
    EXPECT_NE(text.find("2.50"), std::string::npos) << text;
    EXPECT_NE(text.find("batch[1-1]"), std::string::npos) << text;
    EXPECT_NE(text.find("batch[2-3]"), std::string::npos) << text;
    EXPECT_NE(text.find("batch[32768+]"), std::string::npos) << text;
    EXPECT_EQ(text.find("batch[4-7]"), std::string::npos) << "empty buckets are left out\n" << text;
    EXPECT_EQ(text.back(), '\n');

    // No division by zero before the first io_submit.
    std::string empty = format_counters(aio_counters{});
    EXPECT_EQ(empty.find("iocbs_per_submit"), std::string::npos) << empty;
}

// The histogram counts what the kernel took per io_submit, from real calls.
TEST(Counters, HistogramCountsRealBatches) {
    auto ctx = aio_context::create(64);
    ASSERT_TRUE(ctx) << setup_error_message(64, ctx.error());
    auto [a, b] = stream_pair();
    char buf[4];
    std::vector<iocb> cbs(5);
    std::vector<iocb*> ptrs;
    for (std::size_t i = 0; i < cbs.size(); ++i) {
        prep_pread(cbs[i], a.get(), buf, sizeof(buf), 0, i);
        ptrs.push_back(&cbs[i]);
    }
    ASSERT_EQ(ctx->submit(std::span(ptrs).first(1)), 1u);
    ASSERT_EQ(ctx->submit(std::span(ptrs).subspan(1, 3)), 3u);
    const aio_counters& c = ctx->counters();
    EXPECT_EQ(c.submit_calls, 2u);
    EXPECT_EQ(c.iocbs_submitted, 4u);
    EXPECT_EQ(c.batch_sizes[0], 1u);
    EXPECT_EQ(c.batch_sizes[1], 1u);
    // An empty batch is no system call.
    ASSERT_EQ(ctx->submit(std::span(ptrs).first(0)), 0u);
    EXPECT_EQ(c.submit_calls, 2u);
    ctx->reset_counters();
    EXPECT_EQ(ctx->counters().submit_calls, 0u);
    EXPECT_EQ(ctx->counters().batch_sizes[1], 0u);
}

} // namespace
} // namespace aioloop::sys
