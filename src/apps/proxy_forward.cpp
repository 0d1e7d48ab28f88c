// One direction of a proxied pair: wait for bytes without a buffer, borrow one, read, write it all
// to the other side. A read that filled the buffer means a bulk transfer: then the write of that
// chunk and the read of the next go out together, in one turn (one io_submit with aio), the
// article's fused PWRITE + PREAD, with at most two buffers per direction in flight; and the next
// reads take the bigger bulk buffers, so that each turn moves more bytes (a turn costs one system
// call however big its reads are).

#include <chrono>
#include <coroutine>
#include <span>
#include <stop_token>

#include <aioloop/buffer_pool.hpp>

#include "apps/proxy_pair.hpp"

namespace aioloop::apps::detail {

namespace {

using namespace std::chrono_literals;

// A read that holds a buffer while it waits gives it back after this long without a byte, and
// the direction waits for readability instead, so that a stream that paused costs no buffer. Such
// reads are the one after a read that filled its buffer (a bulk transfer goes on at once), and on
// io_uring every read (a readiness wait first would be one more SQE and turn per message).
constexpr auto buffered_read_patience = 20ms;

// A write started now and awaited later, so that the read issued meanwhile joins it in the same
// turn. Its frame must be awaited before it is destroyed: a pending write would resume it.
class write_job {
public:
    struct promise_type : aioloop::detail::promise_base {
        write_job get_return_object() noexcept {
            return write_job{std::coroutine_handle<promise_type>::from_promise(*this)};
        }
        // Eager: the write is queued before the caller goes on to queue its read.
        std::suspend_never initial_suspend() noexcept { return {}; }
        void return_value(result<std::size_t> r) noexcept { value = r; }
        result<std::size_t> value{0};
    };
    using handle = std::coroutine_handle<promise_type>;

    explicit write_job(handle h) noexcept
        : handle_(h) {}
    write_job(write_job&& other) noexcept
        : handle_(std::exchange(other.handle_, {})) {}
    write_job& operator=(write_job&&) = delete;
    ~write_job() {
        if (handle_) {
            handle_.destroy();
        }
    }

    bool await_ready() const noexcept { return handle_.done(); }
    void await_suspend(std::coroutine_handle<> waiter) noexcept {
        handle_.promise().set_continuation(waiter);
    }
    result<std::size_t> await_resume() const noexcept { return handle_.promise().value; }

private:
    handle handle_;
};

write_job start_write(net::tcp_stream* to, std::span<const std::byte> data, std::stop_token token) {
    auto writing = to->write(data).with_stop_token(token);
    auto sent = co_await std::move(writing);
    co_return sent;
}

// How a transfer ended: more to come, silent for a while (wait for readiness before the next
// read, holding no buffer), or the direction is over.
enum class moved { more, went_idle, over };

// What a read's outcome asks the direction to do.
enum class after_read { carry_on, stop };

after_read check_read(proxy_pair& pair, side from, const result<std::size_t>& n) {
    if (!n) {
        // Cancelled: the pair is closing (idle, the other direction broke it, the grace period
        // ran out). Anything else broke this side.
        if (n.error() != std::errc::operation_canceled) {
            pair.break_pair(from, n.error(), "read from");
        }
        return after_read::stop;
    }
    if (*n == 0) {
        pair.forward_eof(from);
        return after_read::stop;
    }
    pair.touch();
    if (from == client_side) {
        pair.context().counters.bytes_in += *n;
    }
    return after_read::carry_on;
}

bool check_write(proxy_pair& pair, side from, const result<std::size_t>& sent) {
    if (!sent) {
        if (sent.error() != std::errc::operation_canceled) {
            pair.break_pair(other(from), sent.error(), "write to");
        }
        return false;
    }
    pair.touch();
    if (from == upstream_side) {
        pair.context().counters.bytes_out += *sent;
    }
    return true;
}

// Moves what is there now: reads (and, while reads fill the buffer, keeps reading as it writes),
// writes it all. False when the direction is over. A task of its own so that its frame, with the
// buffers and awaitables of a transfer, exists only while bytes are in flight.
task<moved> move_bytes(proxy_pair* pair, side from) {
    net::tcp_stream& src = pair->stream(from);
    net::tcp_stream& dst = pair->stream(other(from));
    buffer_pool& pool = pair->shared().pool;
    buffer_pool& bulk_pool = pair->shared().bulk_pool;
    const bool wait_first = pair->shared().wait_before_read;
    if (!src.is_open() || !dst.is_open()) {
        co_return moved::over; // closed by the other direction while this one waited
    }
    buffer_pool::buffer buf = pool.acquire();
    auto reading = src.read(buf.span());
    if (!wait_first) {
        // io_uring: the read itself waits, holding the buffer, but not for long.
        std::move(reading).with_timeout(buffered_read_patience);
    }
    auto n = co_await std::move(reading);
    if (!n && n.error() == std::errc::timed_out) {
        co_return moved::went_idle;
    }
    if (check_read(*pair, from, n) == after_read::stop) {
        co_return moved::over;
    }
    // Bulk: write this chunk while the next one is read, in the same turn.
    // Still bulk while reads bring at least a plain buffer's worth; a bigger bulk buffer need not
    // fill.
    while (*n >= pool.buffer_size() && src.is_open() && dst.is_open()) {
        write_job job = start_write(&dst, buf.span().first(*n), pair->context().abort);
        buffer_pool::buffer next = bulk_pool.acquire();
        auto reading_more = src.read(next.span());
        if (wait_first) {
            std::move(reading_more).with_timeout(buffered_read_patience);
        }
        auto more = co_await std::move(reading_more);
        auto sent = co_await job;
        if (!check_write(*pair, from, sent)) {
            co_return moved::over;
        }
        if (!more && more.error() == std::errc::timed_out) {
            co_return moved::went_idle; // nothing came: back to waiting without a buffer
        }
        if (check_read(*pair, from, more) == after_read::stop) {
            co_return moved::over;
        }
        buf = std::move(next);
        n = more;
    }
    if (!src.is_open() || !dst.is_open()) {
        co_return moved::over;
    }
    auto writing = dst.write(buf.span().first(*n));
    auto sent = co_await std::move(writing);
    co_return check_write(*pair, from, sent) ? moved::more : moved::over;
}

// An idle direction is this frame and one pending readiness wait, no buffer.
task<void> forward_bytes(proxy_pair* pair, side from) {
    net::tcp_stream& src = pair->stream(from);
    bool idle = false;
    for (;;) {
        if (!src.is_open() || !pair->stream(other(from)).is_open()) {
            co_return;
        }
        if (pair->shared().wait_before_read || idle) {
            auto waiting = pair->owner().fd_readable(src.fd()).tracked_by(pair->wait_slot(from));
            auto ready = co_await std::move(waiting);
            if (!ready) {
                if (ready.error() != std::errc::operation_canceled) {
                    pair->break_pair(from, ready.error(), "wait for");
                }
                co_return;
            }
        }
        auto moving = move_bytes(pair, from);
        moved outcome = co_await std::move(moving);
        if (outcome == moved::over) {
            co_return;
        }
        idle = outcome == moved::went_idle;
    }
}

} // namespace

task<void> forward(proxy_pair* pair, side from) {
    auto body = forward_bytes(pair, from);
    co_await std::move(body);
    pair->direction_finished();
}

task<void> watch_idle(proxy_pair* pair) {
    auto limit = pair->shared().options.idle_timeout;
    for (;;) {
        // Named: a temporary awaitable inside co_await trips GCC PR 100611.
        auto sleep = pair->owner().sleep_until(pair->last_active() + limit);
        auto slept = co_await sleep;
        if (!slept) {
            co_return; // both directions ended
        }
        if (clock::now() - pair->last_active() >= limit) {
            pair->close_both();
            co_return;
        }
    }
}

} // namespace aioloop::apps::detail
