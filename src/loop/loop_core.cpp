#include "loop/loop_core.hpp"

#include <cassert>

#include <poll.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include <fmt/format.h>

namespace aioloop::detail {

namespace {

thread_local loop* current_loop = nullptr;

} // namespace

loop* current() noexcept {
    return current_loop;
}

loop_core::loop_core(loop& owner, std::unique_ptr<backend::backend> backend, std::string reason)
    : owner_(owner)
    , backend_(std::move(backend))
    , reason_(std::move(reason)) {
}

loop_core::~loop_core() {
    // The backend goes first: io_destroy / io_uring_queue_exit end whatever the kernel still
    // holds. Then tasks that never finished are destroyed, which unwinds their frames.
    backend_.reset();
    auto roots = std::move(roots_);
    for (void* root : roots) {
        std::coroutine_handle<>::from_address(root).destroy();
    }
    if (wake_fd_ >= 0) {
        ::close(wake_fd_);
    }
}

result<void> loop_core::init() {
    wake_fd_ = ::eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    if (wake_fd_ < 0) {
        return fail_errno();
    }
    arm_wakeup();
    return {};
}

// --- operations ----------------------------------------------------------------------------------

operation& loop_core::allocate() {
    operation* op = free_ops_;
    if (op != nullptr) {
        free_ops_ = op->next;
        op->reuse();
    } else {
        op = &ops_.emplace_back();
        op->index = static_cast<std::uint32_t>(ops_.size() - 1);
    }
    op->owner = &owner_;
    op->aio.op = op;
    return *op;
}

void loop_core::release(operation& op) noexcept {
    assert(op.state == op_state::done);
    op.stop_callback.reset();
    op.waiter = {};
    op.state = op_state::free;
    op.next = free_ops_;
    free_ops_ = &op;
}

void loop_core::start(operation& op,
                      std::optional<clock::time_point> deadline,
                      std::stop_token token) {
    ++own_stats_.ops_started[static_cast<std::size_t>(op.kind)];
    if (token.stop_requested()) {
        op.cancel_requested = true;
        op.result = -ECANCELED;
        op.state = op_state::done;
        return;
    }
    op.state = op_state::started;
    // A backend may finish an operation inside start() (epoll's send on a writable socket): then
    // the awaiting task doesn't suspend at all, so the record must not go through done_.
    completion_queue immediate;
    backend_->start(op, immediate);
    while (operation* finished = immediate.pop()) {
        if (!settle(*finished, immediate)) {
            continue; // restarted (the rest of a partial send)
        }
        if (finished != &op) {
            done_.push(*finished);
        }
    }
    if (op.state == op_state::done) {
        return;
    }
    if (deadline) {
        op.timer = timers_.add(*deadline, &loop_core::on_deadline, &op);
    }
    // After start, so that a token stopped meanwhile finds the op in the backend's hands. The
    // callback runs at once if the token was stopped from another thread in between.
    if (token.stop_possible()) {
        op.stop_callback.emplace(std::move(token), cancel_on_stop{&op});
    }
}

void loop_core::cancel(operation& op) noexcept {
    if (op.state != op_state::started || op.cancel_requested || !backend_) {
        return;
    }
    op.cancel_requested = true;
    ++own_stats_.cancels;
    backend_->cancel(op, done_);
}

void loop_core::cancel_from_any_thread(operation& op) noexcept {
    if (on_loop_thread()) {
        cancel(op);
        return;
    }
    // The record may be finished and reused by the time the loop runs this: check generation.
    operation* target = &op;
    std::uint32_t generation = op.generation;
    post([this, target, generation] {
        if (target->generation == generation) {
            cancel(*target);
        }
    });
}

void loop_core::on_deadline(void* context) noexcept {
    auto* op = static_cast<operation*>(context);
    op->timer = 0;
    op->timed_out = true;
    op->owner->core().cancel(*op);
}

// The loop's own handling before an operation's owner sees it: a send continues across partial
// writes until the whole buffer is out (returns false: restarted), and a finished op drops its
// deadline.
bool loop_core::settle(operation& op, completion_queue& queue) {
    if (op.kind == op_kind::send && op.result > 0 && !op.cancel_requested) {
        auto written = static_cast<std::size_t>(op.result);
        op.transferred += written;
        if (written < op.len) {
            op.buf += written;
            op.len -= written;
            op.state = op_state::started;
            backend_->start(op, queue);
            return false;
        }
        op.result = static_cast<std::int64_t>(op.transferred);
    }
    if (op.timer != 0) {
        timers_.cancel(op.timer);
        op.timer = 0;
    }
    ++own_stats_.ops_completed[static_cast<std::size_t>(op.kind)];
    return true;
}

void loop_core::finish(operation& op) {
    if (!settle(op, done_)) {
        return;
    }
    if (op.on_done != nullptr) {
        op.on_done(op, op.on_done_context);
    } else {
        op.waiter.resume();
    }
}

void loop_core::dispatch_completions() {
    while (operation* op = done_.pop()) {
        finish(*op);
    }
}

// --- tasks and turns -----------------------------------------------------------------------------

void loop_core::run_ready() {
    // Tasks scheduled while these run wait for the next turn, so that a task that keeps
    // rescheduling itself can't starve the kernel's completions.
    running_.swap(ready_);
    for (std::coroutine_handle<> handle : running_) {
        handle.resume();
    }
    running_.clear();
}

// One turn: what the kernel finished (reaped at the end of the previous turn), then ready tasks,
// then due timers; then the backend submits everything queued by all of that in one system call
// and collects what finished, sleeping only when there is nothing else to do.
void loop_core::turn() {
    auto started = clock::now();
    dispatch_completions();
    run_ready();
    own_stats_.timers_fired += timers_.fire_expired(clock::now());
    dispatch_completions(); // cancellations by timers that finished at once
    auto ended = clock::now();
    auto busy = static_cast<std::uint64_t>((ended - started).count());
    if (busy > own_stats_.longest_turn_ns) {
        own_stats_.longest_turn_ns = busy;
    }

    std::optional<std::chrono::nanoseconds> timeout;
    if (!ready_.empty() || !done_.empty() || wake_op_ != nullptr || stopping()) {
        timeout = std::chrono::nanoseconds{0};
    } else if (auto next = timers_.next_deadline()) {
        timeout = std::max(std::chrono::nanoseconds{0}, *next - ended);
    }
    ++own_stats_.turns;
    auto polled = backend_->poll(done_, timeout);
    if (!polled) {
        // Nothing a turn can fix: report and keep the loop alive (the next turn retries).
        fmt::print(stderr, "aioloop: {} backend: {}\n", backend_->name(), polled.error().message());
    }
    if (wake_op_ != nullptr) {
        done_.push(*wake_op_); // a wake-up that finished inside arm_wakeup()
        wake_op_ = nullptr;
    }
}

void loop_core::run() {
    loop* previous = current_loop;
    current_loop = &owner_;
    thread_.store(std::this_thread::get_id());
    while (!stop_requested_.load(std::memory_order_acquire)) {
        turn();
    }
    // Finish what the last turn started resuming, so that block_on sees its task's end.
    dispatch_completions();
    run_ready();
    stop_requested_.store(false);
    current_loop = previous;
}

void loop_core::stop() noexcept {
    stop_requested_.store(true, std::memory_order_release);
    if (!on_loop_thread()) {
        wake();
    }
}

bool loop_core::on_loop_thread() const noexcept {
    return thread_.load(std::memory_order_relaxed) == std::this_thread::get_id();
}

loop_stats loop_core::stats() const noexcept {
    loop_stats total = own_stats_;
    total += backend_->stats();
    total.turns = own_stats_.turns;
    return total;
}

// --- cross-thread wake-ups -----------------------------------------------------------------------

void loop_core::post(std::function<void()> fn) {
    {
        std::lock_guard lock(posted_mutex_);
        posted_.push_back(std::move(fn));
    }
    wake();
}

// One eventfd write per burst of posts: the flag stays set until the loop has drained the queue.
void loop_core::wake() noexcept {
    if (!wake_pending_.exchange(true, std::memory_order_acq_rel)) {
        std::uint64_t one = 1;
        [[maybe_unused]] ssize_t n = ::write(wake_fd_, &one, sizeof(one));
    }
}

// The wake-up eventfd is watched by an ordinary poll operation, so every backend handles it the
// same way: in the aio backend it is one more POLL iocb in the turn's io_submit.
void loop_core::arm_wakeup() {
    operation& op = allocate();
    op.kind = op_kind::poll;
    op.fd = wake_fd_;
    op.poll_events = POLLIN;
    op.on_done = &loop_core::on_wakeup;
    op.on_done_context = this;
    --own_stats_.ops_started[static_cast<std::size_t>(op_kind::poll)]; // not the user's
    start(op, std::nullopt, {});
    if (op.state == op_state::done) {
        // The backend finished the poll inside start() (epoll asks poll(2), and a post written
        // since on_wakeup read the eventfd makes it readable): no task awaits this record, so
        // nothing would call on_wakeup and the loop would sleep with the eventfd's count at 1.
        // turn() delivers it after its poll, so that a stream of posts still takes one turn
        // each and can't keep the loop from the kernel and the timers. finish() settles it
        // again: count that once.
        --own_stats_.ops_completed[static_cast<std::size_t>(op_kind::poll)];
        wake_op_ = &op;
    }
}

void loop_core::on_wakeup(operation& op, void* context) {
    auto* self = static_cast<loop_core*>(context);
    self->release(op);
    --self->own_stats_.ops_completed[static_cast<std::size_t>(op_kind::poll)];
    std::uint64_t count = 0;
    self->count_syscall(syscall_name::read);
    [[maybe_unused]] ssize_t n = ::read(self->wake_fd_, &count, sizeof(count));
    self->wake_pending_.store(false, std::memory_order_release);
    {
        std::lock_guard lock(self->posted_mutex_);
        self->posted_running_.swap(self->posted_);
    }
    for (auto& fn : self->posted_running_) {
        fn();
    }
    self->posted_running_.clear();
    self->arm_wakeup();
}

} // namespace aioloop::detail
