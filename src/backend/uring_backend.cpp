// The io_uring backend's turn: SQEs prepared by start() and cancel() stay in the SQ until poll()
// hands all of them over in the io_uring_enter that also collects completions, or sleeps for the
// first one. With IORING_SETUP_DEFER_TASKRUN (6.1+) completions reach the CQ only during an
// io_uring_enter(IORING_ENTER_GETEVENTS) of this thread, so a turn costs exactly one enter: there
// is nothing to find in the CQ without one, except what an SQ-full submission left there.

#include "backend/uring_backend.hpp"

#include <algorithm>
#include <cassert>
#include <cerrno>
#include <cstdint>
#include <new>

#include <sys/socket.h>

#include <climits>

namespace aioloop::backend {

namespace {

using detail::operation;

// user_data of an operation's SQE is its cookie (generation << 32 | index, operation.hpp), as in
// the aio backend: a completion for a record that was reused since names an older generation and
// is dropped, never applied to the record's new operation, and a cancel targets one generation,
// so the kernel can't match it to the record's next request. A cancel's own SQE carries its
// target's cookie with cancel_bit set in the index (pools never reach 2^31 records). SQEs whose
// completions tell nothing (operations withdrawn from the SQ, the exit's cancel-all) carry
// ignored_tag, which no cookie equals.
constexpr std::uint64_t cancel_bit = std::uint64_t{1} << 31;
constexpr std::uint64_t index_mask = cancel_bit - 1;
constexpr std::uint64_t ignored_tag = ~std::uint64_t{0};

// The kernel transfers at most MAX_RW_COUNT bytes per call and an SQE's len is 32 bits: a larger
// request becomes a partial result, which the loop already handles.
constexpr std::size_t max_transfer = INT_MAX & ~std::size_t{4095};

unsigned clamp_len(std::size_t len) noexcept {
    return static_cast<unsigned>(std::min(len, max_transfer));
}

__kernel_timespec to_timespec(std::chrono::nanoseconds timeout) noexcept {
    auto ns = std::max<std::int64_t>(timeout.count(), 0);
    return __kernel_timespec{ns / 1'000'000'000, ns % 1'000'000'000};
}

} // namespace

uring_backend::uring_backend(const io_uring& ring, unsigned flags, std::string note) noexcept
    : ring_(ring)
    , flags_(flags)
    , note_(std::move(note)) {
}

uring_backend::~uring_backend() {
    drain_for_exit();
    io_uring_queue_exit(&ring_);
}

// The ring is set up disabled so that IORING_SETUP_SINGLE_ISSUER binds it to the thread that first
// submits (the loop's), not to the one that made the loop.
int uring_backend::ensure_enabled() noexcept {
    if (enabled_) {
        return 0;
    }
    stats_.count(syscall_name::other);
    // liburing 2.3 declares io_uring_enable_rings but doesn't export it: register directly.
    int ret = io_uring_register(ring_.ring_fd, IORING_REGISTER_ENABLE_RINGS, nullptr, 0);
    if (ret < 0) {
        return ret;
    }
    enabled_ = true;
    return 0;
}

// liburing's submit helpers may enter more than once (or not at all) behind our back; the
// backend counts every io_uring_enter, so it makes the call itself. This only publishes the SQ
// tail, as io_uring_submit would, and says how many SQEs the kernel has not consumed, those an
// earlier short submission left behind included.
unsigned uring_backend::publish_sq() noexcept {
    io_uring_sq& sq = ring_.sq;
    if (sq.sqe_head != sq.sqe_tail) {
        sq.sqe_head = sq.sqe_tail;
        io_uring_smp_store_release(sq.ktail, sq.sqe_tail);
    }
    return sq.sqe_tail - io_uring_smp_load_acquire(sq.khead);
}

int uring_backend::enter(unsigned to_submit,
                         unsigned min_complete,
                         unsigned flags,
                         const __kernel_timespec* timeout) noexcept {
    if (int err = ensure_enabled(); err < 0) {
        return err;
    }
    // With IORING_ENTER_EXT_ARG (5.11, required at setup) the wait carries its own timeout, so
    // no IORING_OP_TIMEOUT SQE has to be submitted and later removed.
    io_uring_getevents_arg arg{};
    void* arg_ptr = nullptr;
    std::size_t arg_size = 0;
    if (timeout != nullptr) {
        arg.ts = reinterpret_cast<std::uintptr_t>(timeout);
        flags |= IORING_ENTER_EXT_ARG;
        arg_ptr = &arg;
        arg_size = sizeof(arg);
    }
    stats_.count(syscall_name::io_uring_enter);
    int ret = io_uring_enter2(
        ring_.ring_fd, to_submit, min_complete, flags, static_cast<sigset_t*>(arg_ptr), arg_size);
    if (ret > 0) {
        stats_.iocbs_submitted += static_cast<unsigned>(ret);
        stats_.count_batch(static_cast<unsigned>(ret));
    }
    return ret;
}

// Hands over what the SQ holds without collecting completions: used only when the SQ is full in
// the middle of a turn. Its completions wait in the CQ (or the kernel's overflow list, which
// IORING_FEAT_NODROP keeps) for poll().
int uring_backend::submit_now() noexcept {
    unsigned to_submit = publish_sq();
    int ret = enter(to_submit, 0, 0, nullptr);
    last_submit_error_ = ret < 0 ? -ret : 0;
    return ret;
}

io_uring_sqe* uring_backend::get_sqe() noexcept {
    io_uring_sqe* sqe = io_uring_get_sqe(&ring_);
    if (sqe == nullptr) {
        // The SQ is full of this turn's SQEs: send them now rather than drop this one.
        submit_now();
        sqe = io_uring_get_sqe(&ring_);
    }
    return sqe;
}

void uring_backend::prep(io_uring_sqe& sqe, operation& op, bool poll_first) noexcept {
    switch (op.kind) {
    case op_kind::recv:
        io_uring_prep_recv(&sqe, op.fd, op.buf, clamp_len(op.len), 0);
        break;
    case op_kind::send:
        // SIGPIPE is ignored by the process, but a library must not rely on it.
        io_uring_prep_send(&sqe, op.fd, op.buf, clamp_len(op.len), MSG_NOSIGNAL);
        break;
    case op_kind::poll:
        io_uring_prep_poll_add(&sqe, op.fd, op.poll_events);
        break;
    case op_kind::read_at:
        io_uring_prep_read(&sqe, op.fd, op.buf, clamp_len(op.len), op.offset);
        break;
    case op_kind::write_at:
        io_uring_prep_write(&sqe, op.fd, op.buf, clamp_len(op.len), op.offset);
        break;
    }
    if (op.kind == op_kind::read_at || op.kind == op_kind::write_at) {
        // Straight to the kernel's workers: io_uring's first, inline attempt at a buffered file
        // read that misses the page cache still starts the readahead in io_uring_enter, on the
        // loop's thread (milliseconds on a cold file; the timer lateness of
        // tests/system/http_cold_cache_test.cpp), and a buffered write can be throttled there.
        // A caller that knows its data is cached reads it with preadv2(RWF_NOWAIT) itself.
        sqe.flags |= IOSQE_ASYNC;
    }
    if (poll_first) {
        // 5.19: wait for readiness before the first attempt.
        sqe.ioprio |= IORING_RECVSEND_POLL_FIRST;
    }
    io_uring_sqe_set_data64(&sqe, op.cookie());
}

// Records live in the loop's pool, which never moves or frees them while the backend lives: the
// index of a cookie finds its record again. Learnt at start(), so no pool has to be shared.
bool uring_backend::remember(operation& op) noexcept {
    if (op.index >= records_.size()) {
        try {
            records_.resize(std::max<std::size_t>(op.index + 1, 2 * records_.size()), nullptr);
        } catch (const std::bad_alloc&) {
            return false;
        }
    }
    assert(op.index <= index_mask); // clear of cancel_bit
    // Two live records with one index would make the cookie ambiguous.
    assert(records_[op.index] == nullptr || records_[op.index] == &op ||
           !records_[op.index]->in_kernel);
    records_[op.index] = &op;
    return true;
}

// The record a completion is for, or null when it is stale: the record was reused since (another
// generation), or has already been handed back (not started, or not in the kernel).
operation* uring_backend::find(std::uint64_t cookie) const noexcept {
    std::uint64_t index = cookie & index_mask;
    if (index >= records_.size() || records_[index] == nullptr) {
        return nullptr;
    }
    operation* op = records_[index];
    if (op->cookie() != cookie || op->state != detail::op_state::started || !op->in_kernel) {
        return nullptr;
    }
    return op;
}

void uring_backend::start(operation& op, detail::completion_queue& done) noexcept {
    if (!remember(op)) {
        op.result = -ENOMEM;
        done.push(op);
        return;
    }
    io_uring_sqe* sqe = get_sqe();
    if (sqe == nullptr) {
        // The kernel took none of a full SQ (ENOMEM, a broken ring): fail this one loudly
        // rather than hold it somewhere nobody looks.
        op.result =
            -(last_submit_error_ != 0 && last_submit_error_ != EAGAIN ? last_submit_error_ : EBUSY);
        done.push(op);
        return;
    }
    prep(*sqe, op, false);
    op.in_kernel = true;
    ++in_flight_;
}

// An SQE still in the SQ can't be taken out, but the kernel hasn't seen it either: turning it
// into a NOP ends the operation here and now, without a cancel SQE that might find it or not.
bool uring_backend::withdraw_unsubmitted(operation& op) noexcept {
    io_uring_sq& sq = ring_.sq;
    const std::uint64_t target = op.cookie();
    for (unsigned i = io_uring_smp_load_acquire(sq.khead); i != sq.sqe_tail; ++i) {
        io_uring_sqe& sqe = sq.sqes[i & sq.ring_mask];
        if (sqe.user_data == target) {
            io_uring_prep_nop(&sqe);
            io_uring_sqe_set_data64(&sqe, ignored_tag);
            return true;
        }
    }
    return false;
}

void uring_backend::cancel(operation& op, detail::completion_queue& done) noexcept {
    ++stats_.cancels;
    if (withdraw_unsubmitted(op)) {
        op.in_kernel = false;
        --in_flight_;
        op.result = -ECANCELED;
        done.push(op);
        return;
    }
    io_uring_sqe* sqe = get_sqe();
    if (sqe == nullptr) {
        // A cancel is only a request: the operation still completes when the kernel is done.
        return;
    }
    // The operation completes with -ECANCELED, or with its real result when it finished first;
    // the cancel's own completion (0, -ENOENT, -EALREADY) tells nothing more.
    io_uring_prep_cancel64(sqe, op.cookie(), 0);
    io_uring_sqe_set_data64(sqe, op.cookie() | cancel_bit);
}

// A cancel that found nothing (-ENOENT) while its target's record has been reused since was
// stale: it was asked for an operation that ended, and only the generation in its target kept it
// from ending the record's next one (an io_uring_enter that answered EBUSY or EAGAIN leaves the
// cancel in the SQ while its target completes). Otherwise it raced its target's completion, or
// found it: nothing to do, the target's own completion says how it ended.
void uring_backend::on_cancel_done(std::uint64_t target, int res) noexcept {
    std::uint64_t index = target & index_mask;
    if (res == -ENOENT && index < records_.size() && records_[index] != nullptr &&
        records_[index]->generation != static_cast<std::uint32_t>(target >> 32)) {
        ++stats_.stale_completions;
    }
}

void uring_backend::complete(operation& op, int res, detail::completion_queue* done) noexcept {
    bool retry = res == -EAGAIN && (op.kind == op_kind::recv || op.kind == op_kind::send);
    if (retry) {
        // The kernel waits for socket readiness itself; it only answers EAGAIN when the request
        // may not wait (REQ_F_NOWAIT). The contract forbids handing that on: ask again, waiting
        // for readiness first.
        ++stats_.eagain;
    }
    if (retry && op.cancel_requested) {
        res = -ECANCELED;
    } else if (retry && done != nullptr) {
        if (io_uring_sqe* sqe = get_sqe(); sqe != nullptr) {
            prep(*sqe, op, true);
            return;
        }
    }
    op.in_kernel = false;
    --in_flight_;
    if (done == nullptr) {
        return;
    }
    op.result = res;
    done->push(op);
}

// Moves every CQE to `done` (or drops them when `done` is null, at exit) and counts them as found
// in user space or brought by the io_uring_enter just made.
std::size_t uring_backend::reap(detail::completion_queue* done, bool after_syscall) noexcept {
    std::size_t before = done != nullptr ? done->size() : 0;
    unsigned head = 0;
    unsigned seen = 0;
    io_uring_cqe* cqe = nullptr;
    io_uring_for_each_cqe(&ring_, head, cqe) {
        ++seen;
        std::uint64_t data = io_uring_cqe_get_data64(cqe);
        if (data == ignored_tag) {
            continue;
        }
        if ((data & cancel_bit) != 0) {
            on_cancel_done(data & ~cancel_bit, cqe->res);
            continue;
        }
        if (operation* op = find(data); op != nullptr) {
            complete(*op, cqe->res, done);
            continue;
        }
        // Each operation SQE posts one CQE (no multishot, no links), and this is the one of a
        // request the kernel no longer holds: count it out of what drain_for_exit waits for.
        ++stats_.stale_completions;
        --in_flight_;
    }
    io_uring_cq_advance(&ring_, seen);
    std::size_t found = done != nullptr ? done->size() - before : 0;
    (after_syscall ? stats_.events_from_syscall : stats_.events_from_ring) += found;
    return found;
}

result<void> uring_backend::poll(detail::completion_queue& done,
                                 std::optional<std::chrono::nanoseconds> timeout) noexcept {
    // Without DEFER_TASKRUN the kernel posts completions at any time, and an SQ-full submission
    // may have left some: take those first, for free.
    std::size_t found = reap(&done, false);
    unsigned to_submit = publish_sq();
    if (found > 0 && to_submit == 0) {
        // Nothing to hand over and something to do: the next turn enters.
        return {};
    }
    bool sleep = done.empty() && !(timeout.has_value() && timeout->count() <= 0);
    __kernel_timespec ts{};
    if (sleep && timeout.has_value()) {
        ts = to_timespec(*timeout);
    }
    // One call for the whole turn: submit, run deferred task work, and wait for the first
    // completion only when there is nothing else to do. The kernel skips the wait when a
    // submitted SQE completed inline, and when it could not take every SQE.
    int ret = enter(to_submit,
                    sleep ? 1 : 0,
                    IORING_ENTER_GETEVENTS,
                    sleep && timeout.has_value() ? &ts : nullptr);
    if (sleep) {
        ++stats_.blocking_waits;
    }
    if (ret < 0 && ret != -ETIME && ret != -EINTR && ret != -EAGAIN && ret != -EBUSY) {
        return fail(-ret);
    }
    reap(&done, true);
    // IORING_FEAT_NODROP keeps what didn't fit in the CQ in an overflow list, which the kernel
    // copies into the CQ on the next IORING_ENTER_GETEVENTS. The CQ is sized for every operation
    // the loop may have in flight, so this loop runs only when the loop outgrew max_operations.
    for (int round = 0; round < 16 && io_uring_cq_has_overflow(&ring_); ++round) {
        ret = enter(0, 0, IORING_ENTER_GETEVENTS, nullptr);
        if (ret < 0 && ret != -EINTR && ret != -EAGAIN && ret != -EBUSY) {
            return fail(-ret);
        }
        reap(&done, true);
    }
    return {};
}

// The loop frees its buffers right after the backend: every operation the kernel still holds
// must end first. Cancel them all (IORING_ASYNC_CANCEL_ANY, 5.19) and wait, boundedly, for their
// completions; ring teardown in the kernel would cancel them too, but asynchronously.
void uring_backend::drain_for_exit() noexcept {
    // Before 5.19 (the last setup fallback) there is no IORING_ASYNC_CANCEL_ANY to wait for.
    constexpr unsigned has_cancel_any = IORING_SETUP_DEFER_TASKRUN | IORING_SETUP_COOP_TASKRUN;
    if (in_flight_ == 0 || !enabled_ || (flags_ & has_cancel_any) == 0) {
        return;
    }
    if (io_uring_sqe* sqe = get_sqe(); sqe != nullptr) {
        io_uring_prep_cancel64(sqe, 0, IORING_ASYNC_CANCEL_ANY);
        io_uring_sqe_set_data64(sqe, ignored_tag);
    }
    const __kernel_timespec ts = to_timespec(std::chrono::milliseconds(100));
    for (int round = 0; round < 20 && in_flight_ > 0; ++round) {
        int ret = enter(publish_sq(), 1, IORING_ENTER_GETEVENTS, &ts);
        if (ret < 0 && ret != -ETIME && ret != -EINTR) {
            break;
        }
        reap(nullptr, true);
    }
}

} // namespace aioloop::backend
