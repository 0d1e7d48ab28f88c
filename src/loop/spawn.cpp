// spawn(): a task that nobody awaits runs under a detached root coroutine that owns it, logs what
// it throws, and frees itself when it finishes.

#include <exception>

#include <fmt/format.h>

#include <aioloop/loop.hpp>

#include "loop/loop_core.hpp"

namespace aioloop {

namespace {

struct detached {
    struct promise_type : detail::promise_base {
        detail::loop_core* core = nullptr;

        detached get_return_object() noexcept {
            return {std::coroutine_handle<promise_type>::from_promise(*this)};
        }
        struct final_awaiter {
            bool await_ready() noexcept { return false; }
            void await_suspend(std::coroutine_handle<promise_type> self) noexcept {
                self.promise().core->task_finished(self);
                self.destroy();
            }
            void await_resume() noexcept {}
        };
        final_awaiter final_suspend() noexcept { return {}; }
        void return_void() noexcept {}
    };
    std::coroutine_handle<promise_type> handle;
};

detached run_detached(task<void> work) {
    try {
        co_await std::move(work);
    } catch (const std::exception& e) {
        fmt::print(stderr, "aioloop: a spawned task failed: {}\n", e.what());
    } catch (...) {
        fmt::print(stderr, "aioloop: a spawned task failed with a non-standard exception\n");
    }
}

} // namespace

void loop::spawn(task<void> work, std::stop_token token) {
    detached root = run_detached(std::move(work));
    root.handle.promise().core = core_.get();
    root.handle.promise().set_stop_token(std::move(token));
    core_->task_started(root.handle);
    core_->schedule(root.handle);
}

std::size_t loop::live_tasks() const noexcept {
    return core_->live_tasks();
}

void spawn(task<void> work, std::stop_token token) {
    loop* current = loop::current();
    if (current == nullptr) {
        std::terminate(); // a broken invariant: spawn() outside a running loop
    }
    current->spawn(std::move(work), std::move(token));
}

namespace detail {

task<void>
run_and_stop_void(loop& owner, task<void> work, bool& finished, std::exception_ptr& error) {
    try {
        co_await std::move(work);
        finished = true;
    } catch (...) {
        error = std::current_exception();
    }
    owner.stop();
}

} // namespace detail

} // namespace aioloop
