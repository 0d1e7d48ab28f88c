#pragma once

// task<T>: a lazily started coroutine that produces a T (or throws). Awaiting a task starts it and
// resumes the awaiter when it finishes, by symmetric transfer, so chains of tasks use no stack.
// A task carries a std::stop_token that the tasks it awaits inherit: requesting stop cancels the
// kernel operation the chain is waiting on, which then completes with operation_canceled.

#include <coroutine>
#include <exception>
#include <optional>
#include <stop_token>
#include <type_traits>
#include <utility>

namespace aioloop {

template <typename T = void>
class task;

namespace detail {

class promise_base {
public:
    std::suspend_always initial_suspend() noexcept { return {}; }

    struct final_awaiter {
        bool await_ready() noexcept { return false; }
        template <typename Promise>
        std::coroutine_handle<> await_suspend(std::coroutine_handle<Promise> done) noexcept {
            auto continuation = done.promise().continuation_;
            return continuation ? continuation : std::noop_coroutine();
        }
        void await_resume() noexcept {}
    };
    final_awaiter final_suspend() noexcept { return {}; }

    void unhandled_exception() noexcept { exception_ = std::current_exception(); }

    /// The stop token of the chain this task runs in.
    const std::stop_token& stop_token() const noexcept { return stop_token_; }
    void set_stop_token(std::stop_token token) noexcept { stop_token_ = std::move(token); }
    void set_continuation(std::coroutine_handle<> continuation) noexcept {
        continuation_ = continuation;
    }
    /// Who awaits this coroutine (null while nobody does).
    std::coroutine_handle<> continuation() const noexcept { return continuation_; }

protected:
    void rethrow_if_failed() {
        if (exception_) {
            std::rethrow_exception(exception_);
        }
    }

private:
    std::coroutine_handle<> continuation_;
    std::exception_ptr exception_;
    std::stop_token stop_token_;
};

template <typename T>
class promise final : public promise_base {
public:
    task<T> get_return_object() noexcept;
    template <typename U>
    requires std::is_convertible_v<U&&, T>
    void return_value(U&& value) noexcept(std::is_nothrow_constructible_v<T, U&&>) {
        value_.emplace(std::forward<U>(value));
    }
    T take() {
        rethrow_if_failed();
        return std::move(*value_);
    }

private:
    std::optional<T> value_;
};

template <>
class promise<void> final : public promise_base {
public:
    task<void> get_return_object() noexcept;
    void return_void() noexcept {}
    void take() { rethrow_if_failed(); }
};

/// The stop token of the coroutine behind `handle`, when it is a task; empty otherwise.
template <typename Promise>
std::stop_token stop_token_of(std::coroutine_handle<Promise> handle) noexcept {
    if constexpr (std::is_base_of_v<promise_base, Promise>) {
        return handle.promise().stop_token();
    } else {
        return {};
    }
}

} // namespace detail

template <typename T>
class [[nodiscard]] task {
public:
    using promise_type = detail::promise<T>;
    using handle_type = std::coroutine_handle<promise_type>;

    task() noexcept = default;
    explicit task(handle_type handle) noexcept
        : handle_(handle) {}
    task(task&& other) noexcept
        : handle_(std::exchange(other.handle_, {})) {}
    task& operator=(task&& other) noexcept {
        if (this != &other) {
            destroy();
            handle_ = std::exchange(other.handle_, {});
        }
        return *this;
    }
    task(const task&) = delete;
    task& operator=(const task&) = delete;
    ~task() { destroy(); }

    bool valid() const noexcept { return static_cast<bool>(handle_); }
    bool done() const noexcept { return handle_ && handle_.done(); }

    struct awaiter {
        handle_type handle;
        bool await_ready() const noexcept { return !handle || handle.done(); }
        template <typename Promise>
        std::coroutine_handle<> await_suspend(std::coroutine_handle<Promise> caller) noexcept {
            handle.promise().set_continuation(caller);
            handle.promise().set_stop_token(detail::stop_token_of(caller));
            return handle;
        }
        T await_resume() { return handle.promise().take(); }
    };
    awaiter operator co_await() && noexcept { return awaiter{handle_}; }

    /// Gives up ownership of the coroutine: for the loop's spawn(), which destroys it when done.
    handle_type release() noexcept { return std::exchange(handle_, {}); }

private:
    void destroy() noexcept {
        if (handle_) {
            handle_.destroy();
            handle_ = {};
        }
    }

    handle_type handle_;
};

namespace detail {

template <typename T>
task<T> promise<T>::get_return_object() noexcept {
    return task<T>(std::coroutine_handle<promise<T>>::from_promise(*this));
}

inline task<void> promise<void>::get_return_object() noexcept {
    return task<void>(std::coroutine_handle<promise<void>>::from_promise(*this));
}

} // namespace detail

/// Awaitable that yields the stop token of the current task chain: `co_await current_stop_token()`.
struct current_stop_token {
    std::stop_token token;
    bool await_ready() const noexcept { return false; }
    template <typename Promise>
    bool await_suspend(std::coroutine_handle<Promise> caller) noexcept {
        token = detail::stop_token_of(caller);
        return false;
    }
    std::stop_token await_resume() noexcept { return std::move(token); }
};

} // namespace aioloop
