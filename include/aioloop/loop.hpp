#pragma once

// The event loop: one per thread. It runs coroutine tasks, keeps timers in user space, and hands
// each turn's kernel operations to its backend (aio by default, epoll or io_uring) in one batch.

#include <chrono>
#include <coroutine>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <span>
#include <stdexcept>
#include <stop_token>
#include <string>
#include <string_view>
#include <vector>

#include <aioloop/result.hpp>
#include <aioloop/stats.hpp>
#include <aioloop/task.hpp>

namespace aioloop {

namespace detail {
struct operation;
class loop_core;
} // namespace detail

class loop;

enum class backend_kind : std::uint8_t { automatic, aio, epoll, uring };
std::string_view to_string(backend_kind kind) noexcept;
/// "aio", "epoll", "uring" or "auto"; nullopt for anything else.
std::optional<backend_kind> parse_backend_kind(std::string_view name) noexcept;

struct loop_options {
    backend_kind backend = backend_kind::automatic;
    /// Connections this loop serves at most: sizes the AIO context (each idle connection keeps a
    /// POLL pending, so the context needs a slot per connection).
    unsigned max_connections = 4096;
    /// No user-space ring reaping, so that strace and valgrind see every completion.
    bool force_syscalls = false;
    /// Called with a one-line warning when `auto` passes over a backend, or the AIO context is
    /// shrunk to fit fs.aio-max-nr. Default: printed to stderr.
    std::function<void(std::string_view)> on_warning;
};

/// Why a loop could not be made: the error and a line for the user that names the cause and the
/// fix (e.g. the sysctl to raise).
struct loop_error {
    std::error_code code;
    std::string message;
};

using clock = std::chrono::steady_clock;

/// An operation for the kernel, awaited once: `co_await stream.read(buf)`. The result is bytes
/// transferred (0: end of stream) or, for polls, the ready events; errors are -errno as
/// error_code, std::errc::timed_out after a deadline, std::errc::operation_canceled after stop.
class [[nodiscard]] io_awaitable {
public:
    io_awaitable(loop& owner, op_kind kind, int fd) noexcept
        : loop_(&owner)
        , kind_(kind)
        , fd_(fd) {}

    io_awaitable&& with_buffer(void* buf, std::size_t len) && noexcept {
        buf_ = buf;
        len_ = len;
        return std::move(*this);
    }
    io_awaitable&& with_offset(std::int64_t offset) && noexcept {
        offset_ = offset;
        return std::move(*this);
    }
    io_awaitable&& with_events(std::uint32_t events) && noexcept {
        events_ = events;
        return std::move(*this);
    }
    /// Fails the operation with timed_out if it hasn't finished by `deadline`.
    io_awaitable&& with_deadline(clock::time_point deadline) && noexcept {
        deadline_ = deadline;
        return std::move(*this);
    }
    io_awaitable&& with_timeout(clock::duration timeout) && noexcept {
        deadline_ = clock::now() + timeout;
        return std::move(*this);
    }
    /// While pending, the operation is recorded in *slot, so that its owner (a stream being
    /// closed) can cancel it; *slot is reset when it finishes.
    io_awaitable&& tracked_by(detail::operation** slot) && noexcept {
        slot_ = slot;
        return std::move(*this);
    }
    /// Cancels the operation when `token` is stopped (default: the awaiting task's token).
    io_awaitable&& with_stop_token(std::stop_token token) && noexcept {
        token_ = std::move(token);
        has_token_ = true;
        return std::move(*this);
    }

    bool await_ready() const noexcept { return false; }
    template <typename Promise>
    bool await_suspend(std::coroutine_handle<Promise> caller) {
        if (!has_token_) {
            token_ = detail::stop_token_of(caller);
        }
        return start(caller);
    }
    result<std::size_t> await_resume() noexcept;

private:
    bool start(std::coroutine_handle<> caller);

    loop* loop_;
    op_kind kind_;
    int fd_;
    void* buf_ = nullptr;
    std::size_t len_ = 0;
    std::int64_t offset_ = 0;
    std::uint32_t events_ = 0;
    std::optional<clock::time_point> deadline_;
    std::stop_token token_;
    bool has_token_ = false;
    detail::operation* op_ = nullptr;
    detail::operation** slot_ = nullptr;
};

/// A sleep: completes at `deadline`, or early with operation_canceled when the task is stopped.
class [[nodiscard]] timer_awaitable {
public:
    timer_awaitable(loop& owner, clock::time_point deadline) noexcept
        : loop_(&owner)
        , deadline_(deadline) {}
    timer_awaitable(const timer_awaitable&) = delete;
    timer_awaitable& operator=(const timer_awaitable&) = delete;
    ~timer_awaitable();

    bool await_ready() const noexcept { return deadline_ <= clock::now(); }
    template <typename Promise>
    void await_suspend(std::coroutine_handle<Promise> caller) {
        start(caller, detail::stop_token_of(caller));
    }
    result<void> await_resume() noexcept;

private:
    struct on_stop {
        timer_awaitable* self;
        void operator()() const noexcept;
    };
    void start(std::coroutine_handle<> caller, std::stop_token token);
    static void fire(void* self) noexcept;

    loop* loop_;
    clock::time_point deadline_;
    std::uint64_t timer_ = 0;    // pending timer, 0 once fired or cancelled
    std::uint64_t armed_id_ = 0; // the timer's id, never changed: read by other threads' stops
    std::coroutine_handle<> waiter_;
    bool canceled_ = false;
    std::optional<std::stop_callback<on_stop>> stop_callback_;
};

/// Gives the other tasks, the timers and the kernel a turn before the caller continues.
struct [[nodiscard]] yield_awaitable {
    loop* owner;
    bool await_ready() const noexcept { return false; }
    void await_suspend(std::coroutine_handle<> caller);
    void await_resume() const noexcept {}
};

class loop {
public:
    /// Makes a loop on the backend the options name. `auto` tries aio, then uring, then epoll,
    /// warning once for each it passes over; a backend named explicitly fails with its reason.
    /// The aio backend sets SIGPIPE to SIG_IGN if it is still SIG_DFL: its socket writes can't
    /// pass MSG_NOSIGNAL, so a reset peer would otherwise kill the process instead of EPIPE.
    static tl::expected<std::unique_ptr<loop>, loop_error> create(loop_options options = {});

    loop(const loop&) = delete;
    loop& operator=(const loop&) = delete;
    ~loop();

    /// Runs turns until stop() is called. Sets current() for the calling thread meanwhile.
    void run();
    /// Makes run() return after the current turn. Safe from any thread and from signal handlers'
    /// posted callbacks.
    void stop() noexcept;
    bool stopping() const noexcept;

    /// Runs `work` to completion on this loop and returns its value (or rethrows its exception).
    template <typename T>
    T block_on(task<T> work);

    /// Starts a task that nobody awaits. An exception it lets out is logged, never lost. The task
    /// sees `token` as its stop token: stopping it cancels whatever it is waiting on.
    void spawn(task<void> work, std::stop_token token = {});
    /// Spawned tasks that have not finished yet.
    std::size_t live_tasks() const noexcept;

    /// Runs `fn` on this loop's thread during a coming turn. Safe from any thread; wakes the loop.
    void post(std::function<void()> fn);

    timer_awaitable sleep_for(clock::duration d) noexcept { return {*this, clock::now() + d}; }
    /// Resumes the caller in the next turn.
    yield_awaitable yield() noexcept { return {this}; }
    timer_awaitable sleep_until(clock::time_point t) noexcept { return {*this, t}; }
    /// Waits until `fd` is readable / writable (POLLIN / POLLOUT); the result is the revents.
    io_awaitable fd_readable(int fd) noexcept;
    io_awaitable fd_writable(int fd) noexcept;
    io_awaitable poll(int fd, std::uint32_t events) noexcept;

    /// Low-level operations, for net:: and fs:: types.
    io_awaitable recv(int fd, std::span<std::byte> buf) noexcept;
    /// Writes all of `buf`, across partial writes, or fails.
    io_awaitable send(int fd, std::span<const std::byte> buf) noexcept;
    io_awaitable read_at(int fd, std::span<std::byte> buf, std::int64_t offset) noexcept;
    io_awaitable write_at(int fd, std::span<const std::byte> buf, std::int64_t offset) noexcept;

    /// Asks the pending operation recorded in `slot` (io_awaitable::tracked_by) to end early, and
    /// lets go of it: it completes with operation_canceled, or its real result if the kernel
    /// finished first, and never touches `slot` again (its owner may be gone by then).
    void cancel(detail::operation*& slot) noexcept;
    /// The owner of `slot` moved from `from`: the pending operation, if any, follows it.
    static void move_tracked(detail::operation*& to, detail::operation*& from) noexcept;

    /// Call before closing an fd whose operations have all completed: lets the backend drop what it
    /// keeps for it (epoll's registration).
    void forget_fd(int fd) noexcept;

    /// Counts a system call made on the loop's behalf outside the backend (accept4, connect...).
    void count_syscall(syscall_name name) noexcept;

    /// The backend in use ("aio", "epoll", "uring") and why it was chosen.
    std::string_view backend_name() const noexcept;
    const std::string& backend_reason() const noexcept;

    /// What this loop did so far: its own counters plus its backend's.
    loop_stats stats() const noexcept;

    /// The loop running on this thread, or null.
    static loop* current() noexcept;

    detail::loop_core& core() noexcept { return *core_; }

private:
    loop() noexcept;

    std::unique_ptr<detail::loop_core> core_;
};

/// sleep_for / sleep_until / fd_readable / fd_writable on loop::current().
timer_awaitable sleep_for(clock::duration d) noexcept;
timer_awaitable sleep_until(clock::time_point t) noexcept;
io_awaitable fd_readable(int fd) noexcept;
io_awaitable fd_writable(int fd) noexcept;
/// spawn() on loop::current().
void spawn(task<void> work, std::stop_token token = {});

namespace detail {

/// The coroutine that block_on() runs: awaits the task, keeps its outcome, stops the loop.
template <typename T>
task<void>
run_and_stop(loop& owner, task<T> work, std::optional<T>& value, std::exception_ptr& error) {
    try {
        value.emplace(co_await std::move(work));
    } catch (...) {
        error = std::current_exception();
    }
    owner.stop();
}

task<void>
run_and_stop_void(loop& owner, task<void> work, bool& finished, std::exception_ptr& error);

} // namespace detail

template <typename T>
T loop::block_on(task<T> work) {
    std::exception_ptr error;
    if constexpr (std::is_void_v<T>) {
        bool finished = false;
        spawn(detail::run_and_stop_void(*this, std::move(work), finished, error));
        run();
        if (error) {
            std::rethrow_exception(error);
        }
        if (!finished) {
            throw std::logic_error("loop::block_on: the loop stopped before the task finished");
        }
    } else {
        std::optional<T> value;
        spawn(detail::run_and_stop(*this, std::move(work), value, error));
        run();
        if (error) {
            std::rethrow_exception(error);
        }
        if (!value) {
            throw std::logic_error("loop::block_on: the loop stopped before the task finished");
        }
        return std::move(*value);
    }
}

} // namespace aioloop
