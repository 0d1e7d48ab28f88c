// The awaitables behind co_await: an operation for the backend, and a user-space timer.

#include <cassert>

#include <aioloop/loop.hpp>

#include "loop/loop_core.hpp"

namespace aioloop {

bool io_awaitable::start(std::coroutine_handle<> caller) {
    detail::loop_core& core = loop_->core();
    detail::operation& op = core.allocate();
    op.kind = kind_;
    op.fd = fd_;
    op.buf = static_cast<std::byte*>(buf_);
    op.len = len_;
    op.offset = offset_;
    op.poll_events = events_;
    op.waiter = caller;
    op_ = &op;
    if (slot_ != nullptr) {
        *slot_ = &op;
        op.tracker = slot_;
    }
    core.start(op, deadline_, std::move(token_));
    if (op.state == detail::op_state::done) {
        // Finished before we suspended (a stop already requested): don't wait for the turn.
        return false;
    }
    return true;
}

result<std::size_t> io_awaitable::await_resume() noexcept {
    detail::operation& op = *op_;
    assert(op.state == detail::op_state::done);
    std::int64_t res = op.result;
    bool timed_out = op.timed_out;
    if (op.tracker != nullptr) {
        *op.tracker = nullptr;
    }
    loop_->core().release(op);
    op_ = nullptr;
    if (res >= 0) {
        return static_cast<std::size_t>(res);
    }
    if (res == -ECANCELED && timed_out) {
        return fail(ETIMEDOUT);
    }
    return fail(static_cast<int>(-res));
}

void yield_awaitable::await_suspend(std::coroutine_handle<> caller) {
    owner->core().schedule(caller);
}

timer_awaitable::~timer_awaitable() {
    if (timer_ != 0) {
        loop_->core().timers().cancel(timer_);
    }
}

void timer_awaitable::start(std::coroutine_handle<> caller, std::stop_token token) {
    waiter_ = caller;
    timer_ = loop_->core().timers().add(deadline_, &timer_awaitable::fire, this);
    armed_id_ = timer_;
    if (token.stop_possible()) {
        stop_callback_.emplace(std::move(token), on_stop{this});
    }
}

void timer_awaitable::fire(void* context) noexcept {
    auto* self = static_cast<timer_awaitable*>(context);
    self->timer_ = 0;
    self->waiter_.resume();
}

// A stop cancels the timer and resumes the sleeper on the loop's thread, with operation_canceled.
void timer_awaitable::on_stop::operator()() const noexcept {
    timer_awaitable* sleeper = self;
    detail::loop_core& core = sleeper->loop_->core();
    // The timer id, not the sleeper, tells whether the sleeper still waits: a pending timer means
    // its awaitable is alive (its destructor cancels the timer).
    std::uint64_t id = sleeper->armed_id_;
    auto cancel = [sleeper, id, &core] {
        if (!core.timers().cancel(id)) {
            return; // fired already
        }
        sleeper->timer_ = 0;
        sleeper->canceled_ = true;
        core.schedule(sleeper->waiter_);
    };
    if (core.on_loop_thread()) {
        cancel();
    } else {
        core.post(cancel);
    }
}

result<void> timer_awaitable::await_resume() noexcept {
    stop_callback_.reset();
    if (canceled_) {
        return fail(ECANCELED);
    }
    return {};
}

} // namespace aioloop

namespace aioloop::detail {

void cancel_on_stop::operator()() const noexcept {
    op->owner->core().cancel_from_any_thread(*op);
}

} // namespace aioloop::detail
