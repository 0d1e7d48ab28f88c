#pragma once

// How one turn's operations reach the kernel. The loop owns operation records and timers; a
// backend turns records into iocbs (aio), SQEs (uring) or readiness waits plus plain system calls
// (epoll), and hands every record back exactly once through the completion queue.

#include <chrono>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>

#include <aioloop/result.hpp>
#include <aioloop/stats.hpp>

#include "loop/operation.hpp"

namespace aioloop::backend {

class backend {
public:
    virtual ~backend() = default;

    virtual std::string_view name() const noexcept = 0;

    /// Takes `op` (state started, result unset) for this turn. The backend may finish it at once
    /// (epoll's send fast path) by pushing it to `done`; otherwise it completes in a later poll().
    virtual void start(detail::operation& op, detail::completion_queue& done) noexcept = 0;

    /// Asks for `op` to end early. It still completes exactly once: with its real result when the
    /// kernel finished it first, else with -ECANCELED. Never frees or reuses the record.
    virtual void cancel(detail::operation& op, detail::completion_queue& done) noexcept = 0;

    /// Hands the kernel everything started since the last call (one io_submit, one
    /// io_uring_enter...), then moves finished operations to `done`. Sleeps, up to `timeout`
    /// (nullopt: without limit), only when nothing finished and `done` is still empty.
    virtual result<void> poll(detail::completion_queue& done,
                              std::optional<std::chrono::nanoseconds> timeout) noexcept = 0;

    /// The fd is about to be closed and has no operation in flight: forget what is kept for it.
    virtual void forget_fd(int fd) noexcept { (void)fd; }

    /// Counters of what this backend did; the loop adds its own.
    loop_stats& stats() noexcept { return stats_; }

protected:
    loop_stats stats_;
};

/// What the caller asked for when a backend is made.
struct backend_config {
    unsigned max_operations = 4096; ///< operations in flight at once (sizes the AIO context)
    bool force_syscalls = false;    ///< aio: no user-space ring reaping (for strace, valgrind)
    /// Where a backend that can run, but not as asked (a smaller AIO context, io_uring without
    /// DEFER_TASKRUN), says so in one line. May be empty.
    std::function<void(std::string_view)> on_warning;
};

/// A backend that could not be made, and why, in one line for the user.
struct backend_error {
    std::error_code code;
    std::string message;
};

tl::expected<std::unique_ptr<backend>, backend_error>
make_aio_backend(const backend_config& config);
tl::expected<std::unique_ptr<backend>, backend_error>
make_epoll_backend(const backend_config& config);
tl::expected<std::unique_ptr<backend>, backend_error>
make_uring_backend(const backend_config& config);

} // namespace aioloop::backend
