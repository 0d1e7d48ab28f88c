#pragma once

// What the proxy's coroutines share about one client: its two streams, the readiness waits pending
// on them, when a byte last moved, and how many of the pair's tasks still run.

#include <algorithm>
#include <coroutine>
#include <cstdint>
#include <memory>
#include <span>
#include <stop_token>
#include <string_view>
#include <system_error>

#include <aioloop/apps/proxy.hpp>
#include <aioloop/buffer_pool.hpp>
#include <aioloop/loop.hpp>
#include <aioloop/net/tcp_stream.hpp>
#include <aioloop/result.hpp>
#include <aioloop/task.hpp>

namespace aioloop::apps::detail {

/// One loop's proxy state, shared by its pairs.
struct proxy_shared {
    static constexpr std::size_t bulk_buffers_kept = 4;

    proxy_options options;
    buffer_pool pool;
    /// Bulk transfers' bigger buffers; few are kept idle, since a bulk burst is rare and each big.
    buffer_pool bulk_pool;
    /// Wait for readability before borrowing a buffer (aio, epoll). On io_uring the wait would be
    /// one more SQE and one more turn, so there the read itself waits, holding its buffer for a
    /// while (buffered_read_patience).
    bool wait_before_read;

    proxy_shared(proxy_options opts, bool wait)
        : options(std::move(opts))
        , pool(options.buffer_size)
        , bulk_pool(std::max(options.buffer_size, options.bulk_buffer_size), bulk_buffers_kept)
        , wait_before_read(wait) {}
};

enum side : std::uint8_t { client_side = 0, upstream_side = 1 };

constexpr side other(side s) noexcept {
    return s == client_side ? upstream_side : client_side;
}

class proxy_pair {
public:
    proxy_pair(connection_context ctx,
               proxy_shared& shared,
               net::tcp_stream client,
               net::tcp_stream upstream);
    proxy_pair(const proxy_pair&) = delete;
    proxy_pair& operator=(const proxy_pair&) = delete;

    loop& owner() const noexcept { return ctx_.owner; }
    const connection_context& context() const noexcept { return ctx_; }
    proxy_shared& shared() const noexcept { return shared_; }
    net::tcp_stream& stream(side s) noexcept { return streams_[s]; }
    aioloop::detail::operation** wait_slot(side s) noexcept { return &waits_[s]; }

    /// A byte moved: pushes the idle deadline back (when there is one).
    void touch() noexcept;
    clock::time_point last_active() const noexcept { return last_active_; }
    /// Reads that brought bytes from `s` so far (wrapping): the low-water policy of the other
    /// direction tells a dialogue from a one-way stream by it.
    std::uint32_t reads_from(side s) const noexcept { return reads_[s]; }
    void count_read(side s) noexcept { ++reads_[s]; }

    /// `from` reached end of stream: the other peer reads end of stream too (shutdown SHUT_WR).
    void forward_eof(side from) noexcept;
    /// Reading from or writing to `broken` failed: its peer gets a reset (RST), `broken` is closed,
    /// and the error is counted and, unless it is a reset or --quiet, logged.
    void break_pair(side broken, std::error_code error, std::string_view what);
    /// Closes both streams (idle timeout): pending operations end with operation_canceled.
    void close_both() noexcept;

    /// A task of the pair starts / ends; the last to end resumes join()'s waiter.
    void task_started() noexcept { ++tasks_; }
    void task_finished() noexcept;
    /// A direction ended: when both have, the idle watchdog is stopped.
    void direction_finished() noexcept;
    std::stop_token idle_token() const noexcept { return idle_stop_.get_token(); }
    void enable_idle_watch() { idle_stop_ = std::stop_source(); }

    struct join_awaiter {
        proxy_pair* pair;
        bool await_ready() const noexcept { return pair->tasks_ == 0; }
        void await_suspend(std::coroutine_handle<> waiter) noexcept { pair->joiner_ = waiter; }
        void await_resume() const noexcept {}
    };
    /// Waits until every task of the pair has ended.
    join_awaiter join() noexcept { return {this}; }

private:
    void close_side(side s, bool with_reset) noexcept;

    connection_context ctx_;
    proxy_shared& shared_;
    net::tcp_stream streams_[2];
    aioloop::detail::operation* waits_[2] = {nullptr, nullptr};
    clock::time_point last_active_;
    std::uint32_t reads_[2] = {0, 0};
    std::stop_source idle_stop_{std::nostopstate};
    unsigned tasks_ = 0;
    unsigned directions_ = 2;
    std::coroutine_handle<> joiner_;
};

/// Moves bytes from `from` to the other side until end of stream, an error or a cancel, then
/// reports to the pair. `pair` outlives it (the handler joins it).
task<void> forward(proxy_pair* pair, side from);

/// Closes the pair once no byte has moved for the idle timeout; ends when the directions do.
task<void> watch_idle(proxy_pair* pair);

} // namespace aioloop::apps::detail
