// The uring backend tags SQEs with the operation's cookie (index and generation): a completion or a
// cancel meant for a record's earlier operation must never reach the record's next one.
//
// The loop reuses a record only once the backend has handed it back, and the SQ is consumed in
// order, so the kernel can't be made to produce a stale completion on demand (the known path, an
// io_uring_enter answering EBUSY or EAGAIN with a cancel left in the SQ, needs an overflowing CQ
// on an old kernel or a failed allocation). These tests put the records in the state that path
// leaves, the record reused while the kernel still holds a request or a cancel of its previous
// generation, and let the real kernel complete both.

#include <cstdint>
#include <vector>

#include "support/sockets.hpp"
#include "uring_test_support.hpp"

namespace aioloop::backend {
namespace {

using namespace uring_testing;
using aioloop::testing::stream_pair;
using aioloop::testing::write_all;

class UringStale : public UringBackend {
protected:
    // What the loop's pool does to a record between two operations (reuse() bumps the
    // generation), then a recv on `fd` in it.
    void restart_recv(operation& op, int fd) {
        op.reuse();
        buffers_.emplace_back(64);
        op.kind = op_kind::recv;
        op.fd = fd;
        op.buf = buffers_.back().data();
        op.len = 64;
        op.state = op_state::started;
        backend_->start(op, done_);
    }

    // Turns until something completes or a stale completion is counted; returns what completed.
    std::vector<operation*> until_completion_or_stale() {
        std::vector<operation*> out;
        for (int turn = 0; turn < 20 && out.empty() && stale() == 0; ++turn) {
            take(200ms, out);
        }
        return out;
    }

    std::uint64_t stale() { return backend_->stats().stale_completions; }
};

TEST_F(UringStale, CompletionOfAReusedRecordsEarlierRequestIsDropped) {
    auto [a1, b1] = stream_pair();
    auto [a2, b2] = stream_pair();
    operation& op = start(op_kind::recv, a1.get());
    EXPECT_TRUE(turn().empty()); // in the kernel, waiting for data
    std::uint32_t first_generation = op.generation;
    restart_recv(op, a2.get());
    ASSERT_NE(op.generation, first_generation);
    EXPECT_TRUE(turn().empty());
    EXPECT_EQ(uring_->in_flight(), 2U);

    // The first request completes: its CQE names the first generation.
    write_all(b1.get(), "old");
    auto got = until_completion_or_stale();
    EXPECT_TRUE(got.empty()) << "the earlier request's result " << op.result
                             << " was taken for the record's new operation";
    EXPECT_EQ(stale(), 1U);
    EXPECT_EQ(op.state, op_state::started);
    EXPECT_TRUE(op.in_kernel);
    EXPECT_EQ(uring_->in_flight(), 1U); // the kernel holds the new request only

    write_all(b2.get(), "new");
    got = collect(1);
    ASSERT_EQ(got.size(), 1U);
    EXPECT_EQ(got[0], &op);
    EXPECT_EQ(text(op), "new");
    EXPECT_TRUE(turn().empty());
    EXPECT_EQ(uring_->in_flight(), 0U);
    EXPECT_EQ(stale(), 1U);
}

TEST_F(UringStale, CancelLeftFromBeforeAReuseLeavesTheNewOperationAlone) {
    auto [a1, b1] = stream_pair();
    auto [a2, b2] = stream_pair();
    operation& op = start(op_kind::recv, a1.get());
    write_all(b1.get(), "one");
    ASSERT_EQ(collect(1).size(), 1U);
    EXPECT_EQ(text(op), "one");
    std::uint32_t first_generation = op.generation;

    restart_recv(op, a2.get());
    EXPECT_TRUE(turn().empty()); // the new recv is in the kernel

    // A cancel asked for the first operation that reaches the kernel only now: its SQE names
    // the record as it was then, so ask with the record's first generation.
    std::uint32_t current = op.generation;
    op.generation = first_generation;
    op.cancel_requested = true;
    backend_->cancel(op, done_);
    op.generation = current;
    op.cancel_requested = false;
    EXPECT_TRUE(done_.empty());

    auto got = until_completion_or_stale();
    EXPECT_TRUE(got.empty()) << "the stale cancel ended the new operation: " << op.result;
    EXPECT_EQ(stale(), 1U);
    EXPECT_EQ(op.state, op_state::started);

    write_all(b2.get(), "two");
    got = collect(1);
    ASSERT_EQ(got.size(), 1U);
    EXPECT_EQ(got[0], &op);
    EXPECT_EQ(text(op), "two");
    EXPECT_EQ(uring_->in_flight(), 0U);
    EXPECT_EQ(stale(), 1U);
}

TEST_F(UringStale, CancelRacingItsOwnCompletionIsNotStale) {
    auto [a, b] = stream_pair();
    operation& op = start(op_kind::recv, a.get());
    EXPECT_TRUE(turn().empty());
    write_all(b.get(), "race");
    op.cancel_requested = true;
    backend_->cancel(op, done_);
    ASSERT_EQ(collect(1).size(), 1U);
    EXPECT_TRUE(op.result == 4 || op.result == -ECANCELED) << op.result;
    EXPECT_TRUE(turn().empty());
    EXPECT_EQ(stale(), 0U);
}

TEST_F(UringStale, CookieWithHighGenerationAndLargeIndexFindsItsRecord) {
    auto [a, b] = stream_pair();
    operation& op = ops_.emplace_back();
    buffers_.emplace_back(64);
    op.kind = op_kind::recv;
    op.fd = a.get();
    op.buf = buffers_.back().data();
    op.len = 64;
    op.index = 100'000;
    op.generation = 0xffff'fffe;
    op.state = op_state::started;
    backend_->start(op, done_);
    EXPECT_TRUE(turn().empty());
    write_all(b.get(), "far");
    auto got = collect(1);
    ASSERT_EQ(got.size(), 1U);
    EXPECT_EQ(got[0], &op);
    EXPECT_EQ(text(op), "far");

    // The last generation before the 32-bit counter wraps, and the first after it.
    restart_recv(op, a.get());
    EXPECT_EQ(op.generation, 0xffff'ffffU);
    write_all(b.get(), "last");
    got = collect(1);
    ASSERT_EQ(got.size(), 1U);
    EXPECT_EQ(text(op), "last");
    restart_recv(op, a.get());
    EXPECT_EQ(op.generation, 0U);
    write_all(b.get(), "wrapped");
    got = collect(1);
    ASSERT_EQ(got.size(), 1U);
    EXPECT_EQ(text(op), "wrapped");
    EXPECT_EQ(stale(), 0U);
    EXPECT_EQ(uring_->in_flight(), 0U);
}

} // namespace
} // namespace aioloop::backend
