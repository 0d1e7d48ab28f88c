// One direction of a proxied pair: wait for bytes without a buffer, borrow one, read, write it all
// to the other side. A read that filled the buffer means a bulk transfer: then the write of that
// chunk and the read of the next go out together, in one turn (one io_submit with aio), the
// article's fused PWRITE + PREAD, with at most two buffers per direction in flight; and the next
// reads take the bigger bulk buffers, so that each turn moves more bytes (a turn costs one system
// call however big its reads are). A bulk stream that goes on raises its receive low-water mark
// (proxy_low_water.hpp), so that a proxy faster than its sender is woken once per bulk buffer,
// not once per TCP segment.

#include <chrono>
#include <coroutine>
#include <optional>
#include <span>
#include <stop_token>

#include <aioloop/buffer_pool.hpp>

#include "apps/proxy_low_water.hpp"
#include "apps/proxy_pair.hpp"

namespace aioloop::apps::detail {

namespace {

using namespace std::chrono_literals;

// A read that holds a buffer while it waits gives it back after this long without a byte, and
// the direction waits for readability instead, so that a stream that paused costs no buffer. Such
// reads are the one after a read that filled its buffer (a bulk transfer goes on at once), and on
// io_uring every read (a readiness wait first would be one more SQE and turn per message).
constexpr auto buffered_read_patience = 20ms;

// A direction that waited this long for its next byte starts a new stream: the low-water policy
// forgets what it learnt about the last one. Longer than the patience above, so that a sender
// that a busy machine keeps off the CPU for a few tens of milliseconds is still the same stream.
constexpr auto new_stream_after = 200ms;

// A write started now and awaited later, so that the read (or readiness wait) issued meanwhile
// joins it in the same turn. Awaited, it is destroyed by its owner; if it ends before anyone
// awaits it, it leaves its result in its owner and frees its frame at once, so that a direction
// whose last write ended holds no frame for it while it waits, however long. A pending one must
// be awaited before its owner goes: the write would resume a frame that is gone.
class write_job {
public:
    struct promise_type : aioloop::detail::promise_base {
        write_job get_return_object() noexcept {
            return write_job{std::coroutine_handle<promise_type>::from_promise(*this)};
        }
        // Eager: the write is queued before the caller goes on to queue its read.
        std::suspend_never initial_suspend() noexcept { return {}; }
        void return_value(result<std::size_t> r) noexcept { value = r; }

        struct final_awaiter {
            bool await_ready() noexcept { return false; }
            std::coroutine_handle<>
            await_suspend(std::coroutine_handle<promise_type> done) noexcept {
                promise_type& p = done.promise();
                if (p.continuation()) {
                    return p.continuation(); // awaited: the owner reads the value, then destroys
                }
                write_job* owner = p.owner;
                owner->value_ = p.value;
                owner->handle_ = {};
                done.destroy();
                return std::noop_coroutine();
            }
            void await_resume() noexcept {}
        };
        final_awaiter final_suspend() noexcept { return {}; }

        result<std::size_t> value{0};
        write_job* owner = nullptr; // follows the job object through its moves
    };
    using handle = std::coroutine_handle<promise_type>;

    explicit write_job(handle h) noexcept
        : handle_(h) {
        handle_.promise().owner = this;
    }
    write_job(write_job&& other) noexcept
        : handle_(std::exchange(other.handle_, {}))
        , value_(other.value_) {
        if (handle_) {
            handle_.promise().owner = this;
        }
    }
    write_job& operator=(write_job&&) = delete;
    ~write_job() {
        if (handle_) {
            handle_.destroy();
        }
    }

    bool await_ready() const noexcept { return !handle_ || handle_.done(); }
    void await_suspend(std::coroutine_handle<> waiter) noexcept {
        handle_.promise().set_continuation(waiter);
    }
    result<std::size_t> await_resume() const noexcept {
        return handle_ ? handle_.promise().value : value_;
    }

private:
    handle handle_;
    result<std::size_t> value_{0}; // the result, once the frame is gone
};

// How a transfer ended: more to come, silent for a while (wait for readiness before the next
// read, holding no buffer), or the direction is over.
enum class moved { more, went_idle, over };

// ...and the write of its last chunk, when it is still going: the direction's readiness wait for
// the next bytes joins it in the same turn.
struct transfer_end {
    moved outcome;
    std::optional<write_job> last_write;
};

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
    pair.count_read(from);
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

// A chunk's write, owning its buffer, which goes back to the pool the moment the write ends (a
// local of the body, not a parameter kept in the frame). Settled here, so that a failed write
// breaks the pair at once, cancelling the read or readiness wait pending beside it.
write_job start_chunk_write(proxy_pair* pair, side from, buffer_pool::buffer buf, std::size_t n) {
    buffer_pool::buffer owned = std::move(buf);
    auto writing = pair->stream(other(from))
                       .write(owned.span().first(n))
                       .with_stop_token(pair->context().abort);
    auto sent = co_await std::move(writing);
    check_write(*pair, from, sent);
    co_return sent;
}

// Raises the source's receive low-water mark when the policy says so.
void raise_if_streaming(proxy_pair& pair, side from, low_water_policy& mark) noexcept {
    if (mark.should_raise()) {
        mark.set_raised(pair.stream(from).set_receive_low_water(mark.mark()).has_value());
        pair.context().counters.low_water_raises += mark.raised() ? 1 : 0;
    }
}

void lower(net::tcp_stream& src, low_water_policy& mark) noexcept {
    if (mark.raised() && src.is_open()) {
        (void)src.set_receive_low_water(1);
    }
    mark.set_raised(false);
}

// Keeps the mark raised only inside the bulk loop: every way out of a transfer lowers it, so
// that the direction's buffer-less readiness wait, which has no time limit, never waits for it.
struct lower_on_exit {
    net::tcp_stream& src;
    low_water_policy& mark;
    ~lower_on_exit() { lower(src, mark); }
};

// Moves what is there now: reads (and, while reads fill the buffer, keeps reading as it writes),
// writes it all. False when the direction is over. A task of its own so that its frame, with the
// buffers and awaitables of a transfer, exists only while bytes are in flight.
task<transfer_end> move_bytes(proxy_pair* pair, side from, low_water_policy* mark) {
    net::tcp_stream& src = pair->stream(from);
    net::tcp_stream& dst = pair->stream(other(from));
    buffer_pool& pool = pair->shared().pool;
    buffer_pool& bulk_pool = pair->shared().bulk_pool;
    const proxy_options& options = pair->shared().options;
    const bool wait_first = pair->shared().wait_before_read;
    if (!src.is_open() || !dst.is_open()) {
        co_return transfer_end{moved::over,
                               {}}; // closed by the other direction while this one waited
    }
    buffer_pool::buffer buf = pool.acquire();
    auto reading = src.read(buf.span());
    if (!wait_first) {
        // io_uring: the read itself waits, holding the buffer, but not for long.
        std::move(reading).with_timeout(buffered_read_patience);
    }
    auto n = co_await std::move(reading);
    if (!n && n.error() == std::errc::timed_out) {
        co_return transfer_end{moved::went_idle, {}};
    }
    if (check_read(*pair, from, n) == after_read::stop) {
        co_return transfer_end{moved::over, {}};
    }
    mark->read(*n, pair->reads_from(other(from)));
    lower_on_exit lowered_at_the_end{src, *mark};
    raise_if_streaming(
        *pair, from, *mark); // also when a stream's segments never fill a plain buffer
    // Bulk: write this chunk while the next one is read, in the same turn. Still bulk while reads
    // bring at least a plain buffer's worth (a bigger bulk buffer need not fill), or while the
    // low-water mark is raised (the wait for it decides when the stream has stopped).
    while ((*n >= pool.buffer_size() || mark->raised()) && src.is_open() && dst.is_open()) {
        write_job job = start_chunk_write(pair, from, std::move(buf), *n);
        buffer_pool::buffer next = bulk_pool.acquire();
        auto reading_more = src.read(next.span());
        std::move(reading_more)
            .with_timeout(mark->raised() ? clock::duration(options.bulk_low_water_wait)
                                         : clock::duration(buffered_read_patience));
        auto more = co_await std::move(reading_more);
        if (!more && more.error() == std::errc::timed_out && mark->raised()) {
            // The sender stopped short of the mark: take what is there, as an unraised read.
            lower(src, *mark);
            auto reading_rest = src.read(next.span());
            std::move(reading_rest).with_timeout(buffered_read_patience);
            more = co_await std::move(reading_rest);
            app_counters& counters = pair->context().counters;
            ++counters.low_water_short_waits;
            counters.low_water_give_ups += mark->fell_short(pair->reads_from(other(from))) ? 1 : 0;
        }
        auto sent = co_await job;
        if (!sent) {
            co_return transfer_end{moved::over, {}}; // settled by the write itself
        }
        if (!more && more.error() == std::errc::timed_out) {
            co_return transfer_end{moved::went_idle,
                                   {}}; // nothing came: back to waiting without a buffer
        }
        if (check_read(*pair, from, more) == after_read::stop) {
            co_return transfer_end{moved::over, {}};
        }
        mark->read(*more, pair->reads_from(other(from)));
        raise_if_streaming(*pair, from, *mark);
        buf = std::move(next);
        n = more;
    }
    if (!src.is_open() || !dst.is_open()) {
        co_return transfer_end{moved::over, {}};
    }
    write_job last = start_chunk_write(pair, from, std::move(buf), *n);
    if (wait_first) {
        // The direction waits for readiness next: that wait and this write go out together.
        co_return transfer_end{moved::more, std::move(last)};
    }
    auto sent = co_await last;
    co_return transfer_end{sent ? moved::more : moved::over, {}};
}

// An idle direction is this frame and one pending readiness wait, no buffer.
task<void> forward_bytes(proxy_pair* pair, side from) {
    net::tcp_stream& src = pair->stream(from);
    bool idle = false;
    // The last chunk's write, still going while the wait for the next bytes starts beside it; it
    // must end before the next read, so that a slow receiver holds the sender back.
    std::optional<write_job> writing;
    low_water_policy mark(pair->shared().options.bulk_low_water);
    for (;;) {
        if (!src.is_open() || !pair->stream(other(from)).is_open()) {
            break;
        }
        if (pair->shared().wait_before_read || idle) {
            auto waiting = pair->owner().fd_readable(src.fd()).tracked_by(pair->wait_slot(from));
            auto wait_started = clock::now();
            auto ready = co_await std::move(waiting);
            if (clock::now() - wait_started >= new_stream_after) {
                mark.new_stream();
            }
            if (writing) {
                write_job& last = *writing; // named: GCC would copy `*writing` into the frame
                auto sent = co_await last;
                writing.reset();
                if (!sent) {
                    co_return; // settled (and the pair broken if it failed) by the write itself
                }
            }
            if (!ready) {
                if (ready.error() != std::errc::operation_canceled) {
                    pair->break_pair(from, ready.error(), "wait for");
                }
                co_return;
            }
        }
        auto moving = move_bytes(pair, from, &mark);
        transfer_end end = co_await std::move(moving);
        if (end.last_write) {
            writing.emplace(std::move(*end.last_write));
        }
        if (end.outcome == moved::over) {
            break;
        }
        idle = end.outcome == moved::went_idle;
    }
    if (writing) {
        write_job& last = *writing; // its frame resumes this one when it ends: must not outlive it
        co_await last;
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
